#!/usr/bin/env node
// Two builds of covshift side by side on the default path's plain loop (not a
// test, not the benchmark suite): bench/defaultPath.ts's §4.1 MLP-with-BN step
// — zeroGrad, forward, loss, backward, step, no scope() — of each build, in
// one process, in alternating rounds, so that a busy machine slows both
// alike; per-step CPU time (user + system) and wall time of each round.
//
//   node bench/abPlainLoop.mjs OLD_DIST NEW_DIST [rounds] [stepsPerRound] [plain|scoped]
//   e.g. node bench/abPlainLoop.mjs /tmp/old/dist dist 40 200
//
// Each build's entry (src/index.js) selects its backend as `import "covshift"`
// does. Prints median and best per-step CPU ms, the best steps/s by the
// clock, the ratios (old ÷ new), and whether the losses are the same bits.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [A, B, roundsArg = "30", perArg = "200", mode = "plain"] = process.argv.slice(2);
if (A === undefined || B === undefined) {
  console.error("usage: node bench/abPlainLoop.mjs OLD_DIST NEW_DIST [rounds] [stepsPerRound] [plain|scoped]");
  process.exit(2);
}
const url = (dist, path) => pathToFileURL(resolve(dist, path)).href;
const rounds = Number(roundsArg);
const per = Number(perArg);
async function make(dist) {
  const m = await import(url(dist, "src/index.js"));
  const { defaultFigure1Config: cfg } = await import(url(dist, "src/experiments/figure1/config.js"));
  const { buildFigure1Network } = await import(url(dist, "src/experiments/figure1/network.js"));
  const { Generator } = await import(url(dist, "src/tensor/random.js"));
  const { random } = await import(url(dist, "bench/measure.js"));
  const { model } = buildFigure1Network("batchnorm", cfg, new Generator(0));
  const opt = new m.optim.SGD(model.parameters(), { lr: cfg.lr, momentum: cfg.momentum });
  const lossFn = new m.nn.CrossEntropyLoss();
  const x = new m.Tensor(random(60 * 784, 11).map((v) => v + 0.5), [60, 784]);
  const labels = Int32Array.from({ length: 60 }, (_, i) => (i * 7) % 10);
  model.train();
  const step = () => {
    opt.zeroGrad();
    const loss = lossFn.forward(model.forward(x), labels);
    loss.backward();
    opt.step();
    return loss;
  };
  return { backend: m.getBackend().name, step: mode === "scoped" ? () => m.scope(() => step().item()) : () => step().item() };
}
const builds = { a: await make(A), b: await make(B) };
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e3;
};
const res = { a: { cpu: [], wall: [], loss: 0 }, b: { cpu: [], wall: [], loss: 0 } };
for (let w = 0; w < 500; w++) for (const k of ["a", "b"]) res[k].loss += builds[k].step();
for (let r = 0; r < rounds; r++) {
  for (const k of r % 2 ? ["a", "b"] : ["b", "a"]) {
    const c0 = cpu();
    const w0 = performance.now();
    for (let i = 0; i < per; i++) res[k].loss += builds[k].step();
    res[k].cpu.push((cpu() - c0) / per);
    res[k].wall.push((performance.now() - w0) / per);
  }
}
const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
const min = (x) => Math.min(...x);
const f = (x) => +x.toFixed(3);
const side = (r) => ({ cpuMsMedian: f(med(r.cpu)), cpuMsBest: f(min(r.cpu)), wallMsBest: f(min(r.wall)), stepsPerSecondBest: Math.round(1000 / min(r.wall)) });
console.log(
  JSON.stringify({
    mode,
    backend: builds.a.backend,
    old: side(res.a),
    new: side(res.b),
    cpuMedianOldOverNew: f(med(res.a.cpu) / med(res.b.cpu)),
    cpuBestOldOverNew: f(min(res.a.cpu) / min(res.b.cpu)),
    sameLosses: res.a.loss === res.b.loss,
  }),
);
