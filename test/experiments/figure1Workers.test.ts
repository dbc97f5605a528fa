import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { defaultFigure1Config, type Figure1Config, type NetworkKind } from "../../src/experiments/figure1/config.js";
import { loadFigure1Data } from "../../src/experiments/figure1/data.js";
import { startFigure1Group } from "../../src/experiments/figure1/group.js";
import { runFigure1, type Figure1Event } from "../../src/experiments/figure1/run.js";
import { EARLY_STEPS, Figure1Trainer, type ImageSet } from "../../src/experiments/figure1/trainer.js";
import { summaryMarkdown, type Figure1Result } from "../../src/experiments/figure1/summary.js";
import { realData } from "../realData.js";
import { assertRefused, evalAtLeast, fakeMnistDir, tempDir, wholeAndResumed } from "./helpers.js";

const MNIST = realData("mnist"); // the loss comparisons need ../shared/data/mnist (the BN network must learn within 100 steps)
const small: Figure1Config = { ...defaultFigure1Config, steps: 40, evalEvery: 10, seeds: 1, populationBatches: 5, backend: "reference" };
const limits = { train: 600, test: 200 };

/** The per-step losses of `steps` steps, trained in this thread or through a data-parallel group. */
async function losses(network: NetworkKind, config: Figure1Config, train: ImageSet, test: ImageSet, steps: number): Promise<number[]> {
  const parallel = await startFigure1Group(config, network, 0);
  try {
    const trainer = new Figure1Trainer(network, 0, config, train, test, { parallel: parallel ?? undefined });
    const out: number[] = [];
    for (let s = 0; s < steps; s++) out.push(trainer.trainStep());
    return out;
  } finally {
    await parallel?.close();
  }
}

function maxRelativeDifference(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]) / Math.abs(b[i])));
}

describe("figure1 --workers", () => {
  it("2 workers with SyncBN give the training loss of 1 worker over the first 100 steps within 1e-4 relative (both networks)", { skip: MNIST.skip }, async () => {
    const { train, test } = await loadFigure1Data(MNIST.dir, "scaled", limits);
    for (const network of ["batchnorm", "baseline"] as const) {
      const config = { ...small, steps: 100 };
      const one = await losses(network, config, train, test, 100);
      const two = await losses(network, { ...config, workers: 2 }, train, test, 100);
      // Float32 kernels on shards of 30 instead of one batch of 60 (and the all-reduce in float64): reduction order only.
      const d = maxRelativeDifference(two, one);
      assert.ok(d < 1e-4, `${network}: max relative difference ${d}`);
      // The BN network learns within these steps (the baseline's sigmoids are still on their plateau).
      if (network === "batchnorm") assert.ok(one[99] < one[0] - 0.5, `${network}: the loss fell (${one[0]} → ${one[99]})`);
    }
  });

  it("--no-sync-bn leaves each worker's BN on its own shard: the BN network's losses then differ from one worker's", { skip: MNIST.skip }, async () => {
    const { train, test } = await loadFigure1Data(MNIST.dir, "scaled", limits);
    const config = { ...small, steps: 5 };
    const one = await losses("batchnorm", config, train, test, 5);
    const perShard = await losses("batchnorm", { ...config, workers: 2, syncBatchNorm: false }, train, test, 5);
    assert.ok(maxRelativeDifference(perShard, one) > 1e-4, `per-shard BN normalizes with 30 examples, not 60: ${perShard} vs ${one}`);
  });

  it("a run with 2 workers stopped and resumed gives exactly the uninterrupted run; figure1.json and summary.md record the workers and SyncBN", async () => {
    const data = fakeMnistDir(600, 200);
    try {
      const config = { ...small, steps: 40, workers: 2 };
      const options = { config, dataDir: data, download: false, jobs: 2, limits };
      const { whole, resumed } = await wholeAndResumed<Figure1Result, Figure1Event>(
        (o) => runFigure1({ ...options, ...o }),
        (e) => evalAtLeast(20)(e.message),
        // The worker count is part of the settings a resume must match.
        (parted) => assert.rejects(runFigure1({ ...options, config: { ...config, workers: 1 }, outDir: parted, resume: true }), /workers/),
      );
      const strip = (runs: Figure1Result["runs"]) => runs.map(({ wallSeconds: _w, trainSeconds: _t, ...rest }) => rest);
      assert.deepEqual(strip(resumed.runs), strip(whole.runs));
      assert.ok(resumed.runs.every((r) => r.earlyLoss.length === Math.min(EARLY_STEPS, config.steps)));
      assert.equal(resumed.config.workers, 2);
      assert.equal(resumed.config.syncBatchNorm, true);
      assert.match(summaryMarkdown(resumed), /2 data-parallel workers per run \(30 examples each\), SyncBN/);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("--workers and --no-sync-bn are checked before any work, naming the option, the value and what it accepts", () => {
    const out = tempDir();
    try {
      assertRefused("figure1", ["--data", out, "--no-download", "--out", join(out, "o")], [
        [["--workers", "0"], /--workers must be a whole number ≥ 1 \(data-parallel workers per run\); got 0/],
        [["--workers", "7"], /--workers 7 does not divide --batch-size 60.*use a divisor of 60 \(1, 2, 3, 4, 5, 6, 10, 12, 15/],
        [["--no-sync-bn"], /--no-sync-bn needs --workers ≥ 2 .*got --workers 1/],
        [["--workers", "60", "--no-sync-bn"], /--no-sync-bn with --workers 60 leaves 1 example per worker/],
      ]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
