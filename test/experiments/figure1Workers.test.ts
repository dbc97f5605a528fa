import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { defaultFigure1Config, type Figure1Config, type NetworkKind } from "../../src/experiments/figure1/config.js";
import { loadFigure1Data } from "../../src/experiments/figure1/data.js";
import { startFigure1Group } from "../../src/experiments/figure1/group.js";
import { runFigure1 } from "../../src/experiments/figure1/run.js";
import { EARLY_STEPS, Figure1Trainer, type ImageSet } from "../../src/experiments/figure1/trainer.js";
import type { Figure1Result } from "../../src/experiments/figure1/summary.js";

const MNIST = resolve("../shared/data/mnist");
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
  it("2 workers with SyncBN give the training loss of 1 worker over the first 100 steps within 1e-4 relative (both networks)", async () => {
    const { train, test } = await loadFigure1Data(MNIST, "scaled", limits);
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

  it("--no-sync-bn leaves each worker's BN on its own shard: the BN network's losses then differ from one worker's", async () => {
    const { train, test } = await loadFigure1Data(MNIST, "scaled", limits);
    const config = { ...small, steps: 5 };
    const one = await losses("batchnorm", config, train, test, 5);
    const perShard = await losses("batchnorm", { ...config, workers: 2, syncBatchNorm: false }, train, test, 5);
    assert.ok(maxRelativeDifference(perShard, one) > 1e-4, `per-shard BN normalizes with 30 examples, not 60: ${perShard} vs ${one}`);
  });

  it("a run with 2 workers stopped and resumed gives exactly the uninterrupted run; figure1.json and summary.md record the workers and SyncBN", async () => {
    const whole = mkdtempSync(join(tmpdir(), "covshift-figure1w-"));
    const parted = mkdtempSync(join(tmpdir(), "covshift-figure1w-"));
    try {
      const config = { ...small, steps: 40, workers: 2 };
      const full = await runFigure1({ config, dataDir: MNIST, outDir: whole, jobs: 2, limits });
      assert.equal(full.status, "complete");
      const stopFlag = new SharedArrayBuffer(4);
      const stopped = await runFigure1({
        config,
        dataDir: MNIST,
        outDir: parted,
        jobs: 2,
        limits,
        stopFlag,
        onEvent: (e) => {
          if (e.message.type === "eval" && e.message.step >= 20) Atomics.store(new Int32Array(stopFlag), 0, 1);
        },
      });
      assert.equal(stopped.status, "interrupted");
      // The worker count is part of the settings a resume must match.
      await assert.rejects(runFigure1({ config: { ...config, workers: 1 }, dataDir: MNIST, outDir: parted, jobs: 2, limits, resume: true }), /workers/);
      const resumed = await runFigure1({ config, dataDir: MNIST, outDir: parted, jobs: 2, limits, resume: true });
      assert.equal(resumed.status, "complete");
      if (full.status !== "complete" || resumed.status !== "complete") return;
      const strip = (runs: Figure1Result["runs"]) => runs.map(({ wallSeconds: _w, trainSeconds: _t, ...rest }) => rest);
      assert.deepEqual(strip(resumed.result.runs), strip(full.result.runs));
      assert.ok(resumed.result.runs.every((r) => r.earlyLoss.length === Math.min(EARLY_STEPS, config.steps)));
      const json = JSON.parse(readFileSync(join(parted, "figure1.json"), "utf8")) as Figure1Result;
      assert.equal(json.config.workers, 2);
      assert.equal(json.config.syncBatchNorm, true);
      assert.match(readFileSync(join(parted, "summary.md"), "utf8"), /2 data-parallel workers per run \(30 examples each\), SyncBN/);
    } finally {
      rmSync(whole, { recursive: true, force: true });
      rmSync(parted, { recursive: true, force: true });
    }
  });

  it("--workers and --no-sync-bn are checked before any work, naming the option, the value and what it accepts", () => {
    const out = mkdtempSync(join(tmpdir(), "covshift-figure1w-"));
    try {
      for (const [args, message] of [
        [["--workers", "0"], /--workers must be a whole number ≥ 1 \(data-parallel workers per run\); got 0/],
        [["--workers", "7"], /--workers 7 does not divide --batch-size 60.*use a divisor of 60 \(1, 2, 3, 4, 5, 6, 10, 12, 15/],
        [["--no-sync-bn"], /--no-sync-bn needs --workers ≥ 2 .*got --workers 1/],
        [["--workers", "60", "--no-sync-bn"], /--no-sync-bn with --workers 60 leaves 1 example per worker/],
      ] as const) {
        const r = spawnSync(process.execPath, ["bin/covshift.js", "figure1", "--data", out, "--no-download", "--out", join(out, "o"), ...args], {
          encoding: "utf8",
        });
        assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message, args.join(" "));
        assert.doesNotMatch(r.stderr, /    at /, "no stack trace");
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
