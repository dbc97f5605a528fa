import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noGrad, Tensor } from "../../src/index.js";
import { defaultFigure1Config, Figure1Config } from "../../src/experiments/figure1/config.js";
import { loadFigure1Data } from "../../src/experiments/figure1/data.js";
import { percentiles } from "../../src/experiments/figure1/percentile.js";
import { runFigure1, type Figure1Event } from "../../src/experiments/figure1/run.js";
import type { Figure1Result } from "../../src/experiments/figure1/summary.js";
import { Figure1Trainer } from "../../src/experiments/figure1/trainer.js";
import { decodeCheckpoint, encodeCheckpoint } from "../../src/experiments/runner/checkpoint.js";
import { assertAllClose } from "../allclose.js";
import { realData } from "../realData.js";
import { evalAtLeast, fakeMnistDir, wholeAndResumed } from "./helpers.js";

const MNIST = realData("mnist"); // the probe, resume and command tests need ../shared/data/mnist
const small: Figure1Config = { ...defaultFigure1Config, steps: 40, evalEvery: 10, seeds: 1, populationBatches: 5, backend: "reference" };
const limits = { train: 600, test: 200 };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "covshift-figure1-"));
}

describe("figure1: percentile probe", () => {
  it("percentiles interpolate linearly between closest ranks, as NumPy's default", () => {
    // numpy.percentile([1, 2, 3, 4, 10], [15, 50, 85]) = [1.6, 3.0, 6.4]
    const p = percentiles([10, 1, 4, 2, 3], [15, 50, 85]);
    assertAllClose(p, [1.6, 3, 6.4], { atol: 1e-12, rtol: 0 }, "percentiles 15, 50, 85");
    assert.equal(p[1], 3, "the median of five values is the middle one, exactly");
    assert.deepEqual(percentiles([7], [0, 50, 100]), [7, 7, 7]);
    assert.throws(() => percentiles([], [50]), /no values/);
  });

  it("the probe reads the input of the chosen unit of the last hidden sigmoid, in inference mode", { skip: MNIST.skip }, async () => {
    const { train, test } = await loadFigure1Data(MNIST.dir, "scaled", limits);
    for (const network of ["baseline", "batchnorm"] as const) {
      const config = { ...small, probeUnit: 7 };
      const trainer = new Figure1Trainer(network, 0, config, train, test);
      for (let i = 0; i < 5; i++) trainer.trainStep();
      const { probe } = trainer.evaluate();
      // By hand: run the model layer by layer up to (not including) the third sigmoid.
      const model = trainer.model;
      model.eval();
      const sigmoids = [...model].map((m, i) => [m.constructor.name, i] as const).filter(([n]) => n === "Sigmoid");
      const upTo = sigmoids[2][1];
      const values: number[] = [];
      noGrad(() => {
        let h = new Tensor(test.images.slice(), [test.count, 784]);
        for (let l = 0; l < upTo; l++) h = model.at(l).forward(h);
        for (let r = 0; r < test.count; r++) values.push(h.data[r * 100 + 7]);
      });
      model.train();
      assert.deepEqual(probe, percentiles(values, [15, 50, 85]), `${network}: probe percentiles`);
      // Evaluating changes no BN state: a second evaluation gives the same numbers.
      assert.deepEqual(trainer.evaluate().probe, probe);
    }
  });
});

describe("figure1: resume", () => {
  it("a checkpoint taken mid-run and restored (through the checkpoint format's bytes) continues to the bit-identical result", { skip: MNIST.skip }, async () => {
    const { train, test } = await loadFigure1Data(MNIST.dir, "scaled", limits);
    for (const network of ["baseline", "batchnorm"] as const) {
      const whole = new Figure1Trainer(network, 3, small, train, test);
      while (!whole.done) {
        whole.trainStep();
        if (whole.step % small.evalEvery === 0) whole.record();
      }
      const first = new Figure1Trainer(network, 3, small, train, test);
      // 600 images / 60 = 10 batches per epoch: stopping at 23 crosses epoch boundaries both before and after.
      while (first.step < 23) {
        first.trainStep();
        if (first.step % small.evalEvery === 0) first.record();
      }
      const saved = decodeCheckpoint(encodeCheckpoint({ command: "figure1", run: "x", backend: "reference" }, first.checkpoint()), "(in memory)");
      const second = new Figure1Trainer(network, 3, small, train, test);
      second.restore(saved);
      while (!second.done) {
        second.trainStep();
        if (second.step % small.evalEvery === 0) second.record();
      }
      assert.deepEqual(second.result, whole.result, `${network}: measurements`);
      const a = whole.model.stateDict();
      const b = second.model.stateDict();
      for (const k of Object.keys(a)) assert.deepEqual(Array.from(b[k].data), Array.from(a[k].data), `${network}: ${k}`);
    }
  });

  it("runFigure1 stopped by its stop flag and resumed gives exactly the uninterrupted figure1.json runs", async () => {
    const data = fakeMnistDir(600, 200);
    try {
      const config = { ...small, steps: 60 };
      const options = { config, dataDir: data, download: false, jobs: 2, limits };
      const { whole, resumed } = await wholeAndResumed<Figure1Result, Figure1Event>(
        (o) => runFigure1({ ...options, ...o }),
        (e) => evalAtLeast(20)(e.message),
        async (parted) => {
          assert.ok(existsSync(join(parted, "checkpoints")), "checkpoints were written");
          await assert.rejects(runFigure1({ ...options, outDir: parted }), /--resume/);
          await assert.rejects(runFigure1({ ...options, config: { ...config, lr: 0.02 }, outDir: parted, resume: true }), /other settings.*lr/);
        },
      );
      const strip = (runs: Figure1Result["runs"]) => runs.map(({ wallSeconds: _w, trainSeconds: _t, ...rest }) => rest);
      assert.deepEqual(strip(resumed.runs), strip(whole.runs));
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});

describe("figure1: the command", () => {
  it("covshift figure1 on a few hundred real images writes figure1.json (the contract), the plots and the summary", { skip: MNIST.skip }, () => {
    const out = tempDir();
    try {
      const stdout = execFileSync(
        process.execPath,
        ["bin/covshift.js", "figure1", "--data", MNIST.dir, "--steps", "40", "--eval-every", "20", "--seeds", "2",
          "--train-limit", "600", "--test-limit", "200", "--population-batches", "3", "--out", out],
        { encoding: "utf8", env: { ...process.env, CI: "1" }, stdio: ["ignore", "pipe", "pipe"] },
      );
      assert.match(stdout, /Figure 1/);
      const result = JSON.parse(readFileSync(join(out, "figure1.json"), "utf8"));
      assert.equal(result.config.steps, 40);
      assert.equal(result.config.batchSize, 60);
      assert.equal(typeof result.wallSeconds, "number");
      assert.equal(result.runs.length, 4);
      for (const network of ["baseline", "batchnorm"]) {
        for (const seed of [0, 1]) {
          const run = result.runs.find((r: { network: string; seed: number }) => r.network === network && r.seed === seed);
          assert.ok(run, `${network} seed ${seed} present`);
          assert.deepEqual(run.steps, [20, 40]);
          for (const key of ["testAccuracy", "trainLoss"]) assert.equal(run[key].length, 2, key);
          for (const p of ["p15", "p50", "p85"]) assert.equal(run.sigmoidInput[p].length, 2, p);
          assert.ok(run.sigmoidInput.p15[0] <= run.sigmoidInput.p50[0] && run.sigmoidInput.p50[0] <= run.sigmoidInput.p85[0]);
        }
      }
      for (const f of ["figure1a", "figure1b", "figure1c", "figure1"]) {
        assert.ok(existsSync(join(out, `${f}.svg`)) && existsSync(join(out, `${f}.png`)), `${f} written`);
      }
      assert.match(readFileSync(join(out, "summary.md"), "utf8"), /population statistics/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("bad options and missing data give a clear message and exit code 1, without a stack trace", () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, ["bin/covshift.js", "figure1", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
    const missing = tempDir();
    try {
      const r1 = run(["--data", missing, "--no-download", "--steps", "10", "--eval-every", "5", "--out", join(missing, "out")]);
      assert.equal(r1.status, 1);
      assert.match(r1.stderr, /train-images-idx3-ubyte/);
      assert.doesNotMatch(r1.stderr, /    at /, "no stack trace");
      const r2 = run(["--data", missing, "--no-download", "--probe-unit", "100", "--out", join(missing, "out2")]); // checked before the (missing) data is read
      assert.equal(r2.status, 1);
      assert.match(r2.stderr, /--probe-unit must be an integer in \[0, 99\]/);
      const r3 = run(["--steps", "many"]);
      assert.notEqual(r3.status, 0);
      assert.match(r3.stderr, /--steps must be an integer/);
      // Checked before the data is read: each names the option, what it got and what it accepts.
      writeFileSync(join(missing, "a-file"), "not a folder");
      for (const [args, message] of [
        [["--jobs", "0"], /--jobs must be a whole number ≥ 1 \(runs trained at once\); got 0/],
        [["--threads", "-3"], /--threads must be a whole number ≥ 1 .*; got -3/],
        [["--resume", "--overwrite"], /--resume and --overwrite contradict each other/],
        [["--train-limit", "30"], /--train-limit must be a whole number ≥ 60 .*; got 30/],
        [["--test-limit", "0"], /--test-limit must be a whole number ≥ 1; got 0/],
        [["--steps", "100", "--eval-every", "200"], /--eval-every \(200\) must be at most --steps \(100\)/],
        [["--out", join(missing, "a-file")], /--out .*a-file is a file, not a directory/],
      ] as const) {
        const r = run(["--data", missing, "--no-download", "--out", join(missing, "out"), ...args]);
        assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, message, args.join(" "));
        assert.doesNotMatch(r.stderr, /    at /, "no stack trace");
      }
    } finally {
      rmSync(missing, { recursive: true, force: true });
    }
  });
});
