/**
 * nn.Module plumbing (state dicts as PyTorch names them, modes, init), SGD
 * against hand-computed updates, and the loss's input checks.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, noGrad, ops, optim, Tensor, tensor } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { bytesOf, randn } from "./helpers.js";

const mlp = (seed: number, dtype: "float32" | "float64" = "float32") => {
  const g = new Generator(seed);
  return new nn.Sequential(
    new nn.Linear(4, 5, { dtype, generator: g }),
    new nn.BatchNorm1d(5, { dtype }),
    new nn.Sigmoid(),
    new nn.Linear(5, 3, { dtype, generator: g }),
  );
};

/** A few SGD steps so that γ, β, running statistics and the counter all move away from their initial values. */
const trainAFew = (model: nn.Sequential, seed: number) => {
  const g = new Generator(seed);
  const sgd = new optim.SGD(model.parameters(), { lr: 0.3, momentum: 0.5 });
  for (let i = 0; i < 4; i++) {
    sgd.zeroGrad();
    const x = randn([8, 4], g, { dtype: model.parameters()[0].dtype, scale: 2, shift: 1 });
    ops.crossEntropy(model.forward(x), [0, 1, 2, 0, 1, 2, 0, 1]).backward();
    sgd.step();
  }
};

const snapshot = (m: nn.Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, bytesOf(t)]));
const assertStateUnchanged = (m: nn.Module, before: Record<string, Buffer>, what: string) => {
  const after = snapshot(m);
  for (const k of Object.keys(before)) assert.ok(before[k].equals(after[k]), `${what}: '${k}' was written`);
};

describe("state dict", () => {
  it("keys and order for Sequential(Linear, BatchNorm1d, Sigmoid, Linear) are exactly PyTorch's", () => {
    assert.deepEqual(Object.keys(mlp(1).stateDict()), [
      "0.weight",
      "0.bias",
      "1.weight",
      "1.bias",
      "1.running_mean",
      "1.running_var",
      "1.num_batches_tracked",
      "3.weight",
      "3.bias",
    ]);
  });

  it("stateDict holds copies: changing them does not change the model", () => {
    const model = mlp(1);
    const sd = model.stateDict();
    sd["0.weight"].data.fill(123);
    assert.notEqual((model.at(0) as nn.Linear).weight.data[0], 123);
  });

  it("a round trip into a fresh model keeps γ, β, running statistics and the counter, with bit-identical eval outputs", () => {
    const src = mlp(1);
    trainAFew(src, 2);
    const bnSrc = src.at(1) as nn.BatchNorm1d;
    assert.equal(bnSrc.numBatchesTracked, 4);
    const dst = mlp(99);
    dst.loadStateDict(src.stateDict());
    const bnDst = dst.at(1) as nn.BatchNorm1d;
    for (const key of ["weight", "bias", "runningMean", "runningVar"] as const) {
      assert.ok(bytesOf(bnDst[key]!).equals(bytesOf(bnSrc[key]!)), `BN ${key}`);
    }
    assert.equal(bnDst.numBatchesTracked, 4);
    src.eval();
    dst.eval();
    const x = randn([6, 4], new Generator(3), { dtype: "float32" });
    const ya = noGrad(() => src.forward(x));
    const yb = noGrad(() => dst.forward(x));
    assert.ok(bytesOf(ya).equals(bytesOf(yb)), "eval outputs are bit-identical");
  });

  it("loadStateDict (strict) rejects a missing key, naming it, and writes nothing", () => {
    const src = mlp(1);
    trainAFew(src, 2);
    const dst = mlp(5);
    const before = snapshot(dst);
    const sd = src.stateDict();
    delete sd["1.running_var"];
    assert.throws(() => dst.loadStateDict(sd), /Missing keys: 1\.running_var/);
    assertStateUnchanged(dst, before, "after a missing key");
  });

  it("loadStateDict (strict) rejects an unexpected key, naming it, and writes nothing", () => {
    const src = mlp(1);
    trainAFew(src, 2);
    const dst = mlp(5);
    const before = snapshot(dst);
    const sd = src.stateDict();
    sd["4.weight"] = tensor([1, 2]);
    assert.throws(() => dst.loadStateDict(sd), /Unexpected keys: 4\.weight/);
    assertStateUnchanged(dst, before, "after an unexpected key");
  });

  it("loadStateDict rejects a wrong shape (different size, or same size transposed) in a late key and writes none of the earlier ones", () => {
    const src = mlp(1);
    trainAFew(src, 2);
    const dst = mlp(5);
    const before = snapshot(dst);
    for (const bad of [new Tensor(new Float32Array(4), [4]), new Tensor(new Float32Array(15), [5, 3])]) {
      const sd = src.stateDict();
      const key = bad.size === 4 ? "3.bias" : "3.weight";
      sd[key] = bad;
      assert.throws(() => dst.loadStateDict(sd), new RegExp(`'${key.replace(".", "\\.")}' has shape \\[${bad.shape.join(", ")}\\]`));
      assertStateUnchanged(dst, before, `after a wrong shape for ${key}`);
    }
    const transposed = src.stateDict();
    transposed["0.weight"] = new Tensor(new Float32Array(20), [4, 5]); // model expects [5, 4]
    assert.throws(() => dst.loadStateDict(transposed), /'0\.weight' has shape \[4, 5\]/);
    assertStateUnchanged(dst, before, "after a transposed weight");
  });

  it("loadStateDict rejects a NaN value and writes nothing", () => {
    const src = mlp(1);
    trainAFew(src, 2);
    const dst = mlp(5);
    const before = snapshot(dst);
    const sd = src.stateDict();
    sd["1.running_mean"].data[2] = NaN;
    assert.throws(() => dst.loadStateDict(sd), /'1\.running_mean' holds a non-finite value \(NaN\)/);
    assertStateUnchanged(dst, before, "after a NaN value");
  });
});

describe("modes and init", () => {
  it("train() / eval() / train(false) propagate to every child, including nested Sequentials", () => {
    const model = new nn.Sequential(new nn.Sequential(new nn.Linear(2, 3), new nn.BatchNorm1d(3)), new nn.Sigmoid(), new nn.Linear(3, 1));
    const flags = () => [...model.modules()].map((m) => m.training);
    assert.equal(flags().length, 6);
    assert.ok(flags().every((f) => f), "modules start in training mode");
    model.eval();
    assert.ok(flags().every((f) => !f), "eval() reaches every module");
    model.train();
    assert.ok(flags().every((f) => f), "train() reaches every module");
    model.train(false);
    assert.ok(flags().every((f) => !f), "train(false) reaches every module");
  });

  it("Linear default init: weight and bias within ±1/sqrt(in) and spread over that range (in = 50: bound 0.1414)", () => {
    const lin = new nn.Linear(50, 40, { generator: new Generator(8) });
    const bound = 1 / Math.sqrt(50);
    const w = [...lin.weight.data];
    const b = [...lin.bias!.data];
    for (const v of [...w, ...b]) assert.ok(Math.abs(v) <= bound, `${v} outside ±${bound}`);
    // U(−b, b) over 2000 draws: the largest |w| is within 1% of b with overwhelming probability
    assert.ok(Math.max(...w.map(Math.abs)) > 0.99 * bound, "weights fill the range");
    assert.ok(Math.max(...b.map(Math.abs)) > 0.5 * bound, "biases fill the range");
  });
});

describe("SGD matches hand-computed updates over 2 steps (float64, rtol 1e-14)", () => {
  // ℓ = ½ Σ (p − t)², so g = p − t. PyTorch's SGD: d = g + λp; v = μv + (1 − τ)d (v = d first);
  // d = nesterov ? d + μv : v; p ← p − lr·d. Below, each case spells the two steps out.
  const p0 = [0.5, -1.5, 2];
  const t = [1, 1, -1];
  const lr = 0.1;
  const run = (options: optim.SGDOptions): number[] => {
    const p = tensor(p0, [3], { dtype: "float64", requiresGrad: true });
    const target = tensor(t, [3], { dtype: "float64" });
    const sgd = new optim.SGD([p], options);
    for (let step = 0; step < 2; step++) {
      sgd.zeroGrad();
      ops.mul(ops.sum(ops.square(ops.sub(p, target))), 0.5).backward();
      sgd.step();
    }
    return [...p.data];
  };
  const check = (actual: number[], expected: number[], what: string) =>
    assertAllClose(actual, expected, { atol: 1e-15, rtol: 1e-14 }, what);

  it("plain: p₂ = p₁ − lr·(p₁ − t), p₁ = p₀ − lr·(p₀ − t)", () => {
    const expected = p0.map((p, i) => {
      const p1 = p - lr * (p - t[i]);
      return p1 - lr * (p1 - t[i]);
    });
    check(run({ lr }), expected, "plain SGD");
  });

  it("momentum 0.9: v₁ = g₀, v₂ = 0.9·v₁ + g₁", () => {
    const expected = p0.map((p, i) => {
      const g0 = p - t[i];
      const v1 = g0;
      const p1 = p - lr * v1;
      const g1 = p1 - t[i];
      const v2 = 0.9 * v1 + g1;
      return p1 - lr * v2;
    });
    check(run({ lr, momentum: 0.9 }), expected, "momentum");
  });

  it("momentum 0.9 with dampening 0.5: v₁ = g₀ (no dampening on the first step), v₂ = 0.9·v₁ + 0.5·g₁", () => {
    const expected = p0.map((p, i) => {
      const v1 = p - t[i];
      const p1 = p - lr * v1;
      const v2 = 0.9 * v1 + 0.5 * (p1 - t[i]);
      return p1 - lr * v2;
    });
    check(run({ lr, momentum: 0.9, dampening: 0.5 }), expected, "dampened momentum");
  });

  it("nesterov, momentum 0.9: step with g + 0.9·v", () => {
    const expected = p0.map((p, i) => {
      const g0 = p - t[i];
      const v1 = g0;
      const p1 = p - lr * (g0 + 0.9 * v1);
      const g1 = p1 - t[i];
      const v2 = 0.9 * v1 + g1;
      return p1 - lr * (g1 + 0.9 * v2);
    });
    check(run({ lr, momentum: 0.9, nesterov: true }), expected, "nesterov");
  });

  it("weight decay 0.2 (plain): d = g + 0.2·p", () => {
    const expected = p0.map((p, i) => {
      const p1 = p - lr * (p - t[i] + 0.2 * p);
      return p1 - lr * (p1 - t[i] + 0.2 * p1);
    });
    check(run({ lr, weightDecay: 0.2 }), expected, "weight decay");
  });

  it("weight decay 0.2 with nesterov momentum 0.9: decay enters the velocity", () => {
    const expected = p0.map((p, i) => {
      const d0 = p - t[i] + 0.2 * p;
      const v1 = d0;
      const p1 = p - lr * (d0 + 0.9 * v1);
      const d1 = p1 - t[i] + 0.2 * p1;
      const v2 = 0.9 * v1 + d1;
      return p1 - lr * (d1 + 0.9 * v2);
    });
    check(run({ lr, momentum: 0.9, nesterov: true, weightDecay: 0.2 }), expected, "weight decay + nesterov");
  });
});

describe("refusals", () => {
  it("SGD.step refuses a NaN gradient (in the second parameter) without changing any parameter", () => {
    const a = tensor([1, 2], [2], { dtype: "float64", requiresGrad: true });
    const b = tensor([3, 4], [2], { dtype: "float64", requiresGrad: true });
    const sgd = new optim.SGD([a, b], { lr: 0.1, momentum: 0.9 });
    a.grad = tensor([0.5, 0.5], [2], { dtype: "float64" });
    b.grad = tensor([0.5, NaN], [2], { dtype: "float64" });
    const before = [bytesOf(a), bytesOf(b)];
    assert.throws(() => sgd.step(), /parameter 1.*NaN.*No parameter was changed/s);
    assert.ok(bytesOf(a).equals(before[0]) && bytesOf(b).equals(before[1]), "no parameter changed");
    assert.equal(sgd.stateDict().steps, 0);
    assert.deepEqual(sgd.stateDict().velocity, [null, null], "no momentum buffer was started");
  });

  for (const [target, label] of [[3, "3 (= C)"], [-1, "-1"], [1.5, "1.5 (not an integer)"]] as const) {
    it(`CrossEntropyLoss rejects target ${label} for 3 classes with a message naming the index and the valid range`, () => {
      const logits = tensor([[0.1, 0.2, 0.3], [1, 2, 3]]);
      assert.throws(
        () => new nn.CrossEntropyLoss().forward(logits, [0, target]),
        new RegExp(`target 1 is ${String(target).replace(".", "\\.")}.*\\[0, 2\\]`),
      );
    });
  }

  it("CrossEntropyLoss rejects a target count that differs from the batch size", () => {
    assert.throws(() => new nn.CrossEntropyLoss().forward(tensor([[0, 1], [1, 0]]), [0]), /1 targets for a batch of 2/);
  });
});
