/**
 * Pooling: maxPool2d (padding as −∞, argmax routing, ties to the first
 * maximum), avgPool2d (with and without counting the padding),
 * adaptiveAvgPool2d and the global average pooling + Flatten at the top of
 * Inception. Gradients against central finite differences in float64
 * (helpers.gradcheck: h = 1e-6, atol 1e-7, rtol 1e-5).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, ops, Tensor, tensor } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { gradcheck, randn } from "../core/helpers.js";

const gen = new Generator(42);

/**
 * Distinct values (a random permutation of 0..n−1, times 0.1, plus noise
 * below 0.01): every window has a unique maximum with a gap ≥ 0.08, far more
 * than the finite-difference step, so max pooling is differentiable there.
 */
function distinct(shape: number[]): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const perm = gen.permutation(n);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = 0.1 * (perm[i] - n / 2) + 0.01 * gen.uniform();
  return new Tensor(data, shape, true);
}

/** The definition of max pooling: the max over the in-range part of each window (padding never wins). */
function directMaxPool(x: Tensor, k: [number, number], s: [number, number], p: [number, number]): number[] {
  const [N, C, H, W] = x.shape;
  const OH = Math.floor((H + 2 * p[0] - k[0]) / s[0]) + 1;
  const OW = Math.floor((W + 2 * p[1] - k[1]) / s[1]) + 1;
  const out: number[] = [];
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let m = -Infinity;
        for (let i = 0; i < k[0]; i++)
          for (let j = 0; j < k[1]; j++) {
            const ih = oh * s[0] - p[0] + i;
            const iw = ow * s[1] - p[1] + j;
            if (ih >= 0 && ih < H && iw >= 0 && iw < W) m = Math.max(m, x.data[(nc * H + ih) * W + iw]);
          }
        out.push(m);
      }
  return out;
}

describe("maxPool2d forward", () => {
  const configs: [string, [number, number], [number, number], [number, number]][] = [
    ["2×2, stride 2 (the default stride is the kernel)", [2, 2], [2, 2], [0, 0]],
    ["3×3, stride 2, padding 1 on a 5×7 image", [3, 3], [2, 2], [1, 1]],
    ["3×3, stride 1, padding 1 (Inception's pool branch: same size out)", [3, 3], [1, 1], [1, 1]],
    ["non-square 2×3, stride [1, 2], padding [1, 1]", [2, 3], [1, 2], [1, 1]],
  ];
  for (const [label, k, s, p] of configs) {
    it(`${label} equals the direct definition exactly`, () => {
      const x = randn([2, 3, 5, 7], gen);
      const y = ops.maxPool2d(x, k, { stride: s, padding: p });
      assert.deepEqual([...y.data], directMaxPool(x, k, s, p));
    });
  }
  it("padding acts as −∞: on an all-negative input, padded windows give the largest negative value, never 0", () => {
    const x = tensor([-5, -4, -3, -2, -1, -6, -7, -8, -9], [1, 1, 3, 3], { dtype: "float64" });
    const y = ops.maxPool2d(x, 3, { stride: 1, padding: 1 });
    // window of output (0,0) covers x[0..1, 0..1] = {−5, −4, −2, −1}
    assert.deepEqual(y.toArray(), [[[[-1, -1, -1], [-1, -1, -1], [-1, -1, -1]]]]);
    assert.ok(y.data.every((v) => v < 0));
  });
  it("the default stride is the kernel size; nn.MaxPool2d matches the op", () => {
    const x = randn([1, 2, 4, 6], gen);
    const m = new nn.MaxPool2d(2);
    assert.deepEqual(m.stride, [2, 2]);
    const y = m.forward(x);
    assert.deepEqual([...y.shape], [1, 2, 2, 3]);
    assert.deepEqual([...y.data], [...ops.maxPool2d(x, 2, { stride: 2 }).data]);
  });
  it("padding larger than half the kernel is refused, as in PyTorch", () => {
    assert.throws(() => ops.maxPool2d(randn([1, 1, 4, 4], gen), 2, { padding: 2 }), /padding \[2, 2\] must be at most half the kernel \[2, 2\]/);
    assert.throws(() => new nn.AvgPool2d(3, { padding: 2 }).forward(randn([1, 1, 4, 4], gen)), /at most half the kernel/);
  });
  it("a NaN in a window propagates to that window's output", () => {
    const x = tensor([1, NaN, 3, 4], [1, 1, 2, 2], { dtype: "float64" });
    assert.ok(Number.isNaN(ops.maxPool2d(x, 2).item()));
  });
});

describe("maxPool2d backward routes each gradient to its window's argmax", () => {
  it("non-overlapping 2×2 windows: the gradient lands on the maximum of each window, zero elsewhere", () => {
    const x = tensor(
      [
        [1, 9, 2, 3],
        [4, 5, 8, 6],
        [7, 0, 1, 2],
        [3, 1, 4, 0],
      ],
      [1, 1, 4, 4],
      { dtype: "float64", requiresGrad: true },
    );
    ops.maxPool2d(x, 2).backward([10, 20, 30, 40]);
    assert.deepEqual(x.grad!.toArray(), [[[
      [0, 10, 0, 0],
      [0, 0, 20, 0],
      [30, 0, 0, 0],
      [0, 0, 40, 0],
    ]]]);
  });
  it("ties go to the first maximum in row-major order, as PyTorch", () => {
    const x = tensor(
      [
        [2, 7, 7, 1],
        [7, 1, 3, 7],
      ],
      [1, 1, 2, 4],
      { dtype: "float64", requiresGrad: true },
    );
    ops.maxPool2d(x, 2).backward([1, 1]);
    // window 1 holds 7 at (0,1) and (1,0): (0,1) comes first; window 2 holds 7 at (0,2) and (1,3)
    assert.deepEqual(x.grad!.toArray(), [[[
      [0, 1, 1, 0],
      [0, 0, 0, 0],
    ]]]);
  });
  it("overlapping windows (3×3, stride 1, padding 1): an input that is the max of several windows collects their sum", () => {
    const x = tensor([1, 2, 3, 4, 9, 5, 6, 7, 8], [1, 1, 3, 3], { dtype: "float64", requiresGrad: true });
    ops.maxPool2d(x, 3, { stride: 1, padding: 1 }).backward(new Float64Array(9).fill(1));
    // 9 at the centre is in every window; so is nothing else
    assert.deepEqual(x.grad!.toArray(), [[[
      [0, 0, 0],
      [0, 9, 0],
      [0, 0, 0],
    ]]]);
  });
});

describe("gradcheck: maxPool2d on inputs with unique window maxima (float64, atol 1e-7, rtol 1e-5)", () => {
  it("3×3, stride 2, padding 1 on (2, 3, 5, 7)", () => gradcheck(([x]) => ops.maxPool2d(x, 3, { stride: 2, padding: 1 }), [distinct([2, 3, 5, 7])]));
  it("non-square 2×3, stride [1, 2], padding [1, 1] on (1, 2, 5, 7)", () => {
    gradcheck(([x]) => ops.maxPool2d(x, [2, 3], { stride: [1, 2], padding: [1, 1] }), [distinct([1, 2, 5, 7])]);
  });
  it("overlapping 3×3, stride 1, padding 1 on (1, 2, 5, 7)", () => gradcheck(([x]) => ops.maxPool2d(x, 3, { stride: 1, padding: 1 }), [distinct([1, 2, 5, 7])]));
});

describe("avgPool2d", () => {
  // x = 1..9 on a 3×3 plane; a 3×3 window, stride 1, padding 1
  const x = () => tensor([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3], { dtype: "float64" });
  it("countIncludePad true (PyTorch's default) divides every window by kh·kw = 9, padded zeros included", () => {
    const y = ops.avgPool2d(x(), 3, { stride: 1, padding: 1 });
    const expected = [
      [1 + 2 + 4 + 5, 1 + 2 + 3 + 4 + 5 + 6, 2 + 3 + 5 + 6],
      [1 + 2 + 4 + 5 + 7 + 8, 45, 2 + 3 + 5 + 6 + 8 + 9],
      [4 + 5 + 7 + 8, 4 + 5 + 6 + 7 + 8 + 9, 5 + 6 + 8 + 9],
    ].flat().map((s) => s / 9);
    assertAllClose(y.data, expected, { atol: 1e-15, rtol: 1e-15 });
  });
  it("countIncludePad false divides each window by the number of input values it covers (4 at corners, 6 at edges)", () => {
    const y = ops.avgPool2d(x(), 3, { stride: 1, padding: 1, countIncludePad: false });
    const expected = [
      [(1 + 2 + 4 + 5) / 4, (1 + 2 + 3 + 4 + 5 + 6) / 6, (2 + 3 + 5 + 6) / 4],
      [(1 + 2 + 4 + 5 + 7 + 8) / 6, 45 / 9, (2 + 3 + 5 + 6 + 8 + 9) / 6],
      [(4 + 5 + 7 + 8) / 4, (4 + 5 + 6 + 7 + 8 + 9) / 6, (5 + 6 + 8 + 9) / 4],
    ].flat();
    assertAllClose(y.data, expected, { atol: 1e-15, rtol: 1e-15 });
  });
  it("nn.AvgPool2d defaults: stride = kernel, no padding, countIncludePad true", () => {
    const m = new nn.AvgPool2d([2, 3]);
    assert.deepEqual([m.stride, m.padding, m.countIncludePad], [[2, 3], [0, 0], true]);
    const t = randn([2, 2, 4, 7], gen);
    const y = m.forward(t);
    assert.deepEqual([...y.shape], [2, 2, 2, 2]);
    // output (0, 0, 1, 1) averages rows 2..3, columns 3..5 of plane 0
    let s = 0;
    for (let i = 2; i < 4; i++) for (let j = 3; j < 6; j++) s += t.data[i * 7 + j];
    assertAllClose(y.data[3], s / 6, { atol: 1e-15, rtol: 1e-14 });
  });
  for (const countIncludePad of [true, false]) {
    it(`gradcheck (atol 1e-7, rtol 1e-5): 3×3, stride 2, padding 1 on (2, 3, 5, 7), countIncludePad ${countIncludePad}`, () => {
      gradcheck(([t]) => ops.avgPool2d(t, 3, { stride: 2, padding: 1, countIncludePad }), [randn([2, 3, 5, 7], gen, { requiresGrad: true })]);
    });
    it(`gradcheck (atol 1e-7, rtol 1e-5): non-square 2×3, stride [1, 2], padding [1, 1], countIncludePad ${countIncludePad}`, () => {
      gradcheck(([t]) => ops.avgPool2d(t, [2, 3], { stride: [1, 2], padding: [1, 1], countIncludePad }), [randn([1, 2, 5, 7], gen, { requiresGrad: true })]);
    });
  }
});

describe("adaptive and global average pooling", () => {
  it("adaptiveAvgPool2d (5, 7) → (2, 3) averages rows ⌊i·5/2⌋..⌈(i+1)·5/2⌉−1 and columns ⌊j·7/3⌋..⌈(j+1)·7/3⌉−1 (overlapping windows)", () => {
    const x = randn([1, 1, 5, 7], gen);
    const y = ops.adaptiveAvgPool2d(x, [2, 3]);
    const rows = [[0, 3], [2, 5]];
    const cols = [[0, 3], [2, 5], [4, 7]];
    const expected: number[] = [];
    for (const [r0, r1] of rows)
      for (const [c0, c1] of cols) {
        let s = 0;
        for (let i = r0; i < r1; i++) for (let j = c0; j < c1; j++) s += x.data[i * 7 + j];
        expected.push(s / ((r1 - r0) * (c1 - c0)));
      }
    assertAllClose(y.data, expected, { atol: 1e-15, rtol: 1e-14 });
  });
  it("adaptiveAvgPool2d to the input's own size is the identity", () => {
    const x = randn([2, 3, 4, 5], gen);
    assert.deepEqual([...ops.adaptiveAvgPool2d(x, [4, 5]).data], [...x.data]);
  });
  it("GlobalAvgPool2d = AdaptiveAvgPool2d(1): (N, C, H, W) → (N, C, 1, 1), the mean of each plane (atol 1e-15, rtol 1e-14)", () => {
    const x = randn([3, 4, 5, 7], gen);
    const y = new nn.GlobalAvgPool2d().forward(x);
    assert.deepEqual([...y.shape], [3, 4, 1, 1]);
    const means = Array.from({ length: 12 }, (_, p) => Array.from(x.data.subarray(p * 35, (p + 1) * 35)).reduce((s, v) => s + v, 0) / 35);
    assertAllClose(y.data, means, { atol: 1e-15, rtol: 1e-14 });
    assert.deepEqual([...new nn.AdaptiveAvgPool2d(1).forward(x).data], [...y.data]);
  });
  it("GlobalAvgPool2d → Flatten gives (N, C), ready for the classifier's Linear", () => {
    const head = new nn.Sequential(new nn.GlobalAvgPool2d(), new nn.Flatten(), new nn.Linear(4, 10, { dtype: "float64", generator: new Generator(1) }));
    const y = head.forward(randn([3, 4, 5, 7], gen));
    assert.deepEqual([...y.shape], [3, 10]);
    assert.deepEqual([...new nn.Flatten().forward(new nn.GlobalAvgPool2d().forward(randn([3, 4, 5, 7], gen))).shape], [3, 4]);
  });
  it("gradcheck (atol 1e-7, rtol 1e-5): adaptiveAvgPool2d (5, 7) → (2, 3)", () => {
    gradcheck(([x]) => ops.adaptiveAvgPool2d(x, [2, 3]), [randn([2, 3, 5, 7], gen, { requiresGrad: true })]);
  });
  it("gradcheck (atol 1e-7, rtol 1e-5): GlobalAvgPool2d → Flatten on (2, 3, 5, 7)", () => {
    const head = new nn.Sequential(new nn.GlobalAvgPool2d(), new nn.Flatten());
    gradcheck(([x]) => head.forward(x), [randn([2, 3, 5, 7], gen, { requiresGrad: true })]);
  });
});
