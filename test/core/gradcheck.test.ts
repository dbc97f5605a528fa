/**
 * Every op in src/ops/index.ts, and the BN modules, against central finite
 * differences in float64: autograd's gradient of ℓ = Σ r ⊙ f(x) must match
 * (ℓ(x + h) − ℓ(x − h))/2h with h = 1e-6. The truncation error is O(h²) and
 * the rounding error O(1e-16/h) ≈ 1e-10 relative, so unless stated otherwise
 * the tolerance is atol 1e-7, rtol 1e-5 (helpers.gradcheck defaults).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, ops, Tensor } from "../../src/index.js";
import { record } from "../../src/tensor/tensor.js";
import { gradcheck, randn, randu } from "./helpers.js";

const gen = new Generator(20150211);
const R = (shape: number[], scale = 1, shift = 0) => randn(shape, gen, { requiresGrad: true, scale, shift });
/** values in [lo, hi), or their negatives with probability 1/2: |x| ∈ [lo, hi), away from 0 */
const awayFromZero = (shape: number[], lo: number, hi: number) => {
  const t = randu(shape, gen, lo, hi, { requiresGrad: true });
  for (let i = 0; i < t.size; i++) if (gen.uniform() < 0.5) t.data[i] = -t.data[i];
  return t;
};

describe("gradcheck: elementwise binary ops (float64, atol 1e-7, rtol 1e-5)", () => {
  const binaries = { add: ops.add, sub: ops.sub, mul: ops.mul, div: ops.div } as const;
  for (const [name, f] of Object.entries(binaries)) {
    // div: the divisor is kept away from zero so 1/y² stays moderate.
    const second = (shape: number[]) => (name === "div" ? awayFromZero(shape, 0.5, 2) : R(shape));
    it(`${name}: gradient w.r.t. both operands of the same shape (3,4)`, () => {
      gradcheck(([a, b]) => f(a, b), [R([3, 4]), second([3, 4])]);
    });
    it(`${name}: broadcasting (3,4) with (4) sums the gradient of the broadcast operand over rows`, () => {
      gradcheck(([a, b]) => f(a, b), [R([3, 4]), second([4])]);
    });
    it(`${name}: broadcasting (3,1) with (1,4) into (3,4)`, () => {
      gradcheck(([a, b]) => f(a, b), [R([3, 1]), second([1, 4])]);
    });
    it(`${name}: a 0-d tensor operand broadcasts against (2,3)`, () => {
      gradcheck(([a, b]) => f(a, b), [R([2, 3]), second([])]);
    });
    it(`${name}: a plain number as the second operand`, () => {
      gradcheck(([a]) => f(a, 1.7), [R([2, 3])]);
    });
  }
});

describe("gradcheck: elementwise unary ops (float64, atol 1e-7, rtol 1e-5)", () => {
  it("neg", () => gradcheck(([x]) => ops.neg(x), [R([3, 4])]));
  it("exp", () => gradcheck(([x]) => ops.exp(x), [R([3, 4])]));
  it("log on positive inputs in [0.5, 3)", () => gradcheck(([x]) => ops.log(x), [randu([3, 4], gen, 0.5, 3, { requiresGrad: true })]));
  it("square", () => gradcheck(([x]) => ops.square(x), [R([3, 4])]));
  it("sqrt on positive inputs in [0.5, 3)", () => gradcheck(([x]) => ops.sqrt(x), [randu([3, 4], gen, 0.5, 3, { requiresGrad: true })]));
  it("tanh", () => gradcheck(([x]) => ops.tanh(x), [R([3, 4])]));
  it("sigmoid, including large |x| (±30)", () => {
    const x = R([3, 4], 3);
    x.data[0] = 30;
    x.data[1] = -30;
    gradcheck(([t]) => ops.sigmoid(t), [x]);
  });
  it("relu on inputs with |x| ≥ 0.1 (away from the kink)", () => gradcheck(([x]) => ops.relu(x), [awayFromZero([3, 4], 0.1, 2)]));
});

describe("gradcheck: matmul and linear (float64, atol 1e-7, rtol 1e-5)", () => {
  it("matmul (3,5)·(5,4): gradients w.r.t. both factors", () => {
    gradcheck(([a, b]) => ops.matmul(a, b), [R([3, 5]), R([5, 4])]);
  });
  it("matmul (1,7)·(7,1) (odd K, exercises the unrolled tail)", () => {
    gradcheck(([a, b]) => ops.matmul(a, b), [R([1, 7]), R([7, 1])]);
  });
  it("linear with bias: gradients w.r.t. x (4,5), W (3,5), b (3)", () => {
    gradcheck(([x, w, b]) => ops.linear(x, w, b), [R([4, 5]), R([3, 5]), R([3])]);
  });
  it("linear without bias: gradients w.r.t. x (4,6) and W (2,6)", () => {
    gradcheck(([x, w]) => ops.linear(x, w, null), [R([4, 6]), R([2, 6])]);
  });
});

describe("gradcheck: reductions and shapes (float64, atol 1e-7, rtol 1e-5)", () => {
  it("sum over all elements", () => gradcheck(([x]) => ops.sum(x), [R([2, 3, 4])]));
  it("mean over all elements", () => gradcheck(([x]) => ops.mean(x), [R([2, 3, 4])]));
  for (const dim of [0, 1, 2, -1]) {
    for (const keepDim of [false, true]) {
      it(`sum over dim ${dim}, keepDim ${keepDim}`, () => gradcheck(([x]) => ops.sum(x, dim, keepDim), [R([2, 3, 4])]));
      it(`mean over dim ${dim}, keepDim ${keepDim}`, () => gradcheck(([x]) => ops.mean(x, dim, keepDim), [R([2, 3, 4])]));
    }
  }
  it("reshape (2,3,4) → (4,-1)", () => gradcheck(([x]) => ops.reshape(x, [4, -1]), [R([2, 3, 4])]));
  it("reshape feeding a nonlinear op (the shared gradient storage is not corrupted)", () => {
    gradcheck(([x]) => ops.mul(ops.reshape(x, [6, 4]), ops.reshape(x, [6, 4])), [R([2, 3, 4])]);
  });
  it("flatten (2,3,2,2) from dim 1", () => gradcheck(([x]) => ops.flatten(x), [R([2, 3, 2, 2])]));
  it("transpose (3,5)", () => gradcheck(([x]) => ops.transpose(x), [R([3, 5])]));
});

describe("gradcheck: crossEntropy (float64, atol 1e-7, rtol 1e-5)", () => {
  it("mean cross-entropy of (5,4) logits w.r.t. the logits", () => {
    gradcheck(([z]) => ops.crossEntropy(z, [0, 3, 1, 1, 2]), [R([5, 4], 2)]);
  });
  it("cross-entropy with large logits (±50) stays exact", () => {
    const z = R([3, 3]);
    z.data[0] = 50;
    z.data[4] = -50;
    gradcheck(([t]) => ops.crossEntropy(t, [2, 0, 1]), [z]);
  });
});

describe("gradcheck: batchNormTrain (float64, atol 1e-7, rtol 1e-5)", () => {
  const shapes: [string, number[]][] = [
    ["rank 2 (N,C) = (6,3)", [6, 3]],
    ["rank 3 (N,C,L) = (3,2,4)", [3, 2, 4]],
    ["rank 4 (N,C,H,W) = (2,3,2,3)", [2, 3, 2, 3]],
  ];
  for (const [label, shape] of shapes) {
    const C = shape[1];
    it(`${label}, affine: gradients w.r.t. x, γ and β`, () => {
      gradcheck(([x, w, b]) => ops.batchNormTrain(x, w, b, 1e-5).y, [R(shape, 2, 0.5), R([C], 1, 1), R([C])]);
    });
    it(`${label}, no affine (weight and bias null): gradient w.r.t. x`, () => {
      gradcheck(([x]) => ops.batchNormTrain(x, null, null, 1e-5).y, [R(shape, 2, 0.5)]);
    });
  }
  it("x without requiresGrad: gradients w.r.t. γ and β alone", () => {
    const x = randn([5, 3], gen);
    gradcheck(([t, w, b]) => ops.batchNormTrain(t, w, b, 1e-5).y, [x, R([3]), R([3])]);
  });
});

describe("gradcheck: batchNormInference (float64, atol 1e-7, rtol 1e-5)", () => {
  const shapes: [string, number[]][] = [
    ["rank 2 (N,C) = (4,3)", [4, 3]],
    ["rank 3 (N,C,L) = (2,3,4)", [2, 3, 4]],
    ["rank 4 (N,C,H,W) = (2,2,3,2)", [2, 2, 3, 2]],
  ];
  for (const [label, shape] of shapes) {
    const C = shape[1];
    const rm = Float64Array.from({ length: C }, () => gen.normal());
    const rv = Float64Array.from({ length: C }, () => 0.5 + gen.uniform());
    it(`${label}, affine: gradients w.r.t. x, γ and β with fixed running statistics`, () => {
      gradcheck(([x, w, b]) => ops.batchNormInference(x, rm, rv, w, b, 1e-5), [R(shape), R([C], 1, 1), R([C])]);
    });
    it(`${label}, no affine: gradient w.r.t. x`, () => {
      gradcheck(([x]) => ops.batchNormInference(x, rm, rv, null, null, 1e-5), [R(shape)]);
    });
  }
});

describe("gradcheck: nn.BatchNorm1d / nn.BatchNorm2d modules in train mode (float64, atol 1e-7, rtol 1e-5)", () => {
  it("BatchNorm1d on (N,C) = (5,4): gradients w.r.t. x, weight, bias", () => {
    const bn = new nn.BatchNorm1d(4, { dtype: "float64" });
    bn.weight!.data.set([0.5, -1.5, 2, 1]);
    bn.bias!.data.set([0.1, 0.2, -0.3, 0]);
    gradcheck(([x]) => bn.forward(x), [R([5, 4], 3, 1), bn.weight!, bn.bias!]);
  });
  it("BatchNorm1d on (N,C,L) = (3,2,5): gradients w.r.t. x, weight, bias", () => {
    const bn = new nn.BatchNorm1d(2, { dtype: "float64" });
    bn.weight!.data.set([0.7, -1.2]);
    bn.bias!.data.set([0.3, -0.1]);
    gradcheck(([x]) => bn.forward(x), [R([3, 2, 5]), bn.weight!, bn.bias!]);
  });
  it("BatchNorm1d without affine on (6,3): gradient w.r.t. x", () => {
    const bn = new nn.BatchNorm1d(3, { dtype: "float64", affine: false });
    gradcheck(([x]) => bn.forward(x), [R([6, 3])]);
  });
  it("BatchNorm2d on (N,C,H,W) = (2,3,2,2): gradients w.r.t. x, weight, bias", () => {
    const bn = new nn.BatchNorm2d(3, { dtype: "float64" });
    bn.weight!.data.set([1.3, -0.4, 0.9]);
    bn.bias!.data.set([0, 0.5, -0.5]);
    gradcheck(([x]) => bn.forward(x), [R([2, 3, 2, 2], 2), bn.weight!, bn.bias!]);
  });
  it("BatchNorm2d without affine on (3,2,2,3): gradient w.r.t. x", () => {
    const bn = new nn.BatchNorm2d(2, { dtype: "float64", affine: false });
    gradcheck(([x]) => bn.forward(x), [R([3, 2, 2, 3])]);
  });
  it("Linear → BatchNorm1d → Sigmoid: gradients w.r.t. input, W and γ through the whole stack", () => {
    const lin = new nn.Linear(4, 3, { bias: false, dtype: "float64", generator: new Generator(5) });
    const bn = new nn.BatchNorm1d(3, { dtype: "float64" });
    bn.weight!.data.set([1.5, -0.5, 0.8]);
    const model = new nn.Sequential(lin, bn, new nn.Sigmoid());
    gradcheck(([x]) => model.forward(x), [R([6, 4]), lin.weight, bn.weight!, bn.bias!]);
  });
});

describe("gradcheck itself", () => {
  it("fails on an op whose backward is wrong by a factor of 2 (the check can fail)", () => {
    const doubledSquare = (x: Tensor): Tensor => {
      const out = new Tensor(x.data.map((v) => v * v), x.shape);
      return record(out, "bad_square", [x], (g) => [g.map((gi, i) => 4 * x.data[i] * gi)]);
    };
    assert.throws(() => gradcheck(([x]) => doubledSquare(x), [R([2, 3])]), /autograd vs finite differences/);
  });
});
