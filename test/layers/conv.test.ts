/**
 * conv2d and nn.Conv2d: the im2col + GEMM forward against a direct
 * six-loop convolution, the hand-written backward against central finite
 * differences (float64, helpers.gradcheck: h = 1e-6, atol 1e-7, rtol 1e-5),
 * and PyTorch's default initialization.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, ops, Tensor } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { gradcheck, randn } from "../core/helpers.js";

const gen = new Generator(1502_03167);
const R = (shape: number[], requiresGrad = true) => randn(shape, gen, { requiresGrad });

/**
 * The definition, one output at a time:
 * y[n, o, oh, ow] = b[o] + Σ_{c,i,j} W[o, c, i, j]·x[n, c, oh·sh − ph + i, ow·sw − pw + j], zero outside x.
 */
function directConv(x: Tensor, w: Tensor, b: Tensor | null, stride: [number, number], padding: [number, number]): Float64Array {
  const [N, C, H, W] = x.shape;
  const [O, , kh, kw] = w.shape;
  const OH = Math.floor((H + 2 * padding[0] - kh) / stride[0]) + 1;
  const OW = Math.floor((W + 2 * padding[1] - kw) / stride[1]) + 1;
  const y = new Float64Array(N * O * OH * OW);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = b === null ? 0 : b.data[o];
          for (let c = 0; c < C; c++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const ih = oh * stride[0] - padding[0] + i;
                const iw = ow * stride[1] - padding[1] + j;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                s += w.data[((o * C + c) * kh + i) * kw + j] * x.data[((n * C + c) * H + ih) * W + iw];
              }
          y[((n * O + o) * OH + oh) * OW + ow] = s;
        }
  return y;
}

interface Case {
  label: string;
  x: number[];
  w: number[];
  stride: [number, number];
  padding: [number, number];
  bias: boolean;
}

const cases: Case[] = [
  { label: "3×3, stride 1, padding 1 on a 5×7 image", x: [2, 3, 5, 7], w: [4, 3, 3, 3], stride: [1, 1], padding: [1, 1], bias: true },
  { label: "3×3, stride 2, padding 1 on a 5×7 image", x: [2, 3, 5, 7], w: [4, 3, 3, 3], stride: [2, 2], padding: [1, 1], bias: true },
  { label: "non-square 2×3 kernel, stride [2, 1], padding [1, 0], no bias", x: [2, 2, 5, 7], w: [3, 2, 2, 3], stride: [2, 1], padding: [1, 0], bias: false },
  { label: "1×3 kernel, stride [1, 3], padding [0, 2]", x: [1, 2, 4, 7], w: [2, 2, 1, 3], stride: [1, 3], padding: [0, 2], bias: true },
  { label: "pointwise 1×1, stride 1, no padding (the path without im2col)", x: [3, 4, 5, 7], w: [5, 4, 1, 1], stride: [1, 1], padding: [0, 0], bias: true },
  { label: "1×1 with stride 2 (im2col subsamples)", x: [2, 3, 5, 7], w: [2, 3, 1, 1], stride: [2, 2], padding: [0, 0], bias: true },
  { label: "kernel as large as the 5×7 image: a 1×1 output", x: [2, 2, 5, 7], w: [3, 2, 5, 7], stride: [1, 1], padding: [0, 0], bias: true },
  { label: "padding 2 with a 3×3 kernel (outputs reading only padding at the corners)", x: [1, 2, 3, 4], w: [2, 2, 3, 3], stride: [1, 1], padding: [2, 2], bias: true },
];

describe("conv2d forward equals a direct convolution (float64, atol 1e-12, rtol 1e-12)", () => {
  for (const c of cases) {
    it(c.label, () => {
      const x = R(c.x, false);
      const w = R(c.w, false);
      const b = c.bias ? R([c.w[0]], false) : null;
      const y = ops.conv2d(x, w, b, { stride: c.stride, padding: c.padding });
      const OH = Math.floor((c.x[2] + 2 * c.padding[0] - c.w[2]) / c.stride[0]) + 1;
      const OW = Math.floor((c.x[3] + 2 * c.padding[1] - c.w[3]) / c.stride[1]) + 1;
      assert.deepEqual([...y.shape], [c.x[0], c.w[0], OH, OW]);
      assertAllClose(y.data, directConv(x, w, b, c.stride, c.padding), { atol: 1e-12, rtol: 1e-12 }, c.label);
    });
  }
  it("float32 agrees with the float64 direct convolution (atol 1e-5, rtol 1e-5)", () => {
    const x = R([2, 3, 5, 7], false);
    const w = R([4, 3, 3, 3], false);
    const b = R([4], false);
    const y = ops.conv2d(x.to("float32"), w.to("float32"), b.to("float32"), { stride: 2, padding: 1 });
    assert.equal(y.dtype, "float32");
    assertAllClose(y.data, directConv(x, w, b, [2, 2], [1, 1]), { atol: 1e-5, rtol: 1e-5 });
  });
});

describe("gradcheck: conv2d w.r.t. input, weight and bias (float64, atol 1e-7, rtol 1e-5)", () => {
  for (const c of cases) {
    it(c.label, () => {
      const inputs = [R(c.x), R(c.w)];
      if (c.bias) inputs.push(R([c.w[0]]));
      gradcheck(([x, w, b]) => ops.conv2d(x, w, b ?? null, { stride: c.stride, padding: c.padding }), inputs);
    });
  }
  it("only the input requires grad (a frozen layer still passes the gradient down)", () => {
    gradcheck(([x, w, b]) => ops.conv2d(x, w, b, { stride: 2, padding: 1 }), [R([2, 3, 5, 7]), R([4, 3, 3, 3], false), R([4], false)]);
  });
  it("only the weight requires grad (the first layer: no gradient for the images)", () => {
    gradcheck(([x, w]) => ops.conv2d(x, w, null, { stride: 2, padding: 1 }), [R([2, 3, 5, 7], false), R([4, 3, 3, 3])]);
  });
  it("pointwise 1×1 with only the input requiring grad", () => {
    gradcheck(([x, w]) => ops.conv2d(x, w, null), [R([2, 4, 3, 5]), R([3, 4, 1, 1], false)]);
  });
  it("nn.Conv2d(3, 4, [3, 2], stride 2, padding [1, 0]) → ReLU → Conv2d(4, 2, 1): gradients w.r.t. input and every parameter", () => {
    const g = new Generator(7);
    const conv1 = new nn.Conv2d(3, 4, [3, 2], { stride: 2, padding: [1, 0], dtype: "float64", generator: g });
    const conv2 = new nn.Conv2d(4, 2, 1, { dtype: "float64", generator: g });
    const model = new nn.Sequential(conv1, new nn.ReLU(), conv2);
    // ReLU's kink: finite differences are only valid when no pre-activation is within h of 0.
    const x = R([2, 3, 5, 7]);
    const pre = conv1.forward(x);
    assert.ok(pre.data.every((v) => Math.abs(v) > 1e-4), "no pre-activation within 1e-4 of the ReLU kink");
    gradcheck(([t]) => model.forward(t), [x, ...model.parameters()]);
  });
});

describe("nn.Conv2d", () => {
  it("has weight (out, in, kh, kw) and bias (out) under PyTorch's state-dict keys", () => {
    const conv = new nn.Conv2d(3, 8, [3, 5], { stride: [2, 1], padding: [1, 2] });
    assert.deepEqual([...conv.weight.shape], [8, 3, 3, 5]);
    assert.deepEqual([...conv.bias!.shape], [8]);
    assert.deepEqual(Object.keys(conv.stateDict()), ["weight", "bias"]);
    assert.deepEqual(conv.kernelSize, [3, 5]);
    assert.deepEqual(conv.stride, [2, 1]);
    assert.deepEqual(conv.padding, [1, 2]);
    const noBias = new nn.Conv2d(3, 8, 3, { bias: false });
    assert.equal(noBias.bias, null);
    assert.deepEqual(Object.keys(noBias.stateDict()), ["weight"]);
  });
  it("PyTorch default init: weight and bias uniform in ±1/sqrt(fan_in), fan_in = in·kh·kw, filling the range", () => {
    const conv = new nn.Conv2d(16, 64, [3, 5], { generator: new Generator(3) });
    const bound = 1 / Math.sqrt(16 * 3 * 5);
    for (const [name, t] of [["weight", conv.weight], ["bias", conv.bias!]] as const) {
      const max = Math.max(...t.data);
      const min = Math.min(...t.data);
      assert.ok(max <= bound && min >= -bound, `${name} within ±${bound}: [${min}, ${max}]`);
      // for 64 draws of U(−b, b), P(max ≤ 0.8·b) = 0.9^64 ≈ 1e-3; the seed is fixed, so the check is deterministic
      assert.ok(max > 0.8 * bound && min < -0.8 * bound, `${name} spreads over the range: [${min}, ${max}]`);
    }
    // variance of U(−b, b) is b²/3 (15360 weights: relative standard error ≈ 1%, tolerance 5%)
    const w = conv.weight.data;
    let sumSq = 0;
    for (const v of w) sumSq += v * v;
    const variance = sumSq / w.length;
    assertAllClose(variance, (bound * bound) / 3, { atol: 0, rtol: 0.05 }, "weight variance vs b²/3");
  });
  it("the same generator seed gives the same parameters", () => {
    const a = new nn.Conv2d(3, 4, 3, { generator: new Generator(11) });
    const b = new nn.Conv2d(3, 4, 3, { generator: new Generator(11) });
    assert.deepEqual([...a.weight.data], [...b.weight.data]);
    assert.deepEqual([...a.bias!.data], [...b.bias!.data]);
  });
  it("forward equals the op with the module's parameters, in float32 by default", () => {
    const conv = new nn.Conv2d(2, 3, 3, { padding: 1, generator: new Generator(2) });
    const x = randn([2, 2, 4, 5], gen, { dtype: "float32" });
    const y = conv.forward(x);
    assert.equal(y.dtype, "float32");
    assert.deepEqual([...y.shape], [2, 3, 4, 5]);
    assert.deepEqual([...y.data], [...ops.conv2d(x, conv.weight, conv.bias, { padding: 1 }).data]);
  });
  it("errors say what was expected: wrong channel count, wrong dtype, a window larger than the padded input, bad sizes", () => {
    const conv = new nn.Conv2d(3, 4, 3);
    assert.throws(() => conv.forward(randn([2, 5, 8, 8], gen, { dtype: "float32" })), /expected an input of shape \(N, 3, H, W\); got \[2, 5, 8, 8\]/);
    assert.throws(() => conv.forward(randn([2, 3, 8, 8], gen)), /input is float64 but the layer is float32/);
    assert.throws(() => conv.forward(randn([1, 3, 2, 8], gen, { dtype: "float32" })), /3×3 window does not fit the 2×8 input/);
    assert.throws(() => new nn.Conv2d(3, 4, 0), /kernelSize must be an integer ≥ 1/);
    assert.throws(() => new nn.Conv2d(3, 4, 3, { stride: [1, 0] }), /stride must be an integer ≥ 1/);
    assert.throws(() => new nn.Conv2d(3, 4, 3, { padding: -1 }), /padding must be an integer ≥ 0/);
    assert.throws(() => new nn.Conv2d(0, 4, 3), /inChannels must be a positive integer/);
  });
});

describe("conv2dMany: several convolutions of one input", () => {
  it("each output is conv2d's with its own weight and bias (or none), exactly, over a strided padded window", () => {
    const x = R([2, 3, 6, 5], false);
    const ws = [R([2, 3, 3, 3], false), R([4, 3, 3, 3], false), R([1, 3, 3, 3], false)];
    const bs = [R([2], false), null, R([1], false)];
    const options = { stride: 2, padding: 1 };
    const ys = ops.conv2dMany(x, ws, bs, options);
    ys.forEach((y, k) => assert.deepEqual([...y.data], [...ops.conv2d(x, ws[k], bs[k], options).data], `output ${k}`));
    const f32 = ops.conv2dMany(x.to("float32"), ws.map((w) => w.to("float32")), [null, null, null]);
    f32.forEach((y, k) => assert.deepEqual([...y.data], [...ops.conv2d(x.to("float32"), ws[k].to("float32"), null).data], `float32 output ${k}`));
  });
  it("gradcheck (atol 1e-7, rtol 1e-5): x, every weight and bias, with one output the loss does not reach", () => {
    const inputs = [R([2, 3, 4, 5]), R([2, 3, 1, 1]), R([2]), R([3, 3, 1, 1]), R([1, 3, 1, 1]), R([1])];
    gradcheck(([x, w0, b0, w1, w2, b2]) => {
      const [y0, , y2] = ops.conv2dMany(x, [w0, w1, w2], [b0, null, b2]);
      return ops.concat([y0, y2], 1);
    }, inputs);
  });
  it("backward twice over a retained graph adds the same gradients twice", () => {
    const x = R([1, 2, 3, 3]);
    const [y0, y1] = ops.conv2dMany(x, [R([1, 2, 1, 1], false), R([2, 2, 1, 1], false)], [null, null]);
    const loss = ops.add(ops.sum(y0), ops.sum(ops.mul(y1, y1)));
    loss.backward(undefined, { retainGraph: true });
    const once = [...x.grad!.data];
    loss.backward();
    assertAllClose([...x.grad!.data], once.map((v) => 2 * v), { atol: 1e-12, rtol: 1e-12 });
  });
  it("refuses weights of different windows or channels, and a bias list of another length, saying which", () => {
    const x = R([1, 3, 4, 4], false);
    assert.throws(() => ops.conv2dMany(x, [R([2, 3, 1, 1]), R([2, 3, 3, 3])], [null, null]), /weight 1 has a 3×3 kernel but weight 0 a 1×1 one/);
    assert.throws(() => ops.conv2dMany(x, [R([2, 3, 1, 1]), R([2, 4, 1, 1])], [null, null]), /conv2dMany \(weight 1\): expected an input of shape \(N, 4, H, W\)/);
    assert.throws(() => ops.conv2dMany(x, [R([2, 3, 1, 1])], []), /one bias \(or null\) per weight/);
  });
});

