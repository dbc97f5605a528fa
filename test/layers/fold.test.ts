/**
 * foldBatchNorm with convolutions (Algorithm 2, step 11, with §3.2's one
 * (γ, β, E[x], Var[x]) per feature map): a Conv2d followed by an eval-mode
 * BatchNorm2d becomes one Conv2d with W'[o] = s_o·W[o],
 * b'_o = s_o·(b_o − E[x]_o) + β_o, s = γ/sqrt(Var[x] + ε), and the model's
 * output does not change.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultGenerator, Generator, nn, Tensor } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { randn } from "../core/helpers.js";

const gen = new Generator(3167);

/** Non-trivial running statistics and affine parameters; γ gets a negative and a zero entry. */
function setBatchNorm(bn: nn.BatchNormBase): void {
  const C = bn.numFeatures;
  for (let c = 0; c < C; c++) {
    bn.runningMean!.data[c] = 2 * gen.normal();
    bn.runningVar!.data[c] = 0.25 + 3 * gen.uniform();
    bn.weight!.data[c] = 0.5 + gen.uniform();
    bn.bias!.data[c] = gen.normal();
  }
  bn.weight!.data[0] = -1.7;
  bn.weight!.data[C - 1] = 0;
}

function model(dtype: "float32" | "float64") {
  const g = new Generator(5);
  const bn1 = new nn.BatchNorm2d(4, { dtype });
  const bn2 = new nn.BatchNorm2d(5, { dtype, eps: 1e-3 });
  setBatchNorm(bn1);
  setBatchNorm(bn2);
  return new nn.Sequential(
    new nn.Conv2d(3, 4, 3, { padding: 1, bias: false, dtype, generator: g }),
    bn1,
    new nn.ReLU(),
    new nn.Conv2d(4, 5, [2, 3], { stride: 2, padding: [1, 0], dtype, generator: g }),
    bn2,
  ).eval();
}

describe("foldBatchNorm: Conv2d → BatchNorm2d", () => {
  it("Sequential(Conv2d(bias false), BatchNorm2d, ReLU, Conv2d, BatchNorm2d(eps 1e-3)) in eval mode: the folded model gives the same output (float64, atol 1e-12, rtol 1e-12)", () => {
    const m = model("float64");
    const folded = nn.foldBatchNorm(m);
    const x = randn([3, 3, 5, 7], gen, { scale: 2 });
    const expected = m.forward(x);
    const y = folded.forward(x);
    assert.deepEqual([...y.shape], [3, 5, 3, 3]);
    assertAllClose(y, expected, { atol: 1e-12, rtol: 1e-12 });
  });
  it("float32 folds too (atol 1e-5, rtol 1e-5: the folded weights are rounded to float32 once)", () => {
    const m = model("float32");
    const x = randn([2, 3, 5, 7], gen, { dtype: "float32" });
    assertAllClose(nn.foldBatchNorm(m).forward(x), m.forward(x), { atol: 1e-5, rtol: 1e-5 });
  });
  it("replaces each BN by Identity and each conv by one with a bias and the same geometry; the original is untouched", () => {
    const m = model("float64");
    const before = m.stateDict();
    const folded = nn.foldBatchNorm(m);
    const layers = [...folded];
    assert.ok(layers[1] instanceof nn.Identity && layers[4] instanceof nn.Identity);
    const conv = layers[3] as nn.Conv2d;
    assert.ok(layers[0] instanceof nn.Conv2d && (layers[0] as nn.Conv2d).bias !== null);
    assert.deepEqual([conv.kernelSize, conv.stride, conv.padding], [[2, 3], [2, 2], [1, 0]]);
    assert.equal(conv.weight.dtype, "float64");
    const after = m.stateDict();
    for (const key of Object.keys(before)) assert.deepEqual([...after[key].data], [...before[key].data], key);
    assert.ok(m.at(1) instanceof nn.BatchNorm2d);
  });
  it("the folded filters are exactly s_o·W[o] and the bias s_o·(b_o − E[x]_o) + β_o, so the γ = 0 channel's filter is all zeros and its bias is β", () => {
    const m = model("float64");
    const conv = m.at(3) as nn.Conv2d;
    const bn = m.at(4) as nn.BatchNorm2d;
    const f = nn.foldBatchNorm(m).at(3) as nn.Conv2d;
    const filter = 4 * 2 * 3;
    for (let o = 0; o < 5; o++) {
      const s = bn.weight!.data[o] / Math.sqrt(bn.runningVar!.data[o] + 1e-3);
      for (let i = o * filter; i < (o + 1) * filter; i++) assert.equal(f.weight.data[i], s * conv.weight.data[i]);
      assert.equal(f.bias!.data[o], s * (conv.bias!.data[o] - bn.runningMean!.data[o]) + bn.bias!.data[o]);
    }
    assert.ok(f.weight.data.subarray(4 * filter).every((v) => v === 0));
    assert.equal(f.bias!.data[4], bn.bias!.data[4]);
  });
  it("folds inside the branches of an Inception-style Concat (float64, atol 1e-12, rtol 1e-12)", () => {
    const g = new Generator(8);
    const opts = { dtype: "float64" as const, generator: g };
    const bnA = new nn.BatchNorm2d(2, { dtype: "float64" });
    const bnB = new nn.BatchNorm2d(3, { dtype: "float64" });
    setBatchNorm(bnA);
    setBatchNorm(bnB);
    const block = new nn.Concat(
      new nn.Sequential(new nn.Conv2d(3, 2, 1, { ...opts, bias: false }), bnA, new nn.ReLU()),
      new nn.Sequential(new nn.Conv2d(3, 3, 3, { ...opts, padding: 1, bias: false }), bnB, new nn.ReLU()),
    ).eval();
    const folded = nn.foldBatchNorm(block);
    assert.ok((folded.at(1) as nn.Sequential).at(1) instanceof nn.Identity);
    const x = randn([2, 3, 5, 7], gen);
    assertAllClose(folded.forward(x), block.forward(x), { atol: 1e-12, rtol: 1e-12 });
  });
  it("folding convolutions draws nothing from the global generator", () => {
    const m = model("float64");
    const state = defaultGenerator.getState();
    nn.foldBatchNorm(m);
    assert.deepEqual(defaultGenerator.getState(), state);
  });
  it("still refuses a model in training mode", () => {
    const m = model("float64").train();
    assert.throws(() => nn.foldBatchNorm(m), /is in training mode/);
  });
  it("a BatchNorm2d that follows a ReLU or a pooling layer, not a conv, stays as it is", () => {
    const bn1 = new nn.BatchNorm2d(4, { dtype: "float64" });
    const bn2 = new nn.BatchNorm2d(4, { dtype: "float64" });
    setBatchNorm(bn1);
    setBatchNorm(bn2);
    const m = new nn.Sequential(new nn.Conv2d(3, 4, 1, { dtype: "float64" }), new nn.ReLU(), bn1, new nn.MaxPool2d(2), bn2).eval();
    const folded = nn.foldBatchNorm(m);
    assert.ok(folded.at(0) instanceof nn.Conv2d && folded.at(2) instanceof nn.BatchNorm2d && folded.at(4) instanceof nn.BatchNorm2d);
    const x: Tensor = randn([1, 3, 4, 4], gen);
    assert.deepEqual([...folded.forward(x).data], [...m.forward(x).data]);
  });
});
