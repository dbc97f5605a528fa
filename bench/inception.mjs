#!/usr/bin/env node
// Quick timing of one row of the Inception table (not a test, not the
// benchmark suite): the TableTrainer's training step — data pipeline,
// forward, loss, backward, SGD — of a row (default BN-x5) at the table's
// defaults (width 1/16, stem stride 2, batch 64, 28×28 crops) on CIFAR-10,
// on the wasm backend (relaxed SIMD where the engine has it) on one thread.
//
//   npm run build && node bench/inception.mjs [rounds] [row] [stepsPerRound]
//   COVSHIFT_DIST=dist,/tmp/old/dist node bench/inception.mjs   (compare builds in one process)
//   COVSHIFT_DATA=../shared/data/cifar10 (default)   TRAIN_LIMIT=4096 (training images loaded)
//   node --cpu-prof --cpu-prof-dir=bench/results/profile bench/inception.mjs 3   (where the time goes)
//
// The builds take turns, round after round, so a busy machine slows them
// alike; each figure is the best round's steps/s after a warm-up of at least
// 20 steps and two seconds per build — by the clock, and by the process's
// CPU time (user + system, all of its threads), which a machine whose other
// jobs take turns on the cores disturbs less.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dists = (process.env.COVSHIFT_DIST ?? "dist").split(",").map((d) => resolve(d));
const rounds = Number(process.argv[2] ?? 5);
const rowId = process.argv[3] ?? "bn-x5";
const stepsPerRound = Number(process.argv[4] ?? 20);
const dataDir = resolve(process.env.COVSHIFT_DATA ?? "../shared/data/cifar10");
const trainLimit = Number(process.env.TRAIN_LIMIT ?? 4096);

const builds = [];
for (const dist of dists) {
  const url = (p) => pathToFileURL(`${dist}/src/${p}`).href;
  const lib = await import(url("index.js"));
  const { useBackend } = await import(url("experiments/backend.js"));
  const { loadTableData } = await import(url("experiments/table/data.js"));
  const { defaultTableConfig, deriveRow } = await import(url("experiments/table/rows.js"));
  const { TableTrainer } = await import(url("experiments/table/trainer.js"));
  const backend = await useBackend("wasm", { threads: Number(process.env.THREADS ?? 1) });
  const data = await loadTableData(dataDir, { train: trainLimit, validation: 64, test: 64 });
  const config = { ...defaultTableConfig, steps: 1e9 };
  const trainer = new TableTrainer(deriveRow(rowId, config), config, data);
  builds.push({ dist, lib, backend, trainer, best: 0, bestCpu: 0 });
}

const activate = (b) => b.lib.setBackend("wasm"); // each build's own module
for (const b of builds) {
  activate(b);
  const end = performance.now() + 2000;
  let n = 0;
  do b.trainer.trainStep(); while (++n < 20 || performance.now() < end);
}
for (let k = 0; k < rounds; k++) {
  for (const b of builds) {
    activate(b);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let s = 0; s < stepsPerRound; s++) b.trainer.trainStep();
    const cpu = process.cpuUsage(c0);
    b.best = Math.max(b.best, (stepsPerRound * 1000) / (performance.now() - t0));
    b.bestCpu = Math.max(b.bestCpu, (stepsPerRound * 1e6) / (cpu.user + cpu.system));
  }
}
console.log(`row ${rowId}, best of ${rounds} rounds of ${stepsPerRound} steps, one thread`);
console.log("  steps/s  steps per CPU-second");
for (const b of builds) console.log(`${b.best.toFixed(2).padStart(9)}  ${b.bestCpu.toFixed(2).padStart(20)}  ${b.backend}  ${b.dist}`);
