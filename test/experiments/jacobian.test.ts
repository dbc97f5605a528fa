/**
 * covshift jacobian (§3.3): the float64 Jacobi eigen-solver and singular
 * values against known matrices, the layer Jacobians against central finite
 * differences and against the reverse-mode Jacobian of the library's own
 * modules, the BN transform's |γ|/√(σ²+ε), and the command's jacobian.json
 * (the contract in issue 14).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nn, noGrad, Tensor } from "../../src/index.js";
import { Generator } from "../../src/tensor/random.js";
import { singularValues, symmetricEigenvalues } from "../../src/experiments/jacobian/linalg.js";
import {
  bnTransformSingularValues,
  distribution,
  float64Copy,
  jacobians,
  measureJacobians,
  type Distribution,
} from "../../src/experiments/jacobian/jacobian.js";
import { defaultJacobianConfig, type JacobianConfig } from "../../src/experiments/jacobian/config.js";
import { runJacobian } from "../../src/experiments/jacobian/run.js";
import { JacobianTrainer } from "../../src/experiments/jacobian/trainer.js";
import type { ImageSet } from "../../src/experiments/figure1/trainer.js";
import { decodeCheckpoint, encodeCheckpoint } from "../../src/experiments/runner/checkpoint.js";
import { assertAllClose } from "../allclose.js";
import { realData } from "../realData.js";
import { assertRefused, fakeMnistDir } from "./helpers.js";

const MNIST = realData("mnist"); // the command's end-to-end run needs ../shared/data/mnist

/** A random orthogonal n×n matrix: the product of n Householder reflections of random vectors. */
function randomOrthogonal(n: number, gen: Generator): Float64Array {
  let q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  for (let r = 0; r < n; r++) {
    const v = Float64Array.from({ length: n }, () => gen.normal());
    const vv = v.reduce((s, x) => s + x * x, 0);
    const next = new Float64Array(n * n); // q·(I − 2vvᵀ/vᵀv)
    for (let i = 0; i < n; i++) {
      let qv = 0;
      for (let k = 0; k < n; k++) qv += q[i * n + k] * v[k];
      for (let j = 0; j < n; j++) next[i * n + j] = q[i * n + j] - (2 * qv * v[j]) / vv;
    }
    q = next;
  }
  return q;
}

function matmul(a: Float64Array, b: Float64Array, n: number, m: number, p: number): Float64Array {
  const out = new Float64Array(n * p);
  for (let i = 0; i < n; i++) for (let k = 0; k < m; k++) for (let j = 0; j < p; j++) out[i * p + j] += a[i * m + k] * b[k * p + j];
  return out;
}

describe("jacobian: singular values (float64 Jacobi)", () => {
  it("eigenvalues of known symmetric matrices, sorted descending", () => {
    assert.deepEqual(Array.from(symmetricEigenvalues([2, 1, 1, 2], 2)).map((v) => +v.toFixed(12)), [3, 1]);
    const e = symmetricEigenvalues([4, 1, 0, 1, 3, 1, 0, 1, 2], 3); // eigenvalues 3 and 3 ± √3
    assertAllClose(e, [3 + Math.sqrt(3), 3, 3 - Math.sqrt(3)], { atol: 1e-13, rtol: 1e-13 }, "eigenvalues λ");
    assert.throws(() => symmetricEigenvalues([1, 2, 3, 4], 2), /not symmetric at \(0, 1\)/);
    assert.throws(() => symmetricEigenvalues([1, 2, 3], 2), /expected 2×2 = 4 values; got 3/);
  });

  it("U·diag(σ)·Vᵀ gives back σ, square, wide and tall; an orthogonal matrix has every σ = 1", () => {
    const gen = new Generator(7);
    const sigma = [5, 2.5, 1, 0.3, 0.01, 1e-4];
    const n = sigma.length;
    const u = randomOrthogonal(n, gen);
    const v = randomOrthogonal(n, gen);
    const us = Float64Array.from(u, (x, i) => x * sigma[i % n]);
    const a = matmul(us, Float64Array.from({ length: n * n }, (_, i) => v[(i % n) * n + Math.floor(i / n)]), n, n, n);
    const s = singularValues(a, n, n);
    assertAllClose(s, sigma, { atol: 1e-12, rtol: 1e-9 }, "σ of U·diag(σ)·Vᵀ");
    // Wide (first 4 rows of a: U's first 4 rows times Σ Vᵀ) and tall (its transpose) agree with each other.
    const wide = a.slice(0, 4 * n);
    const tall = Float64Array.from({ length: 4 * n }, (_, i) => wide[(i % 4) * n + Math.floor(i / 4)]);
    const sw = singularValues(wide, 4, n);
    const st = singularValues(tall, n, 4);
    assert.equal(sw.length, 4);
    assertAllClose(sw, st, { atol: 1e-12, rtol: 1e-10 }, "wide vs tall σ");
    // A 2×3 matrix with known σ: [[3, 0, 0], [0, 0, 4]] → 4, 3.
    assert.deepEqual(Array.from(singularValues([3, 0, 0, 0, 0, 4], 2, 3)), [4, 3]);
    const q = randomOrthogonal(40, gen);
    assertAllClose(singularValues(q, 40, 40), new Float64Array(40).fill(1), { atol: 0, rtol: 1e-12 }, "σ of an orthogonal matrix");
  });

  it("distribution: min, p15, median, p85, max", () => {
    assert.deepEqual(distribution([4, 0, 2, 1, 3]), { min: 0, p15: 0.6, median: 2, p85: 3.4, max: 4 });
  });
});

/** A small §4.1-like network (6 → 5 → 4 → 3 → 2) with non-trivial BN statistics, in float32 as trained. */
function smallNetwork(kind: "baseline" | "batchnorm", gen: Generator): nn.Sequential {
  const layers: nn.Module[] = [];
  const widths = [6, 5, 4, 3];
  for (let l = 1; l < widths.length; l++) {
    const lin = new nn.Linear(widths[l - 1], widths[l], { bias: kind === "baseline", generator: gen });
    nn.init.normal(lin.weight, { std: 0.8, generator: gen });
    if (lin.bias) nn.init.normal(lin.bias, { std: 0.3, generator: gen });
    layers.push(lin);
    if (kind === "batchnorm") {
      const bn = new nn.BatchNorm1d(widths[l]);
      for (let k = 0; k < widths[l]; k++) {
        bn.weight!.data[k] = (k % 2 === 0 ? 1 : -1) * (0.5 + gen.uniform());
        bn.bias!.data[k] = gen.normal() * 0.3;
        bn.runningMean!.data[k] = gen.normal() * 0.2;
        bn.runningVar!.data[k] = 0.2 + gen.uniform();
      }
      layers.push(bn);
    }
    layers.push(new nn.Sigmoid());
  }
  layers.push(new nn.Linear(3, 2, { generator: gen }));
  return new nn.Sequential(...layers).eval();
}

/** Central finite differences (float64) of rows → z at one input. */
function finiteDifferenceJacobian(f: (x: Float64Array) => Float64Array, x: Float64Array, h = 1e-6): { j: Float64Array; out: number } {
  const out = f(x).length;
  const j = new Float64Array(out * x.length);
  for (let i = 0; i < x.length; i++) {
    const xp = Float64Array.from(x);
    const xm = Float64Array.from(x);
    xp[i] += h;
    xm[i] -= h;
    const yp = f(xp);
    const ym = f(xm);
    for (let k = 0; k < out; k++) j[k * x.length + i] = (yp[k] - ym[k]) / (2 * h);
  }
  return { j, out };
}

function assertDistributionsClose(a: Distribution, b: Distribution, what: string): void {
  const keys = ["min", "p15", "median", "p85", "max"] as const;
  assertAllClose(keys.map((k) => a[k]), keys.map((k) => b[k]), { atol: 1e-8, rtol: 1e-6 }, `${what} min, p15, median, p85, max`);
}

describe("jacobian: layer Jacobians", () => {
  for (const kind of ["baseline", "batchnorm"] as const) {
    it(`${kind}: every layer's and the stack's singular values equal those of float64 finite-difference Jacobians; the reverse-mode rows equal finite differences`, () => {
      const gen = new Generator(kind === "baseline" ? 3 : 4);
      const model = smallNetwork(kind, gen);
      const net = float64Copy(model);
      const n = 4;
      const images = Float64Array.from({ length: n * 6 }, () => gen.uniform());
      const measured = measureJacobians(model, images, n);
      // Pre-activation indices: the module before each Sigmoid.
      const pre: number[] = [];
      for (let i = 0; i < net.length; i++) if (net.at(i) instanceof nn.Sigmoid) pre.push(i - 1);
      const run = (from: number, to: number) => (x: Float64Array) =>
        noGrad(() => {
          let h = new Tensor(Float64Array.from(x), [1, x.length]);
          for (let i = from; i <= to; i++) h = net.at(i).forward(h);
          return Float64Array.from(h.data);
        });
      const zAt = (l: number, x: Float64Array) => run(0, pre[l])(x);
      const perLayer: number[][] = pre.map(() => []);
      const stack: number[] = [];
      for (let r = 0; r < n; r++) {
        const x = images.slice(r * 6, (r + 1) * 6);
        for (let l = 0; l < pre.length; l++) {
          const input = l === 0 ? x : zAt(l - 1, x);
          const f = run(l === 0 ? 0 : pre[l - 1] + 1, pre[l]);
          const { j, out } = finiteDifferenceJacobian(f, input);
          // Layer 1 is measured at one image (its Jacobian is the same at all); compare it there.
          if (l > 0 || r === 0) perLayer[l].push(...singularValues(j, out, input.length));
          // The reverse-mode rows through the modules agree with finite differences.
          const rev = jacobians((t) => {
            let h = t;
            for (let i = l === 0 ? 0 : pre[l - 1] + 1; i <= pre[l]; i++) h = net.at(i).forward(h);
            return h;
          }, input, 1, input.length);
          assertAllClose(rev.values, j, { atol: 1e-8, rtol: 1e-6 }, `${kind} layer ${l + 1} image ${r}: reverse-mode rows vs finite differences`);
        }
        const { j, out } = finiteDifferenceJacobian(run(0, pre[pre.length - 1]), x);
        stack.push(...singularValues(j, out, 6));
      }
      perLayer.forEach((values, l) => assertDistributionsClose(measured.layers[l], distribution(values), `${kind} layer ${l + 1}`));
      assertDistributionsClose(measured.stack, distribution(stack), `${kind} stack`);
      assert.equal(measured.bnTransform.length, kind === "batchnorm" ? 3 : 0);
    });
  }

  it("the BN transform with fixed statistics: singular values |γ|/√(σ²+ε), as the reverse-mode Jacobian of the module says", () => {
    const gen = new Generator(5);
    const net = float64Copy(smallNetwork("batchnorm", gen));
    const bn = net.at(1) as nn.BatchNorm1d;
    const x = Float64Array.from({ length: 3 * 5 }, () => gen.normal());
    const { values, outDim } = jacobians((t) => bn.forward(t), x, 3, 5);
    for (let r = 0; r < 3; r++) {
      const j = values.subarray(r * 25, (r + 1) * 25);
      for (let a = 0; a < 5; a++) for (let b = 0; b < 5; b++) if (a !== b) assert.ok(j[a * 5 + b] === 0, "diagonal");
      const expected = Array.from(bnTransformSingularValues(bn)).sort((p, q) => q - p);
      assertAllClose(singularValues(j, outDim, 5), expected, { atol: 0, rtol: 1e-12 }, `image ${r}: σ vs |γ|/√(σ²+ε)`);
      assertAllClose(Array.from({ length: 5 }, (_, k) => j[k * 5 + k]), Array.from({ length: 5 }, (_, k) => bn.weight!.data[k] / Math.sqrt(bn.runningVar!.data[k] + bn.eps)), { atol: 0, rtol: 1e-12 }, `image ${r}: diagonal = γ/√(σ²+ε)`);
    }
  });
});

describe("jacobian: the command", () => {
  it("covshift jacobian on a few hundred real images writes jacobian.json (the contract), the picture and the summary", { skip: MNIST.skip }, () => {
    const out = mkdtempSync(join(tmpdir(), "covshift-jacobian-"));
    try {
      const stdout = execFileSync(
        process.execPath,
        ["bin/covshift.js", "jacobian", "--data", MNIST.dir, "--steps", "30", "--every", "10", "--images", "3",
          "--train-limit", "600", "--test-limit", "100", "--backend", "reference", "--out", out],
        { encoding: "utf8", env: { ...process.env, CI: "1" }, stdio: ["ignore", "pipe", "pipe"] },
      );
      assert.match(stdout, /§3\.3/);
      const result = JSON.parse(readFileSync(join(out, "jacobian.json"), "utf8"));
      for (const key of ["steps", "every", "images", "seed", "lr", "momentum", "initStd", "batchSize", "hidden"]) {
        assert.ok(key in result.config, `config.${key}`);
      }
      assert.equal(result.config.every, 10);
      assert.equal(result.config.images, 3);
      assert.deepEqual(result.runs.map((r: { network: string }) => r.network), ["baseline", "batchnorm"]);
      for (const run of result.runs) {
        assert.equal(run.seed, 0);
        assert.deepEqual(run.steps, [10, 20, 30]);
        assert.deepEqual(run.layers.map((l: { layer: number }) => l.layer), [1, 2, 3]);
        for (const l of [...run.layers, run.stack]) {
          const sv = l.singularValues;
          assert.deepEqual(Object.keys(sv), ["min", "p15", "median", "p85", "max"]);
          for (const k of Object.keys(sv)) assert.equal(sv[k].length, 3, k);
          for (let i = 0; i < 3; i++) assert.ok(sv.min[i] <= sv.p15[i] && sv.p15[i] <= sv.median[i] && sv.median[i] <= sv.p85[i] && sv.p85[i] <= sv.max[i]);
        }
        assert.equal(run.bnTransform.length, run.network === "batchnorm" ? 3 : 0);
      }
      assert.equal(typeof result.findings.supports, "boolean");
      assert.ok(existsSync(join(out, "jacobian.svg")) && existsSync(join(out, "jacobian.png")));
      // The summary states the JSON's verdict (which one depends on the run, not on this test).
      const verdict = result.findings.supports ? /\bSupports the conjecture/ : /\bDoes not support the conjecture/;
      assert.match(readFileSync(join(out, "summary.md"), "utf8"), verdict);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("bad options give a clear message and exit code 1", () => {
    const run = (args: string[]) => spawnSync(process.execPath, ["bin/covshift.js", "jacobian", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
    const dir = mkdtempSync(join(tmpdir(), "covshift-jacobian-"));
    try {
      const r1 = run(["--data", join(dir, "no-data"), "--no-download", "--steps", "100", "--every", "200", "--out", join(dir, "a")]);
      assert.equal(r1.status, 1);
      assert.match(r1.stderr, /--every \(200\) must not exceed --steps \(100\)/);
      assert.doesNotMatch(r1.stderr, /    at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("--images beyond the test images gives a clear message and exit code 1", { skip: MNIST.skip }, () => {
    const run = (args: string[]) => spawnSync(process.execPath, ["bin/covshift.js", "jacobian", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
    const dir = mkdtempSync(join(tmpdir(), "covshift-jacobian-"));
    try {
      const r2 = run(["--data", MNIST.dir, "--images", "500", "--test-limit", "100", "--train-limit", "100", "--steps", "10", "--every", "10", "--out", join(dir, "b")]);
      assert.equal(r2.status, 1);
      assert.match(r2.stderr, /--images 500 asks for more test images than there are \(100\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- the runner: options, checkpoints, resume

/** Synthetic image sets for the trainer itself. */
function imageSet(count: number, seed: number): ImageSet {
  const g = new Generator(seed);
  return { images: Float32Array.from({ length: count * 784 }, () => g.uniform()), labels: Uint8Array.from({ length: count }, () => g.randint(10)), count };
}

const tiny: JacobianConfig = { ...defaultJacobianConfig, steps: 12, every: 4, images: 2, hidden: [8, 8, 8], backend: "reference" };
const CKPT = "/out/checkpoints/batchnorm.safetensors";
const header = { command: "jacobian", run: "batchnorm", backend: "reference" };

describe("jacobian: on the experiment runner", () => {
  it("bad options are refused before any data is read, each naming the option, what it got and what it accepts", () => {
    const dir = mkdtempSync(join(tmpdir(), "covshift-jacobian-"));
    try {
      writeFileSync(join(dir, "a-file"), "not a folder");
      assertRefused("jacobian", ["--data", join(dir, "no-data"), "--no-download", "--out", join(dir, "out")], [
        [["--images", "500", "--test-limit", "100"], /--images 500 asks for more test images than there are \(100\)/],
        [["--threads", "-3"], /--threads must be a whole number ≥ 1 .*; got -3/],
        [["--resume", "--overwrite"], /--resume and --overwrite contradict each other/],
        [["--train-limit", "30"], /--train-limit must be a whole number ≥ 60 .*; got 30/],
        [["--test-limit", "0"], /--test-limit must be a whole number ≥ 1; got 0/],
        [["--steps", "100", "--every", "200"], /--every \(200\) must not exceed --steps \(100\)/],
        [["--images", "0"], /--images must be a positive integer; got 0/],
        [["--lr", "-1"], /--lr/],
        [["--out", join(dir, "a-file")], /--out .*a-file is a file, not a directory/],
      ], { noData: /MNIST|idx3-ubyte/ });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a checkpoint restored through its bytes continues to the identical run; every damaged field is refused naming the file and the field, and nothing changes", () => {
    const train = imageSet(120, 1);
    const test = imageSet(20, 2);
    const whole = new JacobianTrainer("batchnorm", tiny, train, test);
    while (!whole.done) {
      whole.trainStep();
      if (whole.step % tiny.every === 0) whole.record();
    }
    const first = new JacobianTrainer("batchnorm", tiny, train, test);
    while (first.step < 6) {
      first.trainStep();
      if (first.step % tiny.every === 0) first.record();
    }
    const bytes = encodeCheckpoint(header, first.checkpoint());
    const state = decodeCheckpoint(bytes, CKPT).state as { jacobian: { run: Record<string, unknown> } };

    // Edits a lying writer (or a damaged disk behind a valid checksum) could make, and what each error names.
    const edits: [string, (s: any) => void, RegExp][] = [
      ["a NaN (saved as null) in a series", (s) => (s.jacobian.run.layers[1].singularValues.median[0] = null), /"jacobian\.run\.layers\[1\]\.singularValues\.median\[0\]" must be a finite number/],
      ["a series one entry short", (s) => s.jacobian.run.stack.singularValues.max.pop(), /"jacobian\.run\.stack\.singularValues\.max" must hold 1 values/],
      ["a negative singular value", (s) => (s.jacobian.run.bnTransform[0].singularValues.min[0] = -1), /"jacobian\.run\.bnTransform\[0\]\.singularValues\.min\[0\]" must be a finite number in \[0, Infinity\]/],
      ["percentiles out of order", (s) => (s.jacobian.run.layers[0].singularValues.p15[0] = 1e9), /"jacobian\.run\.layers\[0\]\.singularValues\.min\[0\]" … max\[0\] are not in order/],
      ["a layer missing", (s) => s.jacobian.run.layers.pop(), /"jacobian\.run\.layers" must hold 3 entries; it holds 2/],
      ["a step off the --every grid", (s) => (s.jacobian.run.steps[0] = 5), /"jacobian\.run\.steps\[0\]" is 5; the Jacobians are measured every 4 steps/],
      ["an accuracy above 1", (s) => (s.jacobian.run.testAccuracy[0] = 1.5), /"jacobian\.run\.testAccuracy\[0\]" must be a finite number in \[0, 1\]/],
      ["another network's run", (s) => (s.jacobian.run.network = "baseline"), /"jacobian\.run\.network" is not batchnorm/],
      ["a loss count beyond --every", (s) => (s.jacobian.lossCount = 1e9), /"jacobian\.lossCount" must be a whole number in \[0, 4\]/],
      ["no jacobian state at all", (s) => delete s.jacobian, /"jacobian" is missing/],
      ["a step beyond --steps", (s) => (s.step = 5000), /"step" must be a whole number in \[0, 12\]/],
    ];
    for (const [what, edit, message] of edits) {
      const edited = structuredClone(state);
      edit(edited);
      const decoded = decodeCheckpoint(encodeCheckpoint(header, { tensors: decodeCheckpoint(bytes, CKPT).tensors, state: edited }), CKPT);
      const target = new JacobianTrainer("batchnorm", tiny, train, test);
      const before = JSON.stringify(target.run);
      assert.throws(() => target.restore(decoded, CKPT), (err: Error) => {
        assert.match(err.message, /^checkpoint \/out\/checkpoints\/batchnorm\.safetensors: /, what);
        assert.match(err.message, message, what);
        assert.match(err.message, /Delete .* to start that run again/, what);
        return true;
      }, what);
      assert.equal(JSON.stringify(target.run), before, `${what}: the run is unchanged`);
      assert.equal(target.step, 0, `${what}: the trainer is unchanged`);
    }

    const resumed = new JacobianTrainer("batchnorm", tiny, train, test);
    resumed.restore(decodeCheckpoint(bytes, CKPT), CKPT);
    assert.equal(resumed.step, 6);
    while (!resumed.done) {
      resumed.trainStep();
      if (resumed.step % tiny.every === 0) resumed.record();
    }
    const strip = ({ wallSeconds: _w, jacobianSeconds: _j, trainSeconds: _t, ...rest }: typeof whole.run) => rest;
    assert.deepEqual(strip(resumed.run), strip(whole.run));
  });

  it("runJacobian: a corrupt checkpoint stops --resume with an error naming the file; stopped and resumed, it gives the uninterrupted jacobian.json runs", async () => {
    const data = fakeMnistDir(240, 40);
    const whole = mkdtempSync(join(tmpdir(), "covshift-jacobian-"));
    const parted = mkdtempSync(join(tmpdir(), "covshift-jacobian-"));
    try {
      const config: JacobianConfig = { ...tiny, steps: 16, every: 4, batchSize: 20 };
      const options = { config, dataDir: data, download: false, threads: 1 };
      const full = await runJacobian({ ...options, outDir: whole });
      assert.equal(full.status, "complete");
      const stopFlag = new SharedArrayBuffer(4);
      const stopped = await runJacobian({
        ...options,
        outDir: parted,
        stopFlag,
        // Stop once the BN run itself has evaluated twice (steps 4 and 8), so its checkpoint holds
        // the series edited below whichever of the two runs is ahead.
        onEvent: (network, m) => {
          if (network === "batchnorm" && m.type === "eval" && m.step >= 8) Atomics.store(new Int32Array(stopFlag), 0, 1);
        },
      });
      assert.equal(stopped.status, "interrupted");
      const file = join(parted, "checkpoints", "batchnorm.safetensors");
      const good = readFileSync(file);
      // A flipped byte: the checksum refuses it, naming the file.
      const flipped = Uint8Array.from(good);
      flipped[flipped.length - 3] ^= 0x10;
      writeFileSync(file, flipped);
      await assert.rejects(runJacobian({ ...options, outDir: parted, resume: true }), /checkpoint .*batchnorm\.safetensors: its contents do not match its checksum/);
      // A series edited behind a valid checksum: refused naming the file and the field.
      const decoded = decodeCheckpoint(good, file);
      const state = structuredClone(decoded.state) as any;
      state.jacobian.run.layers[2].singularValues.max[0] = null;
      writeFileSync(file, encodeCheckpoint({ command: "jacobian", run: "batchnorm", backend: decoded.backend }, { tensors: decoded.tensors, state }));
      await assert.rejects(
        runJacobian({ ...options, outDir: parted, resume: true }),
        /checkpoint .*batchnorm\.safetensors: "jacobian\.run\.layers\[2\]\.singularValues\.max\[0\]" must be a finite number/,
      );
      writeFileSync(file, good);
      const resumed = await runJacobian({ ...options, outDir: parted, resume: true });
      assert.equal(resumed.status, "complete");
      if (full.status !== "complete" || resumed.status !== "complete") return;
      const strip = (runs: typeof full.result.runs) => runs.map(({ wallSeconds: _w, jacobianSeconds: _j, ...rest }) => ({ ...rest, trainSeconds: undefined }));
      assert.deepEqual(strip(resumed.result.runs), strip(full.result.runs));
    } finally {
      for (const d of [data, whole, parted]) rmSync(d, { recursive: true, force: true });
    }
  });
});
