#!/usr/bin/env node
/**
 * Figure 1 as the paper draws it? A sweep over figure1's weight-init scale,
 * learning rate and momentum, PyTorch's default initialization and the input
 * scaling (binary, standardized) at a shortened budget (one seed), measuring for
 * each setting what the paper's picture shows:
 *   - the baseline's test accuracy at step 10,000 (the paper: ~90% already);
 *   - the final accuracies of both networks;
 *   - the spread of the baseline's sigmoid input early on: mean of p85 − p15
 *     over the evaluations up to step 2,000 (the paper: spread from the start);
 *   - the drift of the sigmoid input's percentiles from step 5,000 on (as
 *     figure1's summary measures it) and the ratio BN / baseline.
 * A setting "draws the paper's picture" when the baseline is ≥ 85% at 10k,
 * its early spread ≥ 0.5, BN ends higher, and BN drifts < ½ of the baseline.
 *
 *   npm run build && node scripts/sweep-figure1.mjs --data ../shared/data/mnist [--steps 10000] [--out results/sweep] [--reuse docs/figure1-sweep.json]
 *
 * --reuse takes the rows of an earlier sweep.json whose setting and --steps match as they are
 * instead of training them again: a run is deterministic (same seed and setting, bit-identical
 * result), so only new settings cost time.
 *
 * Writes <out>/sweep.json, <out>/sweep.md, the trade-off picture <out>/figure1-sweep.svg/.png
 * and each setting's figure1 output in <out>/<n>/.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultFigure1Config } from "../dist/src/experiments/figure1/config.js";
import { runFigure1 } from "../dist/src/experiments/figure1/run.js";
import { writeSweepPlot } from "../dist/src/report/sweepPlots.js";

const { values: args } = parseArgs({
  options: {
    data: { type: "string", default: "../shared/data/mnist" },
    steps: { type: "string", default: "10000" },
    out: { type: "string", default: "results/sweep" },
    reuse: { type: "string" },
  },
});
const steps = Number(args.steps);
const out = resolve(args.out);

/**
 * init std × (lr, momentum): today's default first, then larger initial weights, then plain SGD;
 * then PyTorch's default nn.Linear initialization, then the other input scalings.
 */
const SETTINGS = [
  { initStd: 0.01, lr: 0.01, momentum: 0.9 },
  { initStd: 0.05, lr: 0.01, momentum: 0.9 },
  { initStd: 0.1, lr: 0.01, momentum: 0.9 },
  { initStd: 0.3, lr: 0.01, momentum: 0.9 },
  { initStd: 0.05, lr: 0.1, momentum: 0 },
  { initStd: 0.1, lr: 0.1, momentum: 0 },
  { initStd: 0.1, lr: 0.5, momentum: 0 },
  { initStd: 0.3, lr: 0.1, momentum: 0 },
  { initStd: 0.01, init: "default", lr: 0.01, momentum: 0.9 },
  { initStd: 0.01, init: "default", lr: 0.1, momentum: 0 },
  { initStd: 0.01, init: "default", lr: 0.5, momentum: 0 },
  { initStd: 0.01, input: "binary", lr: 0.01, momentum: 0.9 },
  { initStd: 0.1, input: "binary", lr: 0.01, momentum: 0.9 },
  { initStd: 0.01, input: "standardized", lr: 0.01, momentum: 0.9 },
  { initStd: 0.05, input: "standardized", lr: 0.01, momentum: 0.9 },
  { initStd: 0.1, input: "standardized", lr: 0.1, momentum: 0 },
];

/** The setting's identity: what it changes from figure1's defaults, with those defaults filled in. */
const key = (s) => JSON.stringify([s.init ?? "normal", s.input ?? "scaled", s.initStd, s.lr, s.momentum]);
const earlier = new Map();
if (args.reuse) {
  const prior = JSON.parse(readFileSync(args.reuse, "utf8"));
  if (prior.steps === steps) for (const row of prior.settings) earlier.set(key(row), row);
}

const rows = [];
mkdirSync(out, { recursive: true });
for (const [n, s] of SETTINGS.entries()) {
  const reused = earlier.get(key(s));
  if (reused) {
    rows.push({ init: "normal", input: "scaled", ...reused, reused: true });
    process.stdout.write(`setting ${n}: reused from ${args.reuse}\n`);
    continue;
  }
  const config = { ...defaultFigure1Config, ...s, steps, seeds: 1, evalEvery: 500, populationBatches: 50 };
  const t0 = performance.now();
  const outcome = await runFigure1({ config, dataDir: resolve(args.data), outDir: join(out, String(n)), overwrite: true, jobs: 2, threads: 1 });
  if (outcome.status !== "complete") throw new Error("sweep interrupted");
  const { runs, findings } = outcome.result;
  const base = runs.find((r) => r.network === "baseline");
  const bn = runs.find((r) => r.network === "batchnorm");
  const at = (r, step) => r.testAccuracy[r.steps.indexOf(step)];
  const early = base.steps.map((st, i) => [st, base.sigmoidInput.p85[i] - base.sigmoidInput.p15[i]]).filter(([st]) => st <= 2000);
  const row = {
    init: "normal",
    input: "scaled",
    ...s,
    baselineAt10k: at(base, Math.min(10000, steps)),
    baselineFinal: base.testAccuracy.at(-1),
    batchnormFinal: bn.testAccuracy.at(-1),
    baselineEarlySpread: early.reduce((a, [, v]) => a + v, 0) / early.length,
    driftBaseline: findings.drift.baseline,
    driftBatchnorm: findings.drift.batchnorm,
    driftRatio: findings.drift.batchnorm / findings.drift.baseline,
    seconds: (performance.now() - t0) / 1000,
  };
  row.paperPicture = row.baselineAt10k >= 0.85 && row.baselineEarlySpread >= 0.5 && row.batchnormFinal > row.baselineFinal && row.driftRatio < 0.5;
  rows.push(row);
  process.stdout.write(JSON.stringify(row) + "\n");
}
const pct = (v) => `${(100 * v).toFixed(1)}%`;
const md = [
  `| init | input | lr | momentum | baseline at 10k | final: baseline / BN | baseline early spread (p85−p15, ≤2k) | drift baseline / BN | ratio | paper's picture |`,
  `|---|---|---|---|---|---|---|---|---|---|`,
  ...rows.map((r) => `| ${r.init === "default" ? "PyTorch default" : `N(0, ${r.initStd}²)`} | ${r.input} | ${r.lr} | ${r.momentum} | ${pct(r.baselineAt10k)} | ${pct(r.baselineFinal)} / ${pct(r.batchnormFinal)} | ${r.baselineEarlySpread.toFixed(2)} | ${r.driftBaseline.toFixed(2)} / ${r.driftBatchnorm.toFixed(2)} | ${r.driftRatio.toFixed(2)} | ${r.paperPicture ? "yes" : "no"} |`),
  ``,
].join("\n");
writeFileSync(join(out, "sweep.json"), JSON.stringify({ steps, seeds: 1, settings: rows }, null, 1));
writeFileSync(join(out, "sweep.md"), md);
await writeSweepPlot(rows, steps, out);
process.stdout.write("\n" + md);
