/**
 * covshift adabn: the shifted domains (rotation checked against exact
 * quarter turns, inversion, seeded noise), and the command on the experiment
 * runner on synthetic MNIST: stopped and resumed to the identical
 * adabn.json, the domains evaluated from the model file the training job
 * left (AdaBN changes the statistics, not the weights), a second run on a
 * live run's --out refused by the lock, bad options refused naming them.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nn, Tensor } from "../../src/index.js";
import { rotate, shiftImages } from "../../src/experiments/adabn/domains.js";
import { adabnTrainingConfig, defaultAdabnConfig, runAdabn, type AdabnConfig, type AdabnResult } from "../../src/experiments/adabn/run.js";
import { loadTrainedNetwork } from "../../src/experiments/evaluate.js";
import type { JobEvent } from "../../src/experiments/runner/runner.js";
import { assertAllClose } from "../allclose.js";
import { assertRefused, assertSecondRunRefused, covshift, evalAtLeast, fakeMnistDir, tempDir, wholeAndResumed, withTempDirs } from "./helpers.js";

const settings = { rotateDegrees: 30, noiseStd: 0.5, noiseSeed: 1 };

function randomImage(seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: 784 }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648));
}

describe("adabn: shifted domains", () => {
  it("a rotation by 90° is the exact quarter turn (counter-clockwise), by 0° the identity", () => {
    const img = randomImage(7);
    const out = new Float32Array(784);
    rotate(img, out, 90);
    // counter-clockwise with row 0 at the top: out[r][c] = in[c][27 − r]
    const quarterTurn = Float32Array.from({ length: 784 }, (_, i) => img[(i % 28) * 28 + (27 - Math.floor(i / 28))]);
    assertAllClose({ shape: [28, 28], data: out }, { shape: [28, 28], data: quarterTurn }, { atol: 1e-5, rtol: 0 }, "rotated 90° vs out[r][c] = in[c][27 − r]");
    rotate(img, out, 0);
    assert.deepEqual(out, img);
  });

  it("inverted is 1 − x; noise is seeded (same seed, same images) and of the stated spread; source is a copy", () => {
    const imgs = new Float32Array([...randomImage(1), ...randomImage(2)]);
    const inv = shiftImages(imgs, "inverted", settings);
    for (let i = 0; i < imgs.length; i++) assert.equal(inv[i], Math.fround(1 - imgs[i]));
    const a = shiftImages(imgs, "noise", settings);
    assert.deepEqual(a, shiftImages(imgs, "noise", settings));
    assert.notDeepEqual(a, shiftImages(imgs, "noise", { ...settings, noiseSeed: 2 }));
    let ss = 0;
    for (let i = 0; i < imgs.length; i++) ss += (a[i] - imgs[i]) ** 2;
    assertAllClose(Math.sqrt(ss / imgs.length), 0.5, { atol: 0.03, rtol: 0 }, "noise spread (RMS change) vs --noise-std 0.5");
    const src = shiftImages(imgs, "source", settings);
    assert.deepEqual(src, imgs);
    assert.notEqual(src, imgs);
  });
});

const small: AdabnConfig = { ...defaultAdabnConfig, steps: 1100, adaptImages: 100, adaptBatchSize: 50, backend: "auto" };

describe("covshift adabn", () => {
  it("stopped and resumed gives exactly the uninterrupted adabn.json; the domains are measured on the network the job left", async () => {
    const data = fakeMnistDir(240, 160);
    try {
      const options = { config: small, dataDir: data, download: false, jobs: 1, threads: 1, limits: {} };
      let modelBytes: Buffer | null = null;
      const { whole, resumed } = await wholeAndResumed<AdabnResult, JobEvent>(
        async (o) => {
          const outcome = await runAdabn({ ...options, ...o });
          if (outcome.status === "complete") modelBytes = readFileSync(join(o.outDir, "models", "batchnorm.safetensors"));
          return outcome;
        },
        evalAtLeast(500), // the first of the evaluations every 500 steps: a checkpoint between them
        async (parted) => {
          assert.ok(existsSync(join(parted, "checkpoints", "batchnorm.safetensors")), "the training job left its checkpoint");
          await assert.rejects(runAdabn({ ...options, outDir: parted }), /already holds results of an earlier run.*--resume/);
          await assert.rejects(runAdabn({ ...options, config: { ...small, noiseStd: 0.2 }, outDir: parted, resume: true }), /other settings \(noiseStd: 0\.5 then, 0\.2 now\)/);
        },
      );
      const { wallSeconds: _a, ...w } = whole;
      const { wallSeconds: _b, ...r } = resumed;
      assert.deepEqual(r, w);
      assert.deepEqual(r.domains.map((d) => d.domain), ["source", "inverted", "rotated", "noise", "faded"]);
      assert.deepEqual([r.trainSteps, r.evalImages, r.adaptImages], [1100, 60, 100]);
      // The weights the job saved are the trained network's; AdaBN's copy differs only in the running statistics.
      await withTempDirs(1, (dir) => {
        const file = join(dir, "batchnorm");
        writeFileSync(`${file}.safetensors`, modelBytes!);
        const trained = loadTrainedNetwork(file, adabnTrainingConfig(small));
        const adapted = nn.deepCopy(trained);
        nn.adaptBatchNorm(adapted, [new Tensor(Float32Array.from({ length: 50 * 784 }, (_, i) => ((i * 7919) % 1000) / 1000), [50, 784])]);
        const a = trained.stateDict();
        const b = adapted.stateDict();
        for (const k of Object.keys(a)) {
          const same = JSON.stringify(Array.from(a[k].data)) === JSON.stringify(Array.from(b[k].data));
          assert.equal(same, !/running_|num_batches/.test(k), k);
        }
      });
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("the command writes the table, adabn.json and the picture; a second run on a live run's --out is refused by the lock", async () => {
    const data = fakeMnistDir(240, 160);
    try {
      await withTempDirs(2, async (out, busy) => {
        const base = ["adabn", "--data", data, "--no-download", "--backend", "reference", "--adapt-images", "100", "--adapt-batch-size", "50"];
        const r = covshift([...base, "--steps", "20", "--out", out]);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /\| inverted \|/);
        const json = JSON.parse(readFileSync(join(out, "adabn.json"), "utf8")) as AdabnResult;
        assert.equal(json.evalImages, 60);
        for (const d of json.domains) for (const k of ["before", "after"] as const) assert.ok(d[k] >= 0 && d[k] <= 1, `${d.domain} ${k}`);
        for (const f of ["summary.md", "adabn.svg", "adabn.png", "models/batchnorm.safetensors"]) assert.ok(existsSync(join(out, f)), f);
        await assertSecondRunRefused([...base, "--steps", "1000000", "--out", busy], busy, ["--rotate", "45"]);
      });
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });

  it("bad options are refused before any data is read, each naming the option, what it got and what it accepts", () => {
    const dir = tempDir();
    try {
      assertRefused("adabn", ["--data", join(dir, "no-data"), "--no-download", "--out", join(dir, "out")], [
        [["--noise-std", "-1"], /--noise-std must be ≥ 0; got -1/],
        [["--test-limit", "100", "--adapt-images", "100", "--adapt-batch-size", "50"], /adabn: --test-limit must be a whole number ≥ 101 \(more than --adapt-images 100: the rest are evaluated\); got 100/],
        [["--adapt-images", "10", "--adapt-batch-size", "20"], /--adapt-images 10 is fewer than one adapt batch of --adapt-batch-size 20/],
        [["--threads", "0"], /adabn: --threads must be a whole number ≥ 1 .*; got 0/],
        [["--resume", "--overwrite"], /adabn: --resume and --overwrite contradict each other/],
        [["--train-limit", "59"], /adabn: --train-limit must be a whole number ≥ 60 .*; got 59/],
      ], { noData: /MNIST|idx3-ubyte/ });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
