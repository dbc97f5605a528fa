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
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
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

const MNIST = resolve("../shared/data/mnist");

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

const close = (a: number, b: number, rtol: number, atol = 0, what = "") =>
  assert.ok(Math.abs(a - b) <= atol + rtol * Math.abs(b), `${what}: ${a} vs ${b}`);

describe("jacobian: singular values (float64 Jacobi)", () => {
  it("eigenvalues of known symmetric matrices, sorted descending", () => {
    assert.deepEqual(Array.from(symmetricEigenvalues([2, 1, 1, 2], 2)).map((v) => +v.toFixed(12)), [3, 1]);
    const e = symmetricEigenvalues([4, 1, 0, 1, 3, 1, 0, 1, 2], 3); // eigenvalues 3 and 3 ± √3
    [3 + Math.sqrt(3), 3, 3 - Math.sqrt(3)].forEach((v, i) => close(e[i], v, 1e-13, 1e-13, `λ${i}`));
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
    sigma.forEach((x, i) => close(s[i], x, 1e-9, 1e-12, `σ${i}`));
    // Wide (first 4 rows of a: U's first 4 rows times Σ Vᵀ) and tall (its transpose) agree with each other.
    const wide = a.slice(0, 4 * n);
    const tall = Float64Array.from({ length: 4 * n }, (_, i) => wide[(i % 4) * n + Math.floor(i / 4)]);
    const sw = singularValues(wide, 4, n);
    const st = singularValues(tall, n, 4);
    assert.equal(sw.length, 4);
    sw.forEach((x, i) => close(x, st[i], 1e-10, 1e-12, `wide vs tall σ${i}`));
    // A 2×3 matrix with known σ: [[3, 0, 0], [0, 0, 4]] → 4, 3.
    assert.deepEqual(Array.from(singularValues([3, 0, 0, 0, 0, 4], 2, 3)), [4, 3]);
    const q = randomOrthogonal(40, gen);
    for (const x of singularValues(q, 40, 40)) close(x, 1, 1e-12, 0, "σ of an orthogonal matrix");
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
  for (const key of ["min", "p15", "median", "p85", "max"] as const) close(a[key], b[key], 1e-6, 1e-8, `${what} ${key}`);
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
          rev.values.forEach((v, i) => close(v, j[i], 1e-6, 1e-8, `${kind} layer ${l + 1} image ${r} reverse-mode entry ${i}`));
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
      singularValues(j, outDim, 5).forEach((s, i) => close(s, expected[i], 1e-12, 0, `σ${i}`));
      for (let k = 0; k < 5; k++) close(j[k * 5 + k], bn.weight!.data[k] / Math.sqrt(bn.runningVar!.data[k] + bn.eps), 1e-12);
    }
  });
});

describe("jacobian: the command", () => {
  it("covshift jacobian on a few hundred real images writes jacobian.json (the contract), the picture and the summary", () => {
    const out = mkdtempSync(join(tmpdir(), "covshift-jacobian-"));
    try {
      const stdout = execFileSync(
        process.execPath,
        ["bin/covshift.js", "jacobian", "--data", MNIST, "--steps", "30", "--every", "10", "--images", "3",
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
      assert.match(readFileSync(join(out, "summary.md"), "utf8"), /(Supports|Does not support) the conjecture/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("bad options give a clear message and exit code 1", () => {
    const run = (args: string[]) => spawnSync(process.execPath, ["bin/covshift.js", "jacobian", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
    const dir = mkdtempSync(join(tmpdir(), "covshift-jacobian-"));
    try {
      const r1 = run(["--data", MNIST, "--steps", "100", "--every", "200", "--out", join(dir, "a")]);
      assert.equal(r1.status, 1);
      assert.match(r1.stderr, /--every \(200\) must not exceed --steps \(100\)/);
      assert.doesNotMatch(r1.stderr, /    at /);
      const r2 = run(["--data", MNIST, "--images", "500", "--test-limit", "100", "--train-limit", "100", "--steps", "10", "--every", "10", "--out", join(dir, "b")]);
      assert.equal(r2.status, 1);
      assert.match(r2.stderr, /--images 500 asks for more test images than there are \(100\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
