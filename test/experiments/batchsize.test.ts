/**
 * covshift batchsize: ghost BN's virtual batch rule, the networks it trains
 * (one runner job each), an end-to-end run on synthetic MNIST through the
 * experiment runner (stopped and resumed to the identical batchsize.json;
 * a second run on a live run's --out refused by the lock) and its errors.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  batchsizeJobs,
  defaultBatchsizeConfig,
  ghostSize,
  runBatchsize,
  type BatchsizeConfig,
  type BatchsizeEvent,
  type BatchsizeResult,
} from "../../src/experiments/batchsize/run.js";
import { assertRefused, assertSecondRunRefused, covshift, evalAtLeast, fakeMnistDir, tempDir, wholeAndResumed, withTempDirs } from "./helpers.js";

const small: BatchsizeConfig = { ...defaultBatchsizeConfig, steps: 6, batchSizes: [4, 6], workers: [2], populationBatches: 2, ghostBatchSize: 2, backend: "reference" };

describe("covshift batchsize", () => {
  it("ghost BN's virtual batch is the largest divisor of the batch not above the cap", () => {
    assert.deepEqual([2, 4, 8, 16, 32, 60].map((b) => ghostSize(b, 16)), [2, 4, 8, 16, 16, 15]);
    assert.equal(ghostSize(7, 4), 7); // a prime above the cap: no divisor to use, the whole batch
  });

  it("trains one network per job: BN gives the BN, population and (virtual batch = batch) ghost rows; the same examples for every batch size", () => {
    const jobs = batchsizeJobs(defaultBatchsizeConfig);
    assert.deepEqual(jobs.map((j) => j.name), [
      "bn-b2", "renorm-b2", "bn-b4", "renorm-b4", "bn-b8", "renorm-b8", "bn-b16", "renorm-b16",
      "bn-b32", "ghost-b32", "renorm-b32", "bn-b60", "ghost-b60", "renorm-b60",
      "syncbn-workers-w2", "syncbn-workers-w4", "bn-workers-w2", "bn-workers-w4",
    ]);
    assert.deepEqual(jobs[0].gives, ["bn", "bn-population", "ghost"]);
    assert.deepEqual(jobs.find((j) => j.name === "bn-b60")!.gives, ["bn", "bn-population"]);
    assert.deepEqual(jobs.find((j) => j.name === "ghost-b60")!.config.norm, { kind: "ghost", virtualBatchSize: 15 });
    for (const j of jobs) assert.equal(j.config.steps, Math.floor(30_000 / j.config.batchSize), `${j.name}: 30,000 examples (the tail of a batch dropped)`);
    assert.equal(jobs.find((j) => j.name === "bn-b2")!.config.lr, 0.01 / 30);
    const w4 = jobs.find((j) => j.name === "bn-workers-w4")!;
    assert.deepEqual([w4.batchSize, w4.config.workers, w4.config.syncBatchNorm], [15, 4, false]);
  });

  it("stopped and resumed gives exactly the uninterrupted batchsize.json runs (every row, the table, the picture)", async () => {
    const data = fakeMnistDir(240, 40);
    try {
      const options = { config: small, dataDir: data, download: false, jobs: 2, threads: 1, limits: {} };
      const { whole, resumed } = await wholeAndResumed<BatchsizeResult, BatchsizeEvent>(
        (o) => runBatchsize({ ...options, ...o }),
        // Stop when the first BN network (90 steps at batch 4) has measured once: the others stop with it.
        (e) => evalAtLeast(18)(e.message),
        async (parted) => {
          assert.ok(existsSync(join(parted, "checkpoints")), "checkpoints were written");
          await assert.rejects(runBatchsize({ ...options, outDir: parted }), /already holds results of an earlier run.*--resume/);
          await assert.rejects(runBatchsize({ ...options, config: { ...small, seed: 1 }, outDir: parted, resume: true }), /other settings \(seed: 0 then, 1 now\)/);
        },
      );
      const kinds = resumed.runs.map((x) => `${x.variant}@${x.batchSize}`);
      assert.deepEqual(kinds, ["bn@4", "bn-population@4", "ghost@4", "renorm@4", "bn@6", "bn-population@6", "ghost@6", "renorm@6", "syncbn-workers@30", "bn-workers@30"]);
      assert.equal(resumed.examples, 360);
      assert.equal(resumed.runs[0].steps, 90);
      assert.equal(resumed.runs[2].virtualBatchSize, 2);
      const strip = (r: BatchsizeResult) => r.runs.map(({ wallSeconds: _w, ...rest }) => rest);
      assert.deepEqual(strip(resumed), strip(whole));
      for (const x of resumed.runs) assert.ok(x.testAccuracy >= 0 && x.testAccuracy <= 1);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("the command writes the table, batchsize.json and the picture; a second run on a live run's --out is refused by the lock", async () => {
    const data = fakeMnistDir(240, 40);
    try {
      await withTempDirs(2, async (out, busy) => {
        const base = ["batchsize", "--data", data, "--no-download", "--backend", "reference", "--batch-sizes", "4", "--workers", "2", "--population-batches", "2"];
        const r = covshift([...base, "--steps", "2", "--variants", "bn,bn-population,renorm", "--out", out]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /\| Batch Renorm \|/);
        const json = JSON.parse(readFileSync(join(out, "batchsize.json"), "utf8")) as BatchsizeResult;
        assert.deepEqual(json.runs.map((x) => x.variant), ["bn", "bn-population", "renorm"]);
        for (const f of ["summary.md", "batchsize.svg", "batchsize.png", "models/bn-b4.safetensors"]) assert.ok(existsSync(join(out, f)), f);
        await assertSecondRunRefused([...base, "--steps", "100000", "--variants", "bn", "--out", busy], busy, ["--seed", "3"]);
      });
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("bad options are refused before any data is read, each naming the option, what it got and what it accepts", () => {
    const dir = tempDir();
    try {
      assertRefused("batchsize", ["--data", join(dir, "no-data"), "--no-download", "--out", join(dir, "out")], [
        [["--batch-sizes", "1,4"], /every batch size must be at least 2/],
        [["--workers", "7"], /--workers 7 does not split the batch of 60/],
        [["--workers", "0"], /--workers values must be integers ≥ 1; got 0/],
        [["--variants", "bn,magic"], /unknown variant "magic"/],
        [["--batch-sizes", "a"], /--batch-sizes must be a comma-separated list of integers/],
        [["--jobs", "0"], /batchsize: --jobs must be a whole number ≥ 1 \(runs trained at once\); got 0/],
        [["--threads", "-3"], /batchsize: --threads must be a whole number ≥ 1 .*; got -3/],
        [["--resume", "--overwrite"], /batchsize: --resume and --overwrite contradict each other/],
        [["--train-limit", "30"], /batchsize: --train-limit must be a whole number ≥ 60 .*; got 30/],
      ], { noData: /MNIST|idx3-ubyte/ });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
