/**
 * Batch Normalization as the paper defines it (Algorithms 1 and 2, §3.1–3.3),
 * and as PyTorch's BatchNorm behaves: every expected value here is computed
 * by hand in float64 from the definitions, never read back from the library.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, noGrad, ops, optim, Tensor } from "../../src/index.js";
import { batchNormBackwardChainRule } from "../../src/backend/reference/batchnormChainRule.js";
import { assertAllClose } from "../allclose.js";
import { bytesOf, randn, randu } from "./helpers.js";

// ---------------------------------------------------------------- hand math

/** Flat indices of channel c of an (N, C, ...) tensor, in (n, s) order. */
function channelIndices(shape: readonly number[], c: number): number[] {
  const [N, C, ...rest] = shape;
  const S = rest.reduce((p, d) => p * d, 1);
  const idx: number[] = [];
  for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) idx.push((n * C + c) * S + s);
  return idx;
}

function pick(data: ArrayLike<number>, idx: number[]): Float64Array {
  return Float64Array.from(idx, (i) => data[i]);
}

function meanOf(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s / v.length;
}

/** (1/m) Σ (v − μ)², Algorithm 1's biased variance */
function biasedVar(v: ArrayLike<number>): number {
  const mu = meanOf(v);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] - mu) ** 2;
  return s / v.length;
}

/** (1/(m−1)) Σ (v − μ)², the unbiased variance that running_var tracks */
function unbiasedVar(v: ArrayLike<number>): number {
  return (biasedVar(v) * v.length) / (v.length - 1);
}

/** Per-channel batch mean and unbiased variance of an (N, C, ...) tensor. */
function channelStats(t: Tensor): { mean: number[]; unbiased: number[]; biased: number[] } {
  const C = t.shape[1];
  const out = { mean: [] as number[], unbiased: [] as number[], biased: [] as number[] };
  for (let c = 0; c < C; c++) {
    const v = pick(t.data, channelIndices(t.shape, c));
    out.mean.push(meanOf(v));
    out.unbiased.push(unbiasedVar(v));
    out.biased.push(biasedVar(v));
  }
  return out;
}

/** Algorithm 1 by hand: y = γ·(x − μ_B)/sqrt(σ²_B + ε) + β per channel, in float64. */
function algorithm1(x: Tensor, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(x.size);
  for (let c = 0; c < x.shape[1]; c++) {
    const idx = channelIndices(x.shape, c);
    const v = pick(x.data, idx);
    const mu = meanOf(v);
    const s = Math.sqrt(biasedVar(v) + eps);
    for (const i of idx) y[i] = (gamma[c] * (x.data[i] - mu)) / s + beta[c];
  }
  return y;
}

/** Algorithm 2's inference transform by hand: y = γ·(x − E[x])/sqrt(Var[x] + ε) + β. */
function inferenceByHand(
  x: Tensor,
  rm: ArrayLike<number>,
  rv: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  eps: number,
): Float64Array {
  const y = new Float64Array(x.size);
  for (let c = 0; c < x.shape[1]; c++) {
    for (const i of channelIndices(x.shape, c)) y[i] = (gamma[c] * (x.data[i] - rm[c])) / Math.sqrt(rv[c] + eps) + beta[c];
  }
  return y;
}

function snapshotBuffers(m: nn.Module): Map<string, Buffer> {
  return new Map(m.namedBuffers().map(([k, t]) => [k, bytesOf(t)]));
}

function snapshotParameters(m: nn.Module): Map<string, Buffer> {
  return new Map(m.namedParameters().map(([k, t]) => [k, bytesOf(t)]));
}

function assertSameBytes(before: Map<string, Buffer>, after: Map<string, Buffer>, what: string): void {
  assert.deepEqual([...after.keys()], [...before.keys()], `${what}: the set of tensors changed`);
  for (const [k, b] of before) assert.ok(b.equals(after.get(k)!), `${what}: '${k}' changed`);
}

const F64_EXACT = { atol: 1e-12, rtol: 1e-12 }; // float64: one pass of rounding, ~1e-16 per op

const layouts: { label: string; make: (C: number) => nn.BatchNormBase; shape: (C: number) => number[] }[] = [
  { label: "rank 2 (N,C)", make: (C) => new nn.BatchNorm1d(C, { dtype: "float64" }), shape: (C) => [8, C] },
  { label: "rank 3 (N,C,L)", make: (C) => new nn.BatchNorm1d(C, { dtype: "float64" }), shape: (C) => [3, C, 5] },
  { label: "rank 4 (N,C,H,W)", make: (C) => new nn.BatchNorm2d(C, { dtype: "float64" }), shape: (C) => [2, C, 3, 4] },
];

// ---------------------------------------------------------------- backward

describe("BN backward: the paper's chain rule and the fused kernel are the same function", () => {
  for (const { label, make, shape } of layouts) {
    it(`${label}: dx, dγ, dβ per channel agree (float64, atol 1e-12, rtol 1e-10)`, () => {
      const gen = new Generator(11);
      const C = 3;
      const bn = make(C);
      bn.weight!.data.set([1.5, -0.7, 0.2]);
      bn.bias!.data.set([0.3, 0, -1]);
      const x = randn(shape(C), gen, { requiresGrad: true, scale: 2, shift: 1 });
      const dy = randn(shape(C), gen);
      bn.forward(x).backward(dy);
      for (let c = 0; c < C; c++) {
        const idx = channelIndices(x.shape, c);
        const ref = batchNormBackwardChainRule(pick(x.data, idx), pick(dy.data, idx), bn.weight!.data[c], bn.eps);
        const tol = { atol: 1e-12, rtol: 1e-10 };
        assertAllClose(pick(x.grad!.data, idx), ref.dx, tol, `channel ${c} dx`);
        assertAllClose(bn.weight!.grad!.data[c], ref.dgamma, tol, `channel ${c} dγ`);
        assertAllClose(bn.bias!.grad!.data[c], ref.dbeta, tol, `channel ${c} dβ`);
      }
    });
  }

  // dx = 1/(m·s)·(m·g − Σg − x̂·Σg·x̂) with s = sqrt(σ² + ε), and Σx̂ = 0, Σx̂² = m·σ²/(σ² + ε), so
  //   Σ dx = 0 exactly, and Σ dx·x̂ = (1/s)·Σg·x̂ · ε/(σ² + ε), which vanishes as ε → 0.
  const invariantSums = (bn: nn.BatchNormBase, x: Tensor, c: number) => {
    const idx = channelIndices(x.shape, c);
    const xc = pick(x.data, idx);
    const mu = meanOf(xc);
    const s2 = biasedVar(xc);
    const s = Math.sqrt(s2 + bn.eps);
    let sum = 0, sumAbs = 0, dot = 0, dotAbs = 0;
    for (const i of idx) {
      const g = x.grad!.data[i];
      const xhat = (x.data[i] - mu) / s;
      sum += g;
      sumAbs += Math.abs(g);
      dot += g * xhat;
      dotAbs += Math.abs(g * xhat);
    }
    return { sum, sumAbs, dot, dotAbs, s, s2, idx };
  };

  for (const { label, shape } of layouts) {
    it(`${label}: with γ = 1, β = 0 (and ε = 1e-12 → 0), Σ_i dx_i = 0 and Σ_i dx_i·x̂_i = 0 per channel (float64, |sum| ≤ 1e-10·Σ|terms|)`, () => {
      const gen = new Generator(12);
      const C = 4;
      const bn = shape(C).length === 4
        ? new nn.BatchNorm2d(C, { dtype: "float64", eps: 1e-12 })
        : new nn.BatchNorm1d(C, { dtype: "float64", eps: 1e-12 });
      const x = randn(shape(C), gen, { requiresGrad: true, scale: 3, shift: -2 });
      const dy = randn(shape(C), gen, { shift: 0.5 });
      bn.forward(x).backward(dy);
      for (let c = 0; c < C; c++) {
        const { sum, sumAbs, dot, dotAbs } = invariantSums(bn, x, c);
        assert.ok(sumAbs > 0.1, "the gradient is not trivially zero");
        assertAllClose(sum, 0, { atol: 1e-10 * sumAbs, rtol: 0 }, `channel ${c}: Σ dx (atol 1e-10·Σ|dx|)`);
        assertAllClose(dot, 0, { atol: 1e-10 * dotAbs, rtol: 0 }, `channel ${c}: Σ dx·x̂ (atol 1e-10·Σ|dx·x̂|)`);
      }
    });
  }

  for (const { label, make, shape } of layouts) {
    it(`${label}: with the default ε, Σ dx = 0 and Σ dx·x̂ = (1/s)·Σ g·x̂·ε/(σ² + ε) exactly as derived (float64, small spread σ ≈ 0.01; atol 1e-10·Σ|terms|)`, () => {
      const gen = new Generator(13);
      const C = 3;
      const bn = make(C);
      // σ² ≈ 1e-4, so ε/(σ² + ε) ≈ 0.09 makes the ε-term large and clearly measured.
      const x = randn(shape(C), gen, { requiresGrad: true, scale: 0.01, shift: 1 });
      const dy = randn(shape(C), gen);
      bn.forward(x).backward(dy);
      for (let c = 0; c < C; c++) {
        const { sum, sumAbs, dot, dotAbs, s, s2, idx } = invariantSums(bn, x, c);
        let sumGXhat = 0;
        const mu = meanOf(pick(x.data, idx));
        for (const i of idx) sumGXhat += dy.data[i] * ((x.data[i] - mu) / s);
        const predicted = (sumGXhat / s) * (bn.eps / (s2 + bn.eps));
        assertAllClose(sum, 0, { atol: 1e-10 * sumAbs, rtol: 0 }, `channel ${c}: Σ dx (atol 1e-10·Σ|dx|)`);
        assertAllClose(dot, predicted, { atol: 1e-10 * dotAbs, rtol: 1e-8 }, `channel ${c}: Σ dx·x̂`);
      }
    });
  }
});

// ---------------------------------------------------------------- §3.3

describe("§3.3 scale invariance of BN(W·u)", () => {
  for (const a of [10, 0.1]) {
    it(`a = ${a}: BN((aW)·u) = BN(W·u), ∂/∂u equal, ∂ℓ/∂(aW) = (1/a)·∂ℓ/∂W (float64, eps 1e-12, atol 1e-9, rtol 1e-8)`, () => {
      const gen = new Generator(33);
      const N = 10, IN = 5, OUT = 4;
      const u0 = randn([N, IN], gen);
      const W0 = randn([OUT, IN], gen);
      const dy = randn([N, OUT], gen);
      const gamma = [1.2, -0.5, 0.8, 2];
      const beta = [0.1, -0.2, 0.3, 0];
      const run = (scale: number) => {
        const u = new Tensor(u0.data.slice(), u0.shape, true);
        const W = new Tensor(W0.data.map((w) => scale * w), W0.shape, true);
        // eps is tiny so that scaling the variance by a² changes nothing measurable.
        const bn = new nn.BatchNorm1d(OUT, { dtype: "float64", eps: 1e-12 });
        bn.weight!.data.set(gamma);
        bn.bias!.data.set(beta);
        const y = bn.forward(ops.matmul(u, ops.transpose(W)));
        y.backward(dy);
        return { y, du: u.grad!, dW: W.grad! };
      };
      const base = run(1);
      const scaled = run(a);
      const tol = { atol: 1e-9, rtol: 1e-8 };
      assertAllClose(scaled.y, base.y, tol, "BN((aW)·u) vs BN(W·u)");
      assertAllClose(scaled.du, base.du, tol, "∂ℓ/∂u");
      assertAllClose(scaled.dW.data, base.dW.data.map((g) => g / a), tol, "∂ℓ/∂(aW) vs (1/a)·∂ℓ/∂W");
    });
  }

  it("a = 10 through nn.Linear(bias: false) → BatchNorm1d with default eps: outputs agree to ~eps/σ² (float32, atol 1e-3)", () => {
    const gen = new Generator(34);
    const x = randn([16, 6], gen, { dtype: "float32" });
    const lin = new nn.Linear(6, 3, { bias: false, generator: new Generator(1) });
    const model = new nn.Sequential(lin, new nn.BatchNorm1d(3));
    const y1 = model.forward(x);
    for (let i = 0; i < lin.weight.size; i++) lin.weight.data[i] *= 10;
    const y10 = model.forward(x);
    // σ²(W·u) ≈ 0.1 here, so eps = 1e-5 moves outputs by ~1e-4 relative; float32 adds ~1e-6.
    assertAllClose(y10, y1, { atol: 1e-3, rtol: 1e-3 }, "BN(10W·u) vs BN(W·u)");
  });
});

// ---------------------------------------------------------------- Algorithm 1

describe("training-mode forward is Algorithm 1", () => {
  for (const { label, make, shape } of layouts) {
    it(`${label}: output equals Algorithm 1 computed by hand (float64, atol 1e-12, rtol 1e-12)`, () => {
      const gen = new Generator(41);
      const C = 3;
      const bn = make(C);
      bn.weight!.data.set([2, -1, 0.5]);
      bn.bias!.data.set([-1, 0.25, 3]);
      const x = randn(shape(C), gen, { scale: 4, shift: 7 });
      const y = bn.forward(x);
      assertAllClose(y.data, algorithm1(x, [2, -1, 0.5], [-1, 0.25, 3], bn.eps), F64_EXACT, "BN(x) vs Algorithm 1");
    });

    it(`${label}: with γ = 1, β = 0 each channel has mean 0 and biased variance σ²_B/(σ²_B + ε) (float64, atol 1e-12)`, () => {
      const gen = new Generator(42);
      const C = 3;
      const bn = make(C);
      // small spread, so that ε visibly lowers the output variance below 1
      const x = randn(shape(C), gen, { scale: 0.01, shift: -3 });
      const y = bn.forward(x);
      for (let c = 0; c < C; c++) {
        const idx = channelIndices(x.shape, c);
        const s2 = biasedVar(pick(x.data, idx));
        const yc = pick(y.data, idx);
        assertAllClose(meanOf(yc), 0, { atol: 1e-12, rtol: 0 }, `channel ${c} mean`);
        assertAllClose(biasedVar(yc), s2 / (s2 + bn.eps), { atol: 1e-12, rtol: 1e-12 }, `channel ${c} variance`);
      }
    });
  }

  it("float32 forward equals float64 Algorithm 1 on the same values (atol 1e-5, rtol 1e-5: float32 output rounding)", () => {
    const gen = new Generator(43);
    const bn = new nn.BatchNorm2d(2);
    bn.weight!.data.set([1.5, -2]);
    bn.bias!.data.set([0.5, 1]);
    const x = randn([4, 2, 3, 3], gen, { dtype: "float32", scale: 3, shift: 10 });
    const y = bn.forward(x);
    assert.equal(y.dtype, "float32");
    assertAllClose(y.data, algorithm1(x, bn.weight!.data, bn.bias!.data, bn.eps), { atol: 1e-5, rtol: 1e-5 }, "float32 BN");
  });
});

// ---------------------------------------------------------------- running statistics

describe("running statistics", () => {
  it("after one batch with momentum 0.1: running_mean = 0.9·0 + 0.1·μ_B, running_var = 0.9·1 + 0.1·m/(m−1)·σ²_B (float64, rtol 1e-14)", () => {
    const gen = new Generator(51);
    const bn = new nn.BatchNorm1d(3, { dtype: "float64" });
    const x = randn([6, 3], gen, { scale: 2, shift: 5 });
    bn.forward(x);
    const m = 6;
    for (let c = 0; c < 3; c++) {
      const v = pick(x.data, channelIndices(x.shape, c));
      const expMean = 0.9 * 0 + 0.1 * meanOf(v);
      const expVar = 0.9 * 1 + 0.1 * (m / (m - 1)) * biasedVar(v);
      assertAllClose(bn.runningMean!.data[c], expMean, { atol: 0, rtol: 1e-14 }, `running_mean[${c}]`);
      assertAllClose(bn.runningVar!.data[c], expVar, { atol: 0, rtol: 1e-14 }, `running_var[${c}]`);
    }
  });

  it("running variance is the unbiased batch variance with m = N·H·W values per feature map (§3.2) (float64, rtol 1e-14)", () => {
    const gen = new Generator(52);
    const bn = new nn.BatchNorm2d(2, { dtype: "float64", momentum: 1 });
    const x = randn([2, 2, 3, 2], gen, { scale: 3 });
    bn.forward(x);
    const stats = channelStats(x);
    assertAllClose(bn.runningMean!.data, stats.mean, { atol: 0, rtol: 1e-14 }, "running_mean = μ_B with momentum 1");
    // m' = 2·3·2 = 12: running_var = 12/11·σ²_B
    assertAllClose(bn.runningVar!.data, stats.biased.map((v) => (v * 12) / 11), { atol: 0, rtol: 1e-14 }, "running_var = m'/(m'−1)·σ²_B");
  });

  it("numBatchesTracked counts training batches only (not eval forwards)", () => {
    const gen = new Generator(53);
    const bn = new nn.BatchNorm1d(2, { dtype: "float64" });
    assert.equal(bn.numBatchesTracked, 0);
    for (let i = 0; i < 3; i++) bn.forward(randn([4, 2], gen));
    assert.equal(bn.numBatchesTracked, 3);
    bn.eval();
    bn.forward(randn([4, 2], gen));
    assert.equal(bn.numBatchesTracked, 3);
    bn.train();
    bn.forward(randn([4, 2], gen));
    assert.equal(bn.numBatchesTracked, 4);
  });

  it("momentum null gives the cumulative average of batch means and of unbiased batch variances after 3 batches (float64, rtol 1e-14)", () => {
    const gen = new Generator(54);
    const bn = new nn.BatchNorm1d(3, { dtype: "float64", momentum: null });
    // batches of different sizes: each batch's variance is unbiased with its own m
    const batches = [randn([5, 3], gen, { shift: 1 }), randn([8, 3], gen, { scale: 2 }), randn([3, 3], gen, { shift: -4 })];
    for (const b of batches) bn.forward(b);
    const stats = batches.map(channelStats);
    for (let c = 0; c < 3; c++) {
      const expMean = (stats[0].mean[c] + stats[1].mean[c] + stats[2].mean[c]) / 3;
      const expVar = (stats[0].unbiased[c] + stats[1].unbiased[c] + stats[2].unbiased[c]) / 3;
      assertAllClose(bn.runningMean!.data[c], expMean, { atol: 1e-15, rtol: 1e-14 }, `running_mean[${c}]`);
      assertAllClose(bn.runningVar!.data[c], expVar, { atol: 0, rtol: 1e-14 }, `running_var[${c}]`);
    }
    assert.equal(bn.numBatchesTracked, 3);
  });

  it("nn.kerasMomentum(0.99) is 0.01 (the weight of the new batch), to 1e-15", () => {
    assertAllClose(nn.kerasMomentum(0.99), 0.01, { atol: 1e-15, rtol: 0 }, "kerasMomentum(0.99)");
  });
});

// ---------------------------------------------------------------- eval mode

describe("eval mode (Algorithm 2 inference)", () => {
  const trained = () => {
    const gen = new Generator(61);
    const bn = new nn.BatchNorm2d(3, { dtype: "float64", eps: 1e-3 });
    bn.weight!.data.set([1.5, -0.5, 0]);
    bn.bias!.data.set([0.1, 0.2, 0.3]);
    for (let i = 0; i < 4; i++) bn.forward(randn([3, 3, 2, 2], gen, { scale: 2, shift: 1 }));
    return { bn, gen };
  };

  it("normalizes with the running statistics: y = γ(x − E[x])/sqrt(Var[x] + ε) + β by hand (float64, atol 1e-12, rtol 1e-12)", () => {
    const { bn, gen } = trained();
    bn.eval();
    const x = randn([2, 3, 2, 2], gen, { scale: 2 });
    const y = bn.forward(x);
    const expected = inferenceByHand(x, bn.runningMean!.data, bn.runningVar!.data, bn.weight!.data, bn.bias!.data, bn.eps);
    assertAllClose(y.data, expected, F64_EXACT, "eval BN vs hand");
  });

  it("several eval forwards leave every buffer and parameter byte-identical and numBatchesTracked unchanged", () => {
    const { bn, gen } = trained();
    bn.eval();
    const buffers = snapshotBuffers(bn);
    const params = snapshotParameters(bn);
    const tracked = bn.numBatchesTracked;
    for (let i = 0; i < 5; i++) bn.forward(randn([4, 3, 2, 2], gen, { scale: 5, shift: -3 }));
    bn.forward(randn([1, 3, 1, 1], gen)); // a batch of one works in eval
    assertSameBytes(buffers, snapshotBuffers(bn), "buffers");
    assertSameBytes(params, snapshotParameters(bn), "parameters");
    assert.equal(bn.numBatchesTracked, tracked);
  });

  it("trackRunningStats: false uses batch statistics in eval too and has no running buffers in its stateDict", () => {
    const gen = new Generator(62);
    const bn = new nn.BatchNorm1d(3, { dtype: "float64", trackRunningStats: false });
    bn.weight!.data.set([2, 1, -1]);
    bn.eval();
    const x = randn([5, 3], gen, { scale: 3, shift: 2 });
    const y = bn.forward(x);
    assertAllClose(y.data, algorithm1(x, [2, 1, -1], [0, 0, 0], bn.eps), F64_EXACT, "eval with trackRunningStats false = Algorithm 1");
    assert.deepEqual(Object.keys(bn.stateDict()), ["weight", "bias"]);
    assert.equal(bn.runningMean, null);
    assert.equal(bn.runningVar, null);
  });
});

// ---------------------------------------------------------------- freeze

describe("freeze() for fine-tuning", () => {
  const setup = () => {
    const gen = new Generator(71);
    const lin = new nn.Linear(4, 3, { dtype: "float64", generator: new Generator(7) });
    const bn = new nn.BatchNorm1d(3, { dtype: "float64" });
    bn.weight!.data.set([1.5, 0.5, -1]);
    bn.bias!.data.set([0.2, -0.2, 0]);
    const model = new nn.Sequential(lin, bn, new nn.Sigmoid());
    noGrad(() => {
      for (let i = 0; i < 3; i++) model.forward(randn([8, 4], gen, { scale: 2 }));
    });
    return { gen, lin, bn, model };
  };

  it("in train mode a frozen BN normalizes with the running statistics and leaves its buffers byte-identical", () => {
    const { gen, lin, bn } = setup();
    bn.freeze();
    bn.train();
    assert.equal(bn.frozen, true);
    const buffers = snapshotBuffers(bn);
    const tracked = bn.numBatchesTracked;
    const x = noGrad(() => lin.forward(randn([6, 4], gen)));
    const y = bn.forward(x);
    const expected = inferenceByHand(x, bn.runningMean!.data, bn.runningVar!.data, bn.weight!.data, bn.bias!.data, bn.eps);
    assertAllClose(y.data, expected, F64_EXACT, "frozen BN in train mode vs running-statistics BN");
    assertSameBytes(buffers, snapshotBuffers(bn), "buffers after a frozen forward");
    assert.equal(bn.numBatchesTracked, tracked);
  });

  it("frozen γ and β have requiresGrad false and an SGD step leaves them unchanged while the preceding Linear trains", () => {
    const { gen, lin, bn, model } = setup();
    bn.freeze();
    model.train();
    assert.equal(bn.weight!.requiresGrad, false);
    assert.equal(bn.bias!.requiresGrad, false);
    const sgd = new optim.SGD(model.parameters(), { lr: 0.5 });
    const bnParams = snapshotParameters(bn);
    const linWeight = bytesOf(lin.weight);
    const loss = ops.crossEntropy(model.forward(randn([6, 4], gen)), [0, 1, 2, 0, 1, 2]);
    loss.backward();
    sgd.step();
    assertSameBytes(bnParams, snapshotParameters(bn), "γ, β after an SGD step");
    assert.equal(bn.weight!.grad, null);
    assert.ok(!bytesOf(lin.weight).equals(linWeight), "the Linear weight trained");
  });

  it("unfreeze() restores trainable γ, β, batch statistics and running-statistics updates", () => {
    const { gen, bn } = setup();
    bn.freeze();
    bn.unfreeze();
    assert.equal(bn.frozen, false);
    assert.equal(bn.weight!.requiresGrad, true);
    assert.equal(bn.bias!.requiresGrad, true);
    const tracked = bn.numBatchesTracked;
    const x = randn([6, 3], gen, { scale: 2 });
    const y = bn.forward(x);
    assertAllClose(y.data, algorithm1(x, bn.weight!.data, bn.bias!.data, bn.eps), F64_EXACT, "unfrozen BN uses batch statistics");
    assert.equal(bn.numBatchesTracked, tracked + 1);
  });
});

// ---------------------------------------------------------------- numerics

describe("float32 numerics", () => {
  it("in one BatchNorm1d input: a channel with mean 1e4, std 1e-2 normalizes to mean ≈ 0, std ≈ 1, and a channel constant at 1e6 gives exactly β", () => {
    const gen = new Generator(81);
    const N = 64;
    // eps 1e-9 ≪ σ² = 1e-4, so Algorithm 1 promises std ≈ 1 (with the default 1e-5 it would be sqrt(1/1.1) ≈ 0.95).
    const bn = new nn.BatchNorm1d(2, { eps: 1e-9 });
    bn.bias!.data.set([0, 0.25]);
    bn.weight!.data.set([1, 2]);
    const x = new Tensor(new Float32Array(N * 2), [N, 2]);
    for (let n = 0; n < N; n++) {
      x.data[n * 2] = 1e4 + 1e-2 * gen.normal();
      x.data[n * 2 + 1] = 1e6;
    }
    const y = bn.forward(x);
    const y0 = pick(y.data, channelIndices(y.shape, 0));
    const y1 = pick(y.data, channelIndices(y.shape, 1));
    // tolerance 1e-2 for channel 0: float32 output rounding (~1e-7) is far below it; a
    // one-pass E[x²] − E[x]² in float32 would be off by orders of magnitude.
    assertAllClose(meanOf(y0), 0, { atol: 1e-2, rtol: 0 }, "mean of the 1e4 ± 1e-2 channel");
    assertAllClose(Math.sqrt(biasedVar(y0)), 1, { atol: 1e-2, rtol: 0 }, "std of the 1e4 ± 1e-2 channel");
    for (let i = 0; i < N; i++) assert.equal(y1[i], 0.25, `constant channel, example ${i}: y = ${y1[i]}, expected exactly β = 0.25`);
    for (const v of y.data) assert.ok(Number.isFinite(v));
    for (const v of [...bn.runningMean!.data, ...bn.runningVar!.data]) assert.ok(Number.isFinite(v), "running statistics stay finite");
  });

  it("a finite float32 input whose variance (~1e40) overflows float32 is refused, naming the channel, and the running statistics are untouched", () => {
    const bn = new nn.BatchNorm1d(1);
    const before = snapshotBuffers(bn);
    const x = new Tensor(Float32Array.from([1e20, -1e20, 1e20, -1e20]), [4, 1]);
    assert.throws(
      () => bn.forward(x),
      /BatchNorm1d '\(root\)': the batch statistics of channel 0 \(mean 0, variance 1\.0+\d*e\+40\) would leave running statistics that are not finite in float32/,
    );
    assertSameBytes(before, snapshotBuffers(bn), "buffers after the refused batch");
  });
});

// ---------------------------------------------------------------- errors

describe("clear errors", () => {
  it("a batch of one in training throws naming the layer class, the input shape, the count, and the two remedies", () => {
    const bn = new nn.BatchNorm1d(3);
    const x = new Tensor(Float32Array.from([1, 2, 3]), [1, 3]);
    const msg = (() => {
      try {
        bn.forward(x);
      } catch (e) {
        return (e as Error).message;
      }
      assert.fail("a batch of one did not throw in training");
    })();
    assert.match(msg, /BatchNorm1d/);
    assert.match(msg, /\[1, 3\]/);
    assert.match(msg, /\b1 value per channel/);
    assert.match(msg, /[Dd]rop the last incomplete batch/);
    assert.match(msg, /eval\(\)/);
    assert.equal(bn.numBatchesTracked, 0);
  });

  it("BatchNorm2d with a (1, C, 1, 1) batch in training throws naming BatchNorm2d and the shape", () => {
    const bn = new nn.BatchNorm2d(2);
    assert.throws(() => bn.forward(new Tensor(new Float32Array(2), [1, 2, 1, 1])), /BatchNorm2d.*\[1, 2, 1, 1\]/s);
  });

  it("the same batch of one works in eval: y = x/sqrt(1 + ε) with the initial statistics (float32, rtol 1e-6)", () => {
    const bn = new nn.BatchNorm1d(3);
    bn.eval();
    const y = bn.forward(new Tensor(Float32Array.from([1, 2, 3]), [1, 3]));
    assertAllClose(y.data, [1, 2, 3].map((v) => v / Math.sqrt(1 + 1e-5)), { atol: 0, rtol: 1e-6 }, "eval batch of one");
  });

  it("wrong channel count: the message says expected C, axis 1, and the received shape", () => {
    const bn = new nn.BatchNorm1d(4);
    assert.throws(() => bn.forward(new Tensor(new Float32Array(24), [8, 3])), /expected 4 channels on axis 1.*\[8, 3\]/s);
    const bn2 = new nn.BatchNorm2d(4);
    assert.throws(() => bn2.forward(new Tensor(new Float32Array(2 * 3 * 4), [2, 3, 2, 2])), /expected 4 channels on axis 1.*\[2, 3, 2, 2\]/s);
  });

  it("wrong rank: BatchNorm1d refuses 1-d and 4-d input, BatchNorm2d refuses 2-d and 3-d, naming the expected layout", () => {
    const bn1 = new nn.BatchNorm1d(3);
    assert.throws(() => bn1.forward(new Tensor(new Float32Array(3), [3])), /\(N, C\) or \(N, C, L\).*\[3\]/s);
    assert.throws(() => bn1.forward(new Tensor(new Float32Array(12), [2, 3, 1, 2])), /\(N, C\) or \(N, C, L\).*\[2, 3, 1, 2\]/s);
    const bn2 = new nn.BatchNorm2d(3);
    assert.throws(() => bn2.forward(new Tensor(new Float32Array(6), [2, 3])), /\(N, C, H, W\).*\[2, 3\]/s);
    assert.throws(() => bn2.forward(new Tensor(new Float32Array(12), [2, 3, 2])), /\(N, C, H, W\).*\[2, 3, 2\]/s);
  });

  for (const eps of [0, -1e-5, NaN]) {
    it(`eps = ${eps} is refused at construction with a message about eps`, () => {
      assert.throws(() => new nn.BatchNorm1d(3, { eps }), new RegExp(`eps must be .*got ${eps}`));
    });
  }

  for (const momentum of [-0.1, 1.5]) {
    it(`momentum = ${momentum} is refused, at construction and by the setter (which keeps the old value)`, () => {
      assert.throws(() => new nn.BatchNorm2d(3, { momentum }), new RegExp(`momentum must be in \\[0, 1\\].*got ${momentum}`));
      const bn = new nn.BatchNorm1d(3);
      assert.throws(() => {
        bn.momentum = momentum;
      }, /momentum must be in \[0, 1\]/);
      assert.equal(bn.momentum, 0.1);
    });
  }

  for (const bad of [NaN, Infinity]) {
    it(`${bad} in the input in training throws and leaves the running statistics byte-identical`, () => {
      const gen = new Generator(91);
      const bn = new nn.BatchNorm1d(3);
      bn.forward(randn([4, 3], gen, { dtype: "float32" }));
      const before = snapshotBuffers(bn);
      const x = randn([4, 3], gen, { dtype: "float32" });
      x.data[7] = bad;
      assert.throws(() => bn.forward(x), /not finite/);
      assertSameBytes(before, snapshotBuffers(bn), "buffers after a non-finite batch");
      assert.equal(bn.numBatchesTracked, 1);
    });
  }

  it("NaN in the input during recomputeBatchNormStats throws and restores the previous running statistics byte-identically", () => {
    const gen = new Generator(92);
    const bn = new nn.BatchNorm1d(2);
    const model = new nn.Sequential(bn);
    for (let i = 0; i < 3; i++) model.forward(randn([5, 2], gen, { dtype: "float32" }));
    const before = snapshotBuffers(model);
    const bad = randn([5, 2], gen, { dtype: "float32" });
    bad.data[3] = NaN;
    assert.throws(() => nn.recomputeBatchNormStats(model, [randn([5, 2], gen, { dtype: "float32" }), bad]), /not finite/);
    assertSameBytes(before, snapshotBuffers(model), "buffers after a failed recompute");
  });
});

// ---------------------------------------------------------------- Algorithm 2, step 10

describe("nn.recomputeBatchNormStats (Algorithm 2, step 10)", () => {
  const EPS = 1e-5;
  const build = () => {
    const g = new Generator(101);
    const model = new nn.Sequential(
      new nn.Linear(6, 8, { dtype: "float64", generator: g }),
      new nn.BatchNorm1d(8, { dtype: "float64", eps: EPS }),
      new nn.Sigmoid(),
      new nn.Linear(8, 5, { bias: false, dtype: "float64", generator: g }),
      new nn.BatchNorm1d(5, { dtype: "float64", eps: EPS, momentum: 0.3 }),
      new nn.Sigmoid(),
      new nn.Linear(5, 3, { dtype: "float64", generator: g }),
    );
    const data = new Generator(102);
    const sgd = new optim.SGD(model.parameters(), { lr: 0.5, momentum: 0.9 });
    for (let step = 0; step < 10; step++) {
      const x = randn([12, 6], data, { scale: 2, shift: 0.5 });
      const t = Array.from({ length: 12 }, () => data.randint(3));
      sgd.zeroGrad();
      ops.crossEntropy(model.forward(x), t).backward();
      sgd.step();
    }
    const batches = Array.from({ length: 5 }, () => randn([12, 6], data, { scale: 2, shift: 0.5 }));
    return { model, batches };
  };
  const bnAt = (model: nn.Sequential, i: number) => model.at(i) as nn.BatchNormBase;

  /** Inputs of both BN layers for one batch, with every BN normalizing by its batch statistics (training mode). */
  const bnInputs = (model: nn.Sequential, x: Tensor): [Tensor, Tensor] =>
    noGrad(() => {
      const lin0 = model.at(0) as nn.Linear;
      const bn1 = bnAt(model, 1);
      const lin3 = model.at(3) as nn.Linear;
      const h1 = ops.linear(x, lin0.weight, lin0.bias);
      const z1 = ops.sigmoid(ops.batchNormTrain(h1, bn1.weight, bn1.bias, bn1.eps).y);
      const h2 = ops.linear(z1, lin3.weight, lin3.bias);
      return [h1, h2];
    });

  it("running_mean = mean of the 5 batch means and running_var = mean of the 5 unbiased batch variances; numBatchesTracked = 5 (float64, atol 1e-14, rtol 1e-12)", () => {
    const { model, batches } = build();
    const expected = [1, 4].map(() => ({ mean: [] as number[][], unbiased: [] as number[][] }));
    for (const x of batches) {
      bnInputs(model, x).forEach((h, k) => {
        const s = channelStats(h);
        expected[k].mean.push(s.mean);
        expected[k].unbiased.push(s.unbiased);
      });
    }
    const before = [bnAt(model, 1), bnAt(model, 4)].map((bn) => [...bn.runningMean!.data]);
    const result = nn.recomputeBatchNormStats(model, batches);
    assert.equal(result.batches, 5);
    [1, 4].forEach((layer, k) => {
      const bn = bnAt(model, layer);
      const C = bn.numFeatures;
      const avg = (rows: number[][]) => Array.from({ length: C }, (_, c) => rows.reduce((s, r) => s + r[c], 0) / rows.length);
      assert.notDeepEqual([...bn.runningMean!.data], before[k], "the statistics were actually replaced");
      assertAllClose(bn.runningMean!.data, avg(expected[k].mean), { atol: 1e-14, rtol: 1e-12 }, `BN '${layer}' running_mean`);
      assertAllClose(bn.runningVar!.data, avg(expected[k].unbiased), { atol: 1e-14, rtol: 1e-12 }, `BN '${layer}' running_var`);
      assert.equal(bn.numBatchesTracked, 5);
    });
  });

  const modes: [string, (m: nn.Sequential) => void][] = [
    ["train mode", (m) => m.train()],
    ["eval mode", (m) => m.eval()],
    ["mixed modes (eval, one BN in train)", (m) => {
      m.eval();
      m.at(4).train();
    }],
  ];
  for (const [label, setMode] of modes) {
    it(`starting from ${label}: every module's training flag and each BN's momentum are restored, no parameter changes`, () => {
      const { model, batches } = build();
      setMode(model);
      const flags = [...model.modules()].map((m) => m.training);
      const params = snapshotParameters(model);
      nn.recomputeBatchNormStats(model, batches);
      assert.deepEqual([...model.modules()].map((m) => m.training), flags);
      assert.equal(bnAt(model, 1).momentum, 0.1);
      assert.equal(bnAt(model, 4).momentum, 0.3);
      assertSameBytes(params, snapshotParameters(model), "parameters");
    });
  }

  it("a frozen BN stays frozen (γ, β not trainable) after recompute, and its statistics are recomputed", () => {
    const { model, batches } = build();
    bnAt(model, 4).freeze();
    nn.recomputeBatchNormStats(model, batches);
    assert.equal(bnAt(model, 4).frozen, true);
    assert.equal(bnAt(model, 4).weight!.requiresGrad, false);
    assert.equal(bnAt(model, 4).numBatchesTracked, 5);
  });

  it("with zero batches it throws and leaves the statistics and the counter byte-identical", () => {
    const { model } = build();
    const before = snapshotBuffers(model);
    assert.throws(() => nn.recomputeBatchNormStats(model, []), /no batches/);
    assertSameBytes(before, snapshotBuffers(model), "buffers");
  });

  it("accepts [x, y] tuples and gives byte-identical statistics to plain tensors", () => {
    const a = build();
    const b = build();
    nn.recomputeBatchNormStats(a.model, a.batches);
    nn.recomputeBatchNormStats(b.model, b.batches.map((x, i) => [x, [i]] as const));
    assertSameBytes(snapshotBuffers(a.model), snapshotBuffers(b.model), "tuple vs tensor batches");
  });
});

// ---------------------------------------------------------------- Algorithm 2, step 11

describe("nn.foldBatchNorm (Algorithm 2, step 11)", () => {
  const build = (dtype: "float32" | "float64") => {
    const g = new Generator(111);
    const model = new nn.Sequential(
      new nn.Linear(5, 6, { dtype, generator: g }),
      new nn.BatchNorm1d(6, { dtype, eps: 1e-3 }),
      new nn.Sigmoid(),
      new nn.Linear(6, 4, { bias: false, dtype, generator: g }),
      new nn.BatchNorm1d(4, { dtype, eps: 1e-3 }),
      new nn.ReLU(),
      new nn.Linear(4, 3, { dtype, generator: g }),
    );
    for (const i of [1, 4]) {
      const bn = model.at(i) as nn.BatchNormBase;
      const C = bn.numFeatures;
      for (let c = 0; c < C; c++) {
        bn.runningMean!.data[c] = 0.5 * g.normal();
        bn.runningVar!.data[c] = 0.05 + 2 * g.uniform();
        bn.weight!.data[c] = 0.5 + g.uniform();
        bn.bias!.data[c] = g.normal();
      }
      bn.weight!.data[1] = -0.8; // a negative γ
      bn.weight!.data[2] = 0; // a zero γ
    }
    model.eval();
    const x = randn([7, 5], new Generator(112), { dtype, scale: 2 });
    return { model, x };
  };

  for (const [dtype, tol] of [
    ["float64", { atol: 1e-12, rtol: 1e-12 }], // float64: folding reassociates a few products, ~1e-15
    ["float32", { atol: 1e-5, rtol: 1e-5 }], // float32: ~1e-7 per op over three layers
  ] as const) {
    it(`${dtype}: the folded model's output equals the original's eval output (atol ${tol.atol}, rtol ${tol.rtol})`, () => {
      const { model, x } = build(dtype);
      const expected = noGrad(() => model.forward(x));
      const folded = nn.foldBatchNorm(model);
      const actual = noGrad(() => folded.forward(x));
      assertAllClose(actual, expected, tol, "folded vs original");
    });
  }

  it("BN layers are replaced by nn.Identity, the Linears before them gain the folded bias, and the original model is unchanged", () => {
    const { model, x } = build("float64");
    const state = snapshotParameters(model);
    const buffers = snapshotBuffers(model);
    const y0 = noGrad(() => model.forward(x));
    const folded = nn.foldBatchNorm(model);
    assert.ok(folded.at(1) instanceof nn.Identity, "layer 1 is Identity");
    assert.ok(folded.at(4) instanceof nn.Identity, "layer 4 is Identity");
    assert.ok(folded.at(0) instanceof nn.Linear && folded.at(3) instanceof nn.Linear);
    assert.notEqual((folded.at(3) as nn.Linear).bias, null, "the bias-free Linear gained a bias");
    assert.equal([...folded.modules()].filter((m) => m instanceof nn.BatchNormBase).length, 0);
    assert.ok(model.at(1) instanceof nn.BatchNorm1d && model.at(4) instanceof nn.BatchNorm1d, "the original keeps its BN layers");
    assert.equal((model.at(3) as nn.Linear).bias, null);
    assertSameBytes(state, snapshotParameters(model), "original parameters");
    assertSameBytes(buffers, snapshotBuffers(model), "original buffers");
    const y1 = noGrad(() => model.forward(x));
    assert.ok(bytesOf(y1).equals(bytesOf(y0)), "the original's output is bit-identical after folding");
  });

  it("refuses a model in training mode, with a message saying to call eval()", () => {
    const { model } = build("float64");
    model.train();
    assert.throws(() => nn.foldBatchNorm(model), /training mode.*[Cc]all model\.eval\(\)/s);
  });

  it("refuses a BN built with trackRunningStats: false", () => {
    const model = new nn.Sequential(new nn.Linear(3, 2), new nn.BatchNorm1d(2, { trackRunningStats: false }));
    model.eval();
    assert.throws(() => nn.foldBatchNorm(model), /trackRunningStats: false/);
  });
});
