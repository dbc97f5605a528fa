/**
 * BN followed by ReLU or a sigmoid, fused (channelAffineActivated,
 * channelGradSumsActivated, channelGradInputActivated;
 * ops.batchNormTrain's `activation`; Sequential running a BN layer and the
 * ReLU or Sigmoid after it as one): the same bits as the unfused composition
 * — BN's kernels, then relu / reluBackward or sigmoid / sigmoidBackward —
 * forward and backward, on the backend under test and on every wasm build;
 * the fused op's gradients against float64 central differences; and the
 * layers that must not fuse (eval, frozen, the variants) giving what they
 * gave before.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { assertSame } from "./assert.js";
import { wasmBuilds } from "./builds.js";
import { randomF32, randomF64, rng } from "./rng.js";
import type { Backend } from "../../src/backend/backend.js";
import { getBackend } from "../../src/backend/index.js";
import { referenceBackend } from "../../src/backend/reference/index.js";
import { Generator, nn, ops, Tensor } from "../../src/index.js";
import { gradcheck, randn } from "../core/helpers.js";

/** (N, C, S): rows of features (S = 1), runs that end in a partial vector or a scalar tail, the table's 4×4, 7×7 and 14×14 maps. */
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 1],
  [9, 13, 1],
  [7, 3, 17],
  [3, 2, 14],
  [4, 6, 16],
  [2, 3, 49],
  [2, 4, 196],
];

/** Each fused kernel of `k` against its composition from k's own unfused kernels, bit for bit. */
function checkKernels(k: Backend, label: string, act: "relu" | "sigmoid"): void {
  const forward = (z: Float32Array, y: Float32Array) => (act === "relu" ? k.relu(z, y) : k.sigmoid(z, y));
  // The nonlinearity's backward: ReLU's from its input z, the sigmoid's from its output y.
  const backward = (z: Float32Array, y: Float32Array, dy: Float32Array, dz: Float32Array) =>
    act === "relu" ? k.reluBackward(z, dy, dz) : k.sigmoidBackward(y, dy, dz);
  const next = rng(41);
  for (const [N, C, S] of shapes) {
    const n = N * C * S;
    const what = `${label} (${N}, ${C}, ${S})`;
    const x = randomF32(n, next, 2, 0.3);
    const center = randomF64(C, next, 0.5, 0.3);
    const scale = randomF64(C, next, 2);
    const shift = randomF64(C, next, 0.5);
    // Values the ReLU must take apart exactly: x at the center with no shift gives +0·scale + 0, and a NaN.
    x[0] = center[0];
    shift[0] = 0;
    if (n > 2) x[n - 1] = NaN;
    const z = new Float32Array(n);
    k.channelAffine(x, z, N, C, S, center, scale, shift);
    const unfused = new Float32Array(n);
    forward(z, unfused);
    const y = new Float32Array(n).fill(7);
    k.channelAffineActivated(x, y, N, C, S, center, scale, shift, act);
    assertSame(y, unfused, `channelAffine (${act}) ${what}`);

    // The backward on finite data: ∂ℓ/∂z from the nonlinearity's backward, then BN's two kernels.
    const xf = x.map((v) => (Number.isNaN(v) ? 0.25 : v));
    k.channelAffine(xf, z, N, C, S, center, scale, shift);
    k.channelAffineActivated(xf, y, N, C, S, center, scale, shift, act);
    const dy = randomF32(n, next, 1);
    const dz = new Float32Array(n);
    backward(z, y, dy, dz);
    const [s0, p0, s1, p1] = [new Float64Array(C), new Float64Array(C), new Float64Array(C), new Float64Array(C)];
    k.channelGradSums(xf, dz, N, C, S, center, s0, p0);
    k.channelGradSumsActivated(xf, dy, y, N, C, S, center, s1, p1, act);
    assertSame(s1, s0, `channelGradSums (${act}) Σdy ${what}`);
    assertSame(p1, p0, `channelGradSums (${act}) Σdy·(x − μ) ${what}`);
    const [a, b, kk] = [randomF64(C, next, 0.3), randomF64(C, next, 0.3), randomF64(C, next, 2)];
    const dx0 = new Float32Array(n);
    const dx1 = new Float32Array(n).fill(NaN);
    k.channelGradInput(xf, dz, dx0, N, C, S, center, a, b, kk);
    k.channelGradInputActivated(xf, dy, y, dx1, N, C, S, center, a, b, kk, act);
    assertSame(dx1, dx0, `channelGradInput (${act}) ${what}`);
  }
}

for (const act of ["relu", "sigmoid"] as const) {
  describe(`fused BN + ${act} kernels equal their composition bit for bit`, () => {
    it("on the backend under test", () => checkKernels(getBackend(), getBackend().name, act));
    it("on the reference backend", () => checkKernels(referenceBackend, "reference", act));
    it("on every wasm build (relaxed SIMD, SIMD, scalar)", () => {
      for (const w of wasmBuilds()) checkKernels(w, w.name, act);
    });
  });
}

/** The output and the gradients of x, γ and β of f(x, γ, β) under a fixed ∂ℓ/∂y. */
function run(f: (x: Tensor, w: Tensor | null, b: Tensor | null) => Tensor, x0: Tensor, w0: Tensor | null, b0: Tensor | null, gy: Float32Array | Float64Array) {
  const leaf = (t: Tensor | null) => (t === null ? null : new Tensor(t.data.slice(), t.shape, true));
  const [x, w, b] = [leaf(x0)!, leaf(w0), leaf(b0)];
  const y = f(x, w, b);
  y.backward(new Tensor(gy.slice(), y.shape));
  return { y: y.data, gx: x.grad!.data, gw: w?.grad?.data ?? null, gb: b?.grad?.data ?? null };
}

describe("ops.batchNormTrain with relu: the same bits as relu of the unfused output, forward and backward", () => {
  const gen = new Generator(20260412);
  for (const [shape, affine] of [
    [[6, 3, 5, 5], true],
    [[4, 2, 7, 7], false],
    [[9, 5], true],
  ] as [number[], boolean][]) {
    it(`x ${JSON.stringify(shape)}${affine ? "" : " without γ, β"} (float32, on the backend under test)`, () => {
      const C = shape[1];
      const f32 = { dtype: "float32" } as const;
      const x = randn(shape, gen, { ...f32, scale: 2, shift: 0.3 });
      const w = affine ? randn([C], gen, { ...f32, shift: 1 }) : null;
      const b = affine ? randn([C], gen, { ...f32, scale: 0.5 }) : null;
      const gy = randn(shape, gen, f32).data;
      const fused = run((t, g, h) => ops.batchNormTrain(t, g, h, 1e-5, { activation: "relu" }).y, x, w, b, gy);
      const plain = run((t, g, h) => ops.relu(ops.batchNormTrain(t, g, h, 1e-5).y), x, w, b, gy);
      assert.ok(fused.y.some((v) => v === 0) && fused.y.some((v) => v > 0), "the ReLU cuts some values and keeps others");
      assertSame(fused.y, plain.y, "y");
      assertSame(fused.gx, plain.gx, "∂ℓ/∂x");
      if (affine) {
        assertSame(fused.gw!, plain.gw!, "∂ℓ/∂γ");
        assertSame(fused.gb!, plain.gb!, "∂ℓ/∂β");
      }
    });
  }

  it("gradients of x, γ, β against float64 central differences (h 1e-6, atol 1e-7, rtol 1e-5)", () => {
    // Seeded: no BN output of these draws lies within 1e-4 of the kink, so the differences do not straddle it.
    const g = new Generator(7);
    const x = randn([4, 3, 3, 3], g, { requiresGrad: true, scale: 2, shift: 0.5 });
    const w = randn([3], g, { requiresGrad: true, shift: 1 });
    const b = randn([3], g, { requiresGrad: true, scale: 0.5 });
    const z = ops.batchNormTrain(x, w, b, 1e-5).y.data;
    assert.ok(Array.from(z).every((v) => Math.abs(v) > 1e-4), "no output near the kink");
    assert.ok(Array.from(z).some((v) => v < 0), "some outputs are cut");
    gradcheck(([t, gw, gb]) => ops.batchNormTrain(t, gw, gb, 1e-5, { activation: "relu" }).y, [x, w, b]);
  });
});

/** A ReLU that Sequential does not fuse: the unfused composition, for comparison. */
class PlainReLU extends nn.ReLU {}

describe("Sequential runs BN then ReLU as one: the same bits as the layers one by one", () => {
  const build = (fused: boolean, bn: () => nn.Module) =>
    new nn.Sequential(
      new nn.Conv2d(3, 4, 3, { padding: 1, bias: false, generator: new Generator(3) }),
      bn(),
      fused ? new nn.ReLU() : new PlainReLU(),
    );
  const gen = new Generator(11);
  const x = randn([5, 3, 6, 6], gen, { dtype: "float32", scale: 1.5 });
  const gy = randn([5, 4, 6, 6], gen, { dtype: "float32" }).data;

  const compare = (bn: () => nn.Module, prepare: (m: nn.Sequential) => void, what: string) => {
    const [a, b] = [build(true, bn), build(false, bn)];
    prepare(a);
    prepare(b);
    for (let step = 0; step < 2; step++) {
      const ya = a.forward(x);
      const yb = b.forward(x);
      assertSame(ya.data, yb.data, `${what}: y, step ${step}`);
      ya.backward(new Tensor(gy.slice(), ya.shape));
      yb.backward(new Tensor(gy.slice(), yb.shape));
      const [pa, pb] = [a.parameters(), b.parameters()];
      pa.forEach((p, i) => {
        if (p.grad === null) assert.equal(pb[i].grad, null, `${what}: parameter ${i} has no gradient in either`);
        else assertSame(p.grad.data, pb[i].grad!.data, `${what}: ∂ℓ/∂ parameter ${i}, step ${step}`);
      });
    }
    const [sa, sb] = [a.stateDict(), b.stateDict()];
    assert.deepEqual(Object.keys(sa), Object.keys(sb), `${what}: the same state-dict keys`);
    for (const k of Object.keys(sa)) assertSame(sa[k].data, sb[k].data, `${what}: ${k}`);
  };

  it("BatchNorm2d in training: output, gradients, running statistics and counter", () => {
    compare(() => new nn.BatchNorm2d(4), () => {}, "training");
  });
  it("BatchNorm2d without running statistics", () => {
    compare(() => new nn.BatchNorm2d(4, { trackRunningStats: false }), () => {}, "trackRunningStats false");
  });
  it("eval mode, a frozen BN, and ghost BN (not fused) give the same bits", () => {
    compare(() => new nn.BatchNorm2d(4), (m) => m.eval(), "eval");
    compare(() => new nn.BatchNorm2d(4), (m) => (m.at(1) as nn.BatchNorm2d).freeze(), "frozen");
    compare(() => new nn.GhostBatchNorm2d(4, { virtualBatchSize: 5 }), () => {}, "ghost BN");
  });
  it("a forward set on the BN or the ReLU instance (as summary() does) sees its call: no fusion then", () => {
    for (const k of [1, 2]) {
      const m = build(true, () => new nn.BatchNorm2d(4));
      const layer = m.at(k);
      let calls = 0;
      const own = layer.forward.bind(layer);
      (layer as { forward: nn.Module["forward"] }).forward = (t: Tensor) => (calls++, own(t));
      const y = m.forward(x);
      assert.equal(calls, 1, `layer ${k}'s own forward was called`);
      assert.equal(y.gradFn?.name, "relu");
    }
  });
    it("the fused path is taken: no relu node in the graph, one batch_norm_relu", () => {
    const m = build(true, () => new nn.BatchNorm2d(4));
    const y = m.forward(x);
    assert.equal(y.gradFn?.name, "batch_norm_relu");
    assert.equal(y.gradFn?.inputs[0].gradFn?.name, "conv2d");
  });
});

describe("ops.batchNormTrain with a sigmoid: the same bits as sigmoid of the unfused output, forward and backward", () => {
  const gen = new Generator(20261203);
  for (const [shape, affine] of [
    [[60, 100], true],
    [[9, 7], true],
    [[4, 3, 5, 5], false],
  ] as [number[], boolean][]) {
    it(`x ${JSON.stringify(shape)}${affine ? "" : " without γ, β"} (float32, on the backend under test)`, () => {
      const C = shape[1];
      const f32 = { dtype: "float32" } as const;
      const x = randn(shape, gen, { ...f32, scale: 2, shift: 0.3 });
      const w = affine ? randn([C], gen, { ...f32, shift: 1 }) : null;
      const b = affine ? randn([C], gen, { ...f32, scale: 0.5 }) : null;
      const gy = randn(shape, gen, f32).data;
      const fused = run((t, g, h) => ops.batchNormTrain(t, g, h, 1e-5, { activation: "sigmoid" }).y, x, w, b, gy);
      const plain = run((t, g, h) => ops.sigmoid(ops.batchNormTrain(t, g, h, 1e-5).y), x, w, b, gy);
      assertSame(fused.y, plain.y, "y");
      assertSame(fused.gx, plain.gx, "∂ℓ/∂x");
      if (affine) {
        assertSame(fused.gw!, plain.gw!, "∂ℓ/∂γ");
        assertSame(fused.gb!, plain.gb!, "∂ℓ/∂β");
      }
    });
  }
  it("gradients of x, γ, β against float64 central differences (h 1e-6, atol 1e-7, rtol 1e-5)", () => {
    const g = new Generator(8);
    const x = randn([5, 4], g, { requiresGrad: true, scale: 2, shift: 0.5 });
    const w = randn([4], g, { requiresGrad: true, shift: 1 });
    const b = randn([4], g, { requiresGrad: true, scale: 0.5 });
    gradcheck(([t, gw, gb]) => ops.batchNormTrain(t, gw, gb, 1e-5, { activation: "sigmoid" }).y, [x, w, b]);
  });
});

/** A Sigmoid that Sequential does not fuse: the unfused composition, for comparison. */
class PlainSigmoid extends nn.Sigmoid {}

describe("Sequential runs BN then Sigmoid as one (the §4.1 MLP's hidden layer): the same bits as the layers one by one", () => {
  const build = (fused: boolean) => {
    const g = new Generator(5);
    return new nn.Sequential(new nn.Linear(20, 12, { generator: g }), new nn.BatchNorm1d(12), fused ? new nn.Sigmoid() : new PlainSigmoid(), new nn.Linear(12, 3, { generator: g }));
  };
  const gen = new Generator(12);
  const x = randn([16, 20], gen, { dtype: "float32" });
  const gy = randn([16, 3], gen, { dtype: "float32" }).data;
  it("output, gradients and running statistics over two steps; the graph has one batch_norm_sigmoid and no sigmoid node", () => {
    const [a, b] = [build(true), build(false)];
    for (let step = 0; step < 2; step++) {
      const ya = a.forward(x);
      const yb = b.forward(x);
      assertSame(ya.data, yb.data, `y, step ${step}`);
      assert.equal(ya.gradFn?.inputs[0].gradFn?.name, "batch_norm_sigmoid");
      assert.equal(yb.gradFn?.inputs[0].gradFn?.name, "sigmoid");
      ya.backward(new Tensor(gy.slice(), ya.shape));
      yb.backward(new Tensor(gy.slice(), yb.shape));
      a.parameters().forEach((p, i) => assertSame(p.grad!.data, b.parameters()[i].grad!.data, `∂ℓ/∂ parameter ${i}, step ${step}`));
    }
    const [sa, sb] = [a.stateDict(), b.stateDict()];
    for (const k of Object.keys(sa)) assertSame(sa[k].data, sb[k].data, k);
  });
});
