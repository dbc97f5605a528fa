#!/usr/bin/env node
// Two builds of covshift side by side on Figure 1's training step (not a
// test, not the benchmark suite): one Figure1Trainer per build in one
// process, trainStep() in alternating rounds, so that a busy machine slows
// both alike; per-step CPU time (user + system) and wall time of each round.
//
//   node bench/abFigure1.mjs OLD_DIST NEW_DIST [network] [rounds] [stepsPerRound]
//   e.g. node bench/abFigure1.mjs /tmp/old/dist dist batchnorm 30 100
//   COVSHIFT_DATA=../shared/data/mnist (default)
//
// Prints the median and best per-step CPU ms of each build, their ratios
// (old ÷ new), and whether the two trained to the same losses (bit for bit).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [A, B, network = "batchnorm", roundsArg = "30", perArg = "100"] = process.argv.slice(2);
if (A === undefined || B === undefined) {
  console.error("usage: node bench/abFigure1.mjs OLD_DIST NEW_DIST [network] [rounds] [stepsPerRound]");
  process.exit(2);
}
const url = (dist, path) => pathToFileURL(resolve(dist, path)).href;
const rounds = Number(roundsArg);
const per = Number(perArg);
const data = await (await import(url(A, "src/experiments/figure1/data.js"))).loadFigure1Data(process.env.COVSHIFT_DATA ?? "../shared/data/mnist", "scaled");
async function make(dist) {
  await (await import(url(dist, "src/experiments/backend.js"))).useBackend("auto", { threads: 1 });
  const { defaultFigure1Config } = await import(url(dist, "src/experiments/figure1/config.js"));
  const { Figure1Trainer } = await import(url(dist, "src/experiments/figure1/trainer.js"));
  return new Figure1Trainer(network, 0, { ...defaultFigure1Config }, data.train, data.test);
}
const builds = { a: await make(A), b: await make(B) };
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e3;
};
const res = { a: { cpu: [], wall: [], loss: 0 }, b: { cpu: [], wall: [], loss: 0 } };
for (let w = 0; w < 300; w++) for (const k of ["a", "b"]) res[k].loss += builds[k].trainStep();
for (let r = 0; r < rounds; r++) {
  for (const k of r % 2 ? ["a", "b"] : ["b", "a"]) {
    const c0 = cpu();
    const w0 = performance.now();
    for (let i = 0; i < per; i++) res[k].loss += builds[k].trainStep();
    res[k].cpu.push((cpu() - c0) / per);
    res[k].wall.push((performance.now() - w0) / per);
  }
}
const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
const min = (x) => Math.min(...x);
const f = (x) => +x.toFixed(3);
const side = (r) => ({ cpuMsMedian: f(med(r.cpu)), cpuMsBest: f(min(r.cpu)), wallMsBest: f(min(r.wall)) });
console.log(
  JSON.stringify({
    network,
    rounds,
    stepsPerRound: per,
    old: side(res.a),
    new: side(res.b),
    cpuMedianOldOverNew: f(med(res.a.cpu) / med(res.b.cpu)),
    cpuBestOldOverNew: f(min(res.a.cpu) / min(res.b.cpu)),
    sameLosses: res.a.loss === res.b.loss,
  }),
);
