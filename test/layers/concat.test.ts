/**
 * concat (channel concatenation of Inception's branches) and nn.Concat:
 * layout, round trip, and the backward that splits the gradient, checked
 * against central finite differences (float64, helpers.gradcheck: h = 1e-6,
 * atol 1e-7, rtol 1e-5).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, ops, Tensor } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { gradcheck, randn } from "../core/helpers.js";

const gen = new Generator(2015);
const R = (shape: number[], requiresGrad = true) => randn(shape, gen, { requiresGrad });

/** Channels [from, to) of an NCHW tensor, by plain indexing. */
function channels(t: Tensor, from: number, to: number): number[] {
  const [N, C, H, W] = t.shape;
  const out: number[] = [];
  for (let n = 0; n < N; n++) for (let c = from; c < to; c++) for (let s = 0; s < H * W; s++) out.push(t.data[(n * C + c) * H * W + s]);
  return out;
}

describe("concat", () => {
  it("round trip: concatenating (2,1,2,3), (2,3,2,3), (2,2,2,3) along channels and cutting the channels apart gives back each input exactly", () => {
    const parts = [R([2, 1, 2, 3], false), R([2, 3, 2, 3], false), R([2, 2, 2, 3], false)];
    const y = ops.concat(parts);
    assert.deepEqual([...y.shape], [2, 6, 2, 3]);
    assert.deepEqual(channels(y, 0, 1), [...parts[0].data]);
    assert.deepEqual(channels(y, 1, 4), [...parts[1].data]);
    assert.deepEqual(channels(y, 4, 6), [...parts[2].data]);
  });
  it("dim 0 stacks the batches; dim −1 joins the last axis row by row", () => {
    const a = R([2, 3], false);
    const b = R([1, 3], false);
    assert.deepEqual([...ops.concat([a, b], 0).data], [...a.data, ...b.data]);
    const c = R([2, 2], false);
    const y = ops.concat([a, c], -1);
    assert.deepEqual([...y.shape], [2, 5]);
    assert.deepEqual(y.toArray(), [[...a.data.subarray(0, 3), ...c.data.subarray(0, 2)], [...a.data.subarray(3), ...c.data.subarray(2)]]);
  });
  it("gradcheck (atol 1e-7, rtol 1e-5): along channels w.r.t. all three inputs of a 5×7 image", () => {
    gradcheck((ts) => ops.concat(ts), [R([2, 1, 5, 7]), R([2, 3, 5, 7]), R([2, 2, 5, 7])]);
  });
  it("gradcheck (atol 1e-7, rtol 1e-5): dim 0 and dim −1, with one input not requiring grad", () => {
    gradcheck((ts) => ops.concat(ts, 0), [R([2, 3, 2]), R([1, 3, 2], false), R([3, 3, 2])]);
    gradcheck((ts) => ops.concat(ts, -1), [R([2, 3, 2]), R([2, 3, 1])]);
  });
  it("the same tensor twice receives the sum of both pieces of the gradient", () => {
    const x = R([1, 2, 1, 1]);
    ops.concat([x, x]).backward([1, 2, 3, 4]);
    assert.deepEqual([...x.grad!.data], [1 + 3, 2 + 4]);
  });
  it("refuses shapes that differ outside the concatenation dim, and mixed dtypes, saying which tensor", () => {
    assert.throws(() => ops.concat([R([2, 1, 5, 7]), R([2, 1, 5, 6])]), /tensor 1 has shape \[2, 1, 5, 6\] but tensor 0 has \[2, 1, 5, 7\]; they may differ only in dim 1/);
    assert.throws(() => ops.concat([R([2, 1]), R([2, 1]).to("float32")]), /tensor 1 is float32 but tensor 0 is float64/);
    assert.throws(() => ops.concat([]), /at least one tensor/);
    assert.throws(() => ops.concat([R([2, 1])], 2), /dim 2 is out of range/);
  });
});

describe("nn.Concat: Inception-style parallel branches", () => {
  const g = new Generator(9);
  const opts = { dtype: "float64" as const, generator: g };
  const block = () =>
    new nn.Concat(
      new nn.Conv2d(3, 2, 1, opts),
      new nn.Sequential(new nn.Conv2d(3, 2, 1, opts), new nn.ReLU(), new nn.Conv2d(2, 4, 3, { ...opts, padding: 1 })),
      new nn.Sequential(new nn.MaxPool2d(3, { stride: 1, padding: 1 }), new nn.Conv2d(3, 1, 1, opts)),
    );
  it("runs every branch on the same input and stacks their channels in order (2 + 4 + 1)", () => {
    const m = block();
    const x = R([2, 3, 5, 7], false);
    const y = m.forward(x);
    assert.deepEqual([...y.shape], [2, 7, 5, 7]);
    assert.deepEqual(channels(y, 0, 2), [...m.at(0).forward(x).data]);
    assert.deepEqual(channels(y, 2, 6), [...m.at(1).forward(x).data]);
    assert.deepEqual(channels(y, 6, 7), [...m.at(2).forward(x).data]);
  });
  it("names its branches \"0\", \"1\", … so state-dict keys follow PyTorch's nesting", () => {
    assert.deepEqual(Object.keys(block().stateDict()), ["0.weight", "0.bias", "1.0.weight", "1.0.bias", "1.2.weight", "1.2.bias", "2.1.weight", "2.1.bias"]);
  });
  it("gradcheck (atol 1e-7, rtol 1e-5): input and every parameter of a three-branch block", () => {
    const m = new nn.Concat(
      new nn.Conv2d(3, 2, 1, opts),
      new nn.Conv2d(3, 2, [3, 1], { ...opts, padding: [1, 0] }),
      new nn.AvgPool2d(3, { stride: 1, padding: 1 }),
    );
    gradcheck(([x]) => m.forward(x), [R([2, 3, 4, 5]), ...m.parameters()]);
  });
  /**
   * A block whose branches 0, 1 and 3 open with 1×1 convolutions (branch 3 two levels down), branch 2 with a 3×3,
   * and branch 4 with an average pool before a 1×1 projection to fewer channels: Inception's shape.
   */
  const inceptionLike = (bias: boolean) => {
    const o = { ...opts, bias };
    return new nn.Concat(
      new nn.Conv2d(5, 2, 1, o),
      new nn.Sequential(new nn.Conv2d(5, 2, 1, o), new nn.ReLU(), new nn.Conv2d(2, 3, 3, { ...o, padding: 1 })),
      new nn.Sequential(new nn.Conv2d(5, 1, 3, { ...o, padding: 1 }), new nn.Tanh()),
      new nn.Sequential(new nn.Sequential(new nn.Conv2d(5, 4, 1, { ...opts, bias: !bias }), new nn.BatchNorm2d(4, { dtype: "float64" }), new nn.ReLU())),
      new nn.Sequential(
        new nn.AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: false }),
        new nn.Sequential(new nn.Conv2d(5, 3, 1, o), new nn.BatchNorm2d(3, { dtype: "float64" }), new nn.ReLU()),
      ),
    );
  };
  /** The block's output with every branch run alone (no shared convolution), for comparison. */
  const branchByBranch = (m: nn.Concat, x: Tensor) => ops.concat([...m].map((b) => b.forward(x)), 1);
  it("branches opening with convolutions over one window share them (conv2dMany): the output, the input's and every parameter's gradients are those of the branches run alone", () => {
    for (const bias of [true, false]) {
      const m = inceptionLike(bias);
      const x = R([2, 5, 5, 4]);
      const seed = R([2, 2 + 3 + 1 + 4 + 3, 5, 4], false);
      const run = (f: () => Tensor) => {
        m.zeroGrad();
        x.grad = null;
        const y = f();
        ops.sum(ops.mul(y, seed)).backward();
        return [y, x.grad!, ...m.parameters().map((p) => p.grad!)].map((t) => t.clone());
      };
      const shared = run(() => {
        const y = m.forward(x);
        // Branch 0 is the first output of one shared op, not a conv2d of its own; branch 4 pools that op's last output.
        assert.deepEqual(y.gradFn!.inputs.map((b) => b.gradFn!.name), ["conv2d[0]", "conv2d", "tanh", "batch_norm_relu", "batch_norm_relu"]);
        assert.equal(y.gradFn!.inputs[4].gradFn!.inputs[0].gradFn!.inputs[0].gradFn!.name, "conv2d[3]");
        return y;
      });
      const alone = run(() => branchByBranch(m, x));
      shared.forEach((t, i) => assertAllClose(t, alone[i], { atol: 1e-12, rtol: 1e-12 }, `tensor ${i} (bias ${bias})`));
    }
  });
  it("gradcheck (atol 1e-7, rtol 1e-5): input and every parameter of a block whose 1×1 convolutions are shared", () => {
    const m = inceptionLike(true);
    m.eval(); // BN's running statistics, so the function finite differences see is fixed
    gradcheck(([x]) => m.forward(x), [R([2, 5, 4, 5]), ...m.parameters()]);
  });
  it("an average pool stays before its projection where swapping them would change the result or the work: padded positions in the divisor with a bias, a 3×3 projection, more channels out than in; a max pool always", () => {
    const pool = (countIncludePad: boolean) => new nn.AvgPool2d(3, { stride: 1, padding: 1, countIncludePad });
    const heads = (...rest: nn.Module[]) => new nn.Concat(new nn.Conv2d(3, 2, 1, opts), ...rest);
    const cases: [string, nn.Concat, boolean][] = [
      ["countIncludePad with a bias", heads(new nn.Sequential(pool(true), new nn.Conv2d(3, 2, 1, opts))), false],
      ["countIncludePad without a bias", heads(new nn.Sequential(pool(true), new nn.Conv2d(3, 2, 1, { ...opts, bias: false }))), true],
      ["a 3×3 projection", heads(new nn.Sequential(pool(false), new nn.Conv2d(3, 2, 3, { ...opts, padding: 1 }))), false],
      ["more channels out than in", heads(new nn.Sequential(pool(false), new nn.Conv2d(3, 4, 1, opts))), false],
      ["a max pool", heads(new nn.Sequential(new nn.MaxPool2d(3, { stride: 1, padding: 1 }), new nn.Conv2d(3, 2, 1, opts))), false],
    ];
    for (const [what, m, swapped] of cases) {
      const x = R([2, 3, 4, 5]);
      const y = m.forward(x);
      assertAllClose(y, branchByBranch(m, x), { atol: 1e-12, rtol: 1e-12 }, what);
      const last = y.gradFn!.inputs[1].gradFn!;
      assert.equal(last.name, swapped ? "avg_pool2d" : "conv2d", `${what}: the branch ends with ${last.name}`);
    }
  });
  it("a branch's convolution whose forward was replaced on the instance (as summary() does) runs alone", () => {
    const m = inceptionLike(true);
    const first = m.at(0) as nn.Conv2d;
    let calls = 0;
    const own = first.forward.bind(first);
    first.forward = (x: Tensor) => {
      calls++;
      return own(x);
    };
    const x = R([1, 5, 5, 4], false);
    assertAllClose(m.forward(x), branchByBranch(m, x), { atol: 1e-12, rtol: 1e-12 });
    assert.equal(calls, 2, "the instance's forward ran once in each of the two forward passes");
  });
  it("a wrong input to shared convolutions gets the layer's own error", () => {
    assert.throws(() => inceptionLike(true).forward(R([1, 4, 5, 5], false)), /Conv2d '0': expected an input of shape \(N, 5, H, W\); got \[1, 4, 5, 5\]/);
  });
  it("says which branch is out of step when spatial sizes differ", () => {
    const m = new nn.Concat(new nn.Conv2d(3, 2, 1, opts), new nn.Conv2d(3, 2, 3, opts));
    assert.throws(() => m.forward(R([1, 3, 5, 5], false)), /branch 1 gives shape \[1, 2, 3, 3\] but branch 0 gives \[1, 2, 5, 5\]/);
  });
});
