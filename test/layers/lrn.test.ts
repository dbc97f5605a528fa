/**
 * LocalResponseNorm as PyTorch's nn.LocalResponseNorm:
 * y_c = x_c / (k + α/n · Σ_{c' = c − ⌊n/2⌋}^{c + ⌊(n−1)/2⌋} x_{c'}²)^β, zero-padded across channels.
 * Forward against hand computations; backward against central finite
 * differences (float64, helpers.gradcheck: h = 1e-6, atol 1e-7, rtol 1e-5).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, ops, tensor } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { gradcheck, randn } from "../core/helpers.js";

const gen = new Generator(2012);
// four channels at one pixel: x = (1, 2, 3, 4), squares (1, 4, 9, 16)
const x4 = () => tensor([1, 2, 3, 4], [1, 4, 1, 1], { dtype: "float64" });

describe("localResponseNorm forward, by hand (atol 1e-15, rtol 1e-14)", () => {
  it("size 3, α = 1, β = 0.5, k = 2: the window of c is c−1..c+1, so Σx² = 5, 14, 29, 25", () => {
    const y = ops.localResponseNorm(x4(), 3, { alpha: 1, beta: 0.5, k: 2 });
    const expected = [1 / Math.sqrt(2 + 5 / 3), 2 / Math.sqrt(2 + 14 / 3), 3 / Math.sqrt(2 + 29 / 3), 4 / Math.sqrt(2 + 25 / 3)];
    assertAllClose(y.data, expected, { atol: 1e-15, rtol: 1e-14 });
  });
  it("even size 2: the window of c is c−1..c (one channel before, none after), Σx² = 1, 5, 13, 25", () => {
    const y = ops.localResponseNorm(x4(), 2, { alpha: 1, beta: 0.5, k: 2 });
    const expected = [1 / Math.sqrt(2 + 1 / 2), 2 / Math.sqrt(2 + 5 / 2), 3 / Math.sqrt(2 + 13 / 2), 4 / Math.sqrt(2 + 25 / 2)];
    assertAllClose(y.data, expected, { atol: 1e-15, rtol: 1e-14 });
  });
  it("even size 4: the window of c is c−2..c+1, Σx² = 5, 14, 30, 29", () => {
    const y = ops.localResponseNorm(x4(), 4, { alpha: 2, beta: 0.75, k: 1 });
    const expected = [1, 2, 3, 4].map((v, c) => v / Math.pow(1 + (2 / 4) * [5, 14, 30, 29][c], 0.75));
    assertAllClose(y.data, expected, { atol: 1e-15, rtol: 1e-14 });
  });
  it("size 1 normalizes each value by its own square: y = x/(k + α·x²)^β", () => {
    const y = ops.localResponseNorm(x4(), 1, { alpha: 0.5, beta: 1, k: 1 });
    assertAllClose(y.data, [1, 2, 3, 4].map((v) => v / (1 + 0.5 * v * v)), { atol: 1e-15, rtol: 1e-14 });
  });
  it("a window wider than the channels sums every channel: size 9 on 4 channels gives Σx² = 30 for all", () => {
    const y = ops.localResponseNorm(x4(), 9, { alpha: 9, beta: 1, k: 0 });
    assertAllClose(y.data, [1, 2, 3, 4].map((v) => v / 30), { atol: 1e-15, rtol: 1e-14 });
  });
  it("PyTorch's defaults (α = 1e-4, β = 0.75, k = 1) in nn.LocalResponseNorm(5), per pixel and per example", () => {
    const m = new nn.LocalResponseNorm(5);
    assert.deepEqual([m.alpha, m.beta, m.k], [1e-4, 0.75, 1]);
    const x = randn([2, 6, 3, 4], gen, { scale: 20 });
    const y = m.forward(x);
    const [N, C, S] = [2, 6, 12];
    const expected = new Float64Array(x.size);
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++)
        for (let s = 0; s < S; s++) {
          let sq = 0;
          for (let c2 = c - 2; c2 <= c + 2; c2++) if (c2 >= 0 && c2 < C) sq += x.data[(n * C + c2) * S + s] ** 2;
          expected[(n * C + c) * S + s] = x.data[(n * C + c) * S + s] / Math.pow(1 + (1e-4 / 5) * sq, 0.75);
        }
    assertAllClose(y.data, expected, { atol: 1e-15, rtol: 1e-14 });
  });
  it("accepts (N, C, L) as PyTorch, and refuses 2-d inputs and a non-integer size", () => {
    assert.deepEqual([...ops.localResponseNorm(randn([2, 3, 4], gen), 3).shape], [2, 3, 4]);
    assert.throws(() => ops.localResponseNorm(randn([2, 3], gen), 3), /at least 3 dimensions/);
    assert.throws(() => new nn.LocalResponseNorm(2.5), /size must be a positive integer/);
  });
});

describe("gradcheck: localResponseNorm (float64, atol 1e-7, rtol 1e-5)", () => {
  const strong = { alpha: 0.5, beta: 0.75, k: 1.5 };
  for (const size of [1, 2, 3, 4, 5, 9]) {
    it(`size ${size}, α = 0.5, β = 0.75, k = 1.5 on (2, 5, 3, 2): windows odd and even, narrower and wider than C`, () => {
      gradcheck(([x]) => ops.localResponseNorm(x, size, strong), [randn([2, 5, 3, 2], gen, { requiresGrad: true })]);
    });
  }
  it("PyTorch's defaults, size 5, on large activations (scale 30) where the normalization bites", () => {
    gradcheck(([x]) => new nn.LocalResponseNorm(5).forward(x), [randn([2, 7, 2, 3], gen, { requiresGrad: true, scale: 30 })], { rtol: 1e-5, atol: 1e-7 });
  });
  it("a 3-d (N, C, L) input, size 3", () => {
    gradcheck(([x]) => ops.localResponseNorm(x, 3, strong), [randn([2, 4, 5], gen, { requiresGrad: true })]);
  });
});
