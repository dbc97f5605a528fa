/**
 * The BN family beyond BatchNorm1d/2d: BatchNorm3d and an empty batch against
 * PyTorch's golden values (tools/torch/make_bnfamily_fixtures.py), a settable
 * trackRunningStats as PyTorch has it, ghost BN against splitting the batch by
 * hand, Batch Renorm against a literal implementation of the paper's
 * Algorithm 1 and float64 finite differences with r and d held, and AdaBN.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { Generator, nn, noGrad, ops, Tensor, tensor } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { gradcheck, randn } from "../core/helpers.js";

interface Enc {
  shape: number[];
  data: number[];
}
interface Step {
  x: Enc;
  dy: Enc;
  y: Enc;
  dx: Enc;
  dweight: Enc;
  dbias: Enc;
  running_mean: Enc;
  running_var: Enc;
  num_batches_tracked: number;
}
const fixtures = JSON.parse(
  fs.readFileSync(fileURLToPath(new URL("../../../test/fixtures/bnfamily.json", import.meta.url)), "utf8"),
) as {
  batchnorm3d: { init: { weight: Enc; bias: Enc }; steps: Step[]; eval: { x: Enc; y: Enc } };
  empty: Record<string, { shape: number[]; running_mean: Enc; running_var: Enc; num_batches_tracked: number }>;
  track_toggle: { first: Step; off: Step; eval_off: { x: Enc; y: Enc }; on_again: Step };
};

const load = (e: Enc, dtype: "float32" | "float64", requiresGrad = false) =>
  new Tensor(dtype === "float32" ? Float32Array.from(e.data) : Float64Array.from(e.data), e.shape, requiresGrad);

/** float64 layers against float64 PyTorch agree to rounding; float32 to float32 rounding of O(1) values. */
const TOL = { float64: { atol: 1e-10, rtol: 1e-9 }, float32: { atol: 2e-5, rtol: 2e-5 } };

/** One training step of `bn` on a fixture step; asserts everything PyTorch recorded. */
function checkStep(bn: nn.BatchNormBase, step: Step, dtype: "float32" | "float64", label: string): void {
  const tol = TOL[dtype];
  const x = load(step.x, dtype, true);
  if (bn.weight) bn.weight.grad = null;
  if (bn.bias) bn.bias.grad = null;
  const y = bn.forward(x);
  y.backward(load(step.dy, dtype));
  assertAllClose(y, load(step.y, dtype), tol, `${label}: y`);
  assertAllClose(x.grad!, load(step.dx, dtype), tol, `${label}: dx`);
  assertAllClose(bn.weight!.grad!, load(step.dweight, dtype), tol, `${label}: dweight`);
  assertAllClose(bn.bias!.grad!, load(step.dbias, dtype), tol, `${label}: dbias`);
  assertAllClose(bn.runningMean!, load(step.running_mean, dtype), tol, `${label}: running_mean`);
  assertAllClose(bn.runningVar!, load(step.running_var, dtype), tol, `${label}: running_var`);
  assert.equal(bn.numBatchesTracked, step.num_batches_tracked, `${label}: num_batches_tracked`);
}

describe("BatchNorm3d against PyTorch (float64: atol 1e-10; float32: 2e-5)", () => {
  for (const dtype of ["float64", "float32"] as const) {
    it(`${dtype}: two training batches of (2, 3, 2, 3, 2) — y, dx, dγ, dβ, running statistics — then eval`, () => {
      const f = fixtures.batchnorm3d;
      const bn = new nn.BatchNorm3d(3, { dtype });
      bn.weight!.data.set(f.init.weight.data);
      bn.bias!.data.set(f.init.bias.data);
      f.steps.forEach((s, i) => checkStep(bn, s, dtype, `step ${i}`));
      bn.eval();
      assertAllClose(bn.forward(load(f.eval.x, dtype)), load(f.eval.y, dtype), TOL[dtype], "eval y");
    });
  }
  it("rejects a 4-d input with a message naming the expected layout", () => {
    assert.throws(() => new nn.BatchNorm3d(2).forward(new Tensor(new Float32Array(8), [1, 2, 2, 2])), /\(N, C, D, H, W\)/);
  });
});

describe("an empty batch in training, as PyTorch", () => {
  for (const [name, make, shape] of [
    ["bn1d", () => new nn.BatchNorm1d(3), [0, 3]],
    ["bn3d", () => new nn.BatchNorm3d(2), [0, 2, 2, 2, 2]],
  ] as const) {
    it(`${name}: empty output, running mean and variance untouched, the batch counted as PyTorch counts it, zero gradients`, () => {
      const f = fixtures.empty[name];
      const bn = make();
      const x = new Tensor(new Float32Array(0), [...shape], true);
      const y = bn.forward(x);
      assert.deepEqual([...y.shape], f.shape);
      assert.equal(y.size, 0);
      assert.deepEqual([...bn.runningMean!.data], f.running_mean.data);
      assert.deepEqual([...bn.runningVar!.data], f.running_var.data);
      assert.equal(bn.numBatchesTracked, f.num_batches_tracked);
      y.backward(new Float32Array(0));
      assert.deepEqual([...bn.weight!.grad!.data], new Array(bn.numFeatures).fill(0));
      assert.deepEqual([...bn.bias!.grad!.data], new Array(bn.numFeatures).fill(0));
      assert.equal(x.grad!.size, 0);
    });
  }
});

describe("trackRunningStats settable after construction, as PyTorch", () => {
  it("off: training uses batch statistics and updates nothing; eval still uses the running statistics; on again: updates resume", () => {
    const f = fixtures.track_toggle;
    const bn = new nn.BatchNorm1d(3, { dtype: "float64" });
    checkStep(bn, f.first, "float64", "first");
    bn.trackRunningStats = false;
    checkStep(bn, f.off, "float64", "tracking off");
    bn.eval();
    assertAllClose(bn.forward(load(f.eval_off.x, "float64")), load(f.eval_off.y, "float64"), TOL.float64, "eval with tracking off");
    bn.train();
    bn.trackRunningStats = true;
    checkStep(bn, f.on_again, "float64", "tracking on again");
  });
  it("built without running statistics, setting it true keeps batch statistics (no buffers appear), as PyTorch", () => {
    const bn = new nn.BatchNorm1d(2, { trackRunningStats: false });
    bn.trackRunningStats = true;
    bn.forward(tensor([1, 2, 3, 5], [2, 2]));
    assert.equal(bn.runningMean, null);
    assert.deepEqual(Object.keys(bn.stateDict()), ["weight", "bias"]);
  });
});

describe("GhostBatchNorm: statistics per virtual batch, checked against splitting the batch by hand", () => {
  const gen = new Generator(2017);
  for (const [Ghost, Plain, shape] of [
    [nn.GhostBatchNorm1d, nn.BatchNorm1d, [12, 3]],
    [nn.GhostBatchNorm1d, nn.BatchNorm1d, [9, 2, 3]],
    [nn.GhostBatchNorm2d, nn.BatchNorm2d, [6, 2, 2, 3]],
  ] as const) {
    it(`${Ghost.name} on [${shape.join(", ")}]: y, dx, dγ, dβ and running statistics equal BN applied to each virtual batch in turn (float64, 1e-12)`, () => {
      const v = shape[0] / 3;
      const ghost = new Ghost(shape[1], { virtualBatchSize: v, dtype: "float64" });
      const plain = new Plain(shape[1], { dtype: "float64" });
      const w = randn([shape[1]], gen, { shift: 1 });
      const b = randn([shape[1]], gen);
      for (const m of [ghost, plain]) {
        m.weight!.data.set(w.data);
        m.bias!.data.set(b.data);
      }
      const x = randn(shape, gen, { requiresGrad: true, scale: 2 });
      const dy = randn(shape, gen);
      const per = x.size / 3;
      const dxByHand = new Float64Array(x.size);
      // By hand: the same BN layer applied to each third of the batch, in order.
      const yByHand = new Float64Array(x.size);
      for (let g = 0; g < 3; g++) {
        const part = new Tensor(x.data.slice(g * per, (g + 1) * per), [v, ...shape.slice(1)], true);
        const yp = plain.forward(part);
        yp.backward(dy.data.slice(g * per, (g + 1) * per));
        yByHand.set(yp.data, g * per);
        dxByHand.set(part.grad!.data, g * per);
      }
      const tol = { atol: 1e-12, rtol: 1e-12 };
      const fresh = ghost;
      const x2 = x;
      const y2 = fresh.forward(x2);
      y2.backward(dy);
      assertAllClose(y2, yByHand, tol, "y");
      assertAllClose(x2.grad!, dxByHand, tol, "dx");
      assertAllClose(fresh.weight!.grad!, plain.weight!.grad!, tol, "dγ");
      assertAllClose(fresh.bias!.grad!, plain.bias!.grad!, tol, "dβ");
      assertAllClose(fresh.runningMean!, plain.runningMean!, tol, "running mean: updated once per virtual batch");
      assertAllClose(fresh.runningVar!, plain.runningVar!, tol, "running variance");
      assert.equal(fresh.numBatchesTracked, 3);
    });
  }
  it("gradcheck: float64 finite differences through ghostBatchNormTrain (virtual batches of 2 in 6)", () => {
    const g2 = new Generator(5);
    gradcheck(([x, w, b]) => ops.ghostBatchNormTrain(x, w, b, 1e-5, 2).y, [
      randn([6, 3], g2, { requiresGrad: true, scale: 2 }),
      randn([3], g2, { requiresGrad: true, shift: 1 }),
      randn([3], g2, { requiresGrad: true }),
    ]);
  });
  it("eval mode normalizes with the running statistics, as BN", () => {
    const ghost = new nn.GhostBatchNorm1d(2, { virtualBatchSize: 2 });
    ghost.forward(tensor([1, 2, 3, 5, 0, 1, 4, 4], [4, 2]));
    ghost.eval();
    const y = ghost.forward(tensor([1, 1], [1, 2]));
    const rm = ghost.runningMean!.data;
    const rv = ghost.runningVar!.data;
    assertAllClose(y, [(1 - rm[0]) / Math.sqrt(rv[0] + 1e-5), (1 - rm[1]) / Math.sqrt(rv[1] + 1e-5)], { atol: 1e-6, rtol: 1e-6 });
  });
  it("errors: a virtual batch that does not divide the batch, a missing or non-integer virtualBatchSize, one value per virtual batch", () => {
    const ghost = new nn.GhostBatchNorm1d(2, { virtualBatchSize: 4 });
    assert.throws(() => ghost.forward(new Tensor(new Float32Array(12), [6, 2])), /virtual batch size 4 does not divide the batch of 6/);
    assert.throws(() => new nn.GhostBatchNorm1d(2, {} as never), /virtualBatchSize must be a positive integer/);
    assert.throws(() => new nn.GhostBatchNorm1d(2, { virtualBatchSize: 2.5 }), /virtualBatchSize must be a positive integer/);
    assert.throws(() => new nn.GhostBatchNorm1d(2, { virtualBatchSize: 1 }).forward(new Tensor(new Float32Array(8), [4, 2])), /more than 1 value per channel/);
  });
});

/**
 * The paper's Algorithm 1 (training) as written, in float64 over plain
 * arrays: the test oracle for BatchRenorm. x is (N, C), moving μ and σ.
 */
function paperAlgorithm1(
  x: Float64Array,
  N: number,
  C: number,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  state: { mu: number[]; sigma: number[] },
  alpha: number,
  rmax: number,
  dmax: number,
  eps: number,
): Float64Array {
  const y = new Float64Array(N * C);
  for (let c = 0; c < C; c++) {
    let muB = 0;
    for (let i = 0; i < N; i++) muB += x[i * C + c];
    muB /= N;
    let v = 0;
    for (let i = 0; i < N; i++) v += (x[i * C + c] - muB) ** 2;
    const sigmaB = Math.sqrt(eps + v / N);
    const r = Math.min(rmax, Math.max(1 / rmax, sigmaB / state.sigma[c]));
    const d = Math.min(dmax, Math.max(-dmax, (muB - state.mu[c]) / state.sigma[c]));
    for (let i = 0; i < N; i++) {
      const xhat = ((x[i * C + c] - muB) / sigmaB) * r + d;
      y[i * C + c] = gamma[c] * xhat + beta[c];
    }
    state.mu[c] += alpha * (muB - state.mu[c]);
    state.sigma[c] += alpha * (sigmaB - state.sigma[c]);
  }
  return y;
}

describe("BatchRenorm (Ioffe 2017) against the paper's Algorithm 1", () => {
  it("six training batches with r and d clipped (rMax 1.5, dMax 0.5) and not: outputs and moving μ, σ follow Algorithm 1; inference is γ(x − μ)/σ + β (float64, 1e-12)", () => {
    const gen = new Generator(1702);
    const C = 3;
    const N = 5;
    const eps = 1e-3;
    const bn = new nn.BatchRenorm1d(C, { rMax: 1.5, dMax: 0.5, eps, momentum: 0.3, dtype: "float64" });
    const gamma = randn([C], gen, { shift: 1 }).data;
    const beta = randn([C], gen).data;
    bn.weight!.data.set(gamma);
    bn.bias!.data.set(beta);
    const state = { mu: [0, 0, 0], sigma: [1, 1, 1].map((s) => Math.sqrt(s + eps)) };
    const tol = { atol: 1e-12, rtol: 1e-11 };
    let clippedR = 0;
    let clippedD = 0;
    for (let step = 0; step < 6; step++) {
      // Batches whose scale and offset move, so that r and d hit their bounds in some channels and not in others.
      const x = randn([N, C], gen, { scale: [0.3, 1, 4][step % 3], shift: step - 2 });
      const sigmaBefore = [...state.sigma];
      const muBefore = [...state.mu];
      const expected = paperAlgorithm1(x.data as Float64Array, N, C, gamma, beta, state, 0.3, 1.5, 0.5, eps);
      for (let c = 0; c < C; c++) {
        const col = Array.from({ length: N }, (_, i) => x.data[i * C + c]);
        const m = col.reduce((a, b) => a + b) / N;
        const sB = Math.sqrt(eps + col.reduce((a, b) => a + (b - m) ** 2, 0) / N);
        if (sB / sigmaBefore[c] > 1.5 || sB / sigmaBefore[c] < 1 / 1.5) clippedR++;
        if (Math.abs((m - muBefore[c]) / sigmaBefore[c]) > 0.5) clippedD++;
      }
      assertAllClose(bn.forward(x), expected, tol, `step ${step}: y`);
      assertAllClose(bn.runningMean!, state.mu, tol, `step ${step}: moving μ`);
      assertAllClose(
        Array.from(bn.runningVar!.data, (v) => Math.sqrt(v + eps)),
        state.sigma,
        tol,
        `step ${step}: moving σ = sqrt(running_var + ε)`,
      );
    }
    assert.ok(clippedR > 0 && clippedR < 18 && clippedD > 0 && clippedD < 18, `both bounds active in some channels (r: ${clippedR}, d: ${clippedD} of 18)`);
    bn.eval();
    const xe = randn([2, C], gen);
    const expected = Array.from(xe.data, (v, i) => (gamma[i % C] * (v - state.mu[i % C])) / state.sigma[i % C] + beta[i % C]);
    assertAllClose(bn.forward(xe), expected, tol, "inference");
  });

  it("gradcheck with r and d held: float64 finite differences of x, γ, β through batchNormTrain with a fixed correction", () => {
    const gen = new Generator(3);
    const r = Float64Array.from([0.7, 1.3, 2]);
    const d = Float64Array.from([-0.4, 0, 1.1]);
    for (const shape of [[6, 3], [4, 3, 2], [2, 3, 2, 2]]) {
      gradcheck(([x, w, b]) => ops.batchNormTrain(x, w, b, 1e-5, { renorm: () => ({ r, d }) }).y, [
        randn(shape, gen, { requiresGrad: true, scale: 2, shift: 0.5 }),
        randn([3], gen, { requiresGrad: true, shift: 1 }),
        randn([3], gen, { requiresGrad: true }),
      ]);
    }
  });

  it("the module's gradient is BN's gradient times r, with r and d treated as constants (stop_gradient)", () => {
    const gen = new Generator(4);
    const bn = new nn.BatchRenorm1d(2, { rMax: 10, dMax: 10, dtype: "float64" });
    bn.runningMean!.data.set([0.5, -1]);
    bn.runningVar!.data.set([4, 0.25]);
    const x = randn([6, 2], gen, { requiresGrad: true });
    const dy = randn([6, 2], gen);
    bn.forward(x).backward(dy);
    const plain = new nn.BatchNorm1d(2, { dtype: "float64" });
    const x2 = new Tensor(x.data.slice(), x.shape, true);
    plain.forward(x2).backward(dy);
    const stats = { mean: [0, 0], sd: [0, 0] };
    for (let c = 0; c < 2; c++) {
      const col = [0, 1, 2, 3, 4, 5].map((i) => x.data[i * 2 + c]);
      stats.mean[c] = col.reduce((a, b) => a + b) / 6;
      stats.sd[c] = Math.sqrt(col.reduce((a, b) => a + (b - stats.mean[c]) ** 2, 0) / 6 + 1e-5);
    }
    const r = [0, 1].map((c) => stats.sd[c] / Math.sqrt([4, 0.25][c] + 1e-5));
    assertAllClose(x.grad!, Array.from(x2.grad!.data, (g, i) => g * r[i % 2]), { atol: 1e-12, rtol: 1e-10 }, "dx = r · BN's dx");
  });

  it("the paper's schedule: plain BN during the warm-up, then bounds relaxed linearly to rMax and dMax", () => {
    const bn = new nn.BatchRenorm1d(4, nn.BatchRenorm1d.paperSchedule);
    assert.deepEqual(bn.boundsAt(0), { rMax: 1, dMax: 0 });
    assert.deepEqual(bn.boundsAt(4999), { rMax: 1, dMax: 0 });
    assert.deepEqual(bn.boundsAt(5000), { rMax: 1, dMax: 0 });
    assert.deepEqual(bn.boundsAt(22500), { rMax: 2, dMax: 4.375 });
    assert.deepEqual(bn.boundsAt(25000), { rMax: 1 + 2 * (20000 / 35000), dMax: 5 });
    assert.deepEqual(bn.boundsAt(40000), { rMax: 3, dMax: 5 });
    assert.deepEqual(bn.boundsAt(1e6), { rMax: 3, dMax: 5 });
    assert.deepEqual(new nn.BatchRenorm1d(4, { rMax: 3, dMax: 5 }).boundsAt(0), { rMax: 3, dMax: 5 });
  });

  it("during the warm-up it is BN in the forward (r = 1, d = 0), whatever the running statistics", () => {
    const gen = new Generator(6);
    const renorm = new nn.BatchRenorm2d(2, { warmupSteps: 10, dtype: "float64" });
    renorm.runningMean!.data.set([5, -5]);
    const plain = new nn.BatchNorm2d(2, { dtype: "float64" });
    const x = randn([3, 2, 2, 2], gen);
    assertAllClose(renorm.forward(x), plain.forward(x), { atol: 1e-13, rtol: 0 }, "y");
  });

  it("errors: rMax < 1, dMax < 0, warm-up beyond the ramp, no running statistics", () => {
    assert.throws(() => new nn.BatchRenorm1d(2, { rMax: 0.5 }), /rMax must be a finite number ≥ 1/);
    assert.throws(() => new nn.BatchRenorm1d(2, { dMax: -1 }), /dMax must be a finite number ≥ 0/);
    assert.throws(() => new nn.BatchRenorm1d(2, { warmupSteps: 10, rMaxReachedAt: 5 }), /rMaxReachedAt must be an integer ≥ warmupSteps/);
    assert.throws(() => new nn.BatchRenorm1d(2, { trackRunningStats: false }), /needs trackRunningStats: true/);
  });
});

describe("AdaBN: adaptBatchNorm recomputes population statistics on the target domain", () => {
  it("running statistics become the target batches' population statistics; no trainable parameter changes; modes restored", () => {
    const gen = new Generator(11);
    const model = new nn.Sequential(new nn.Linear(4, 3, { generator: gen, dtype: "float64" }), new nn.BatchNorm1d(3, { dtype: "float64" }), new nn.Sigmoid());
    model.eval();
    const before = model.parameters().map((p) => p.data.slice());
    const batches = [0, 1, 2].map(() => randn([8, 4], gen, { scale: 3, shift: 2 }));
    const result = nn.adaptBatchNorm(model, batches);
    assert.equal(result.batches, 3);
    model.parameters().forEach((p, i) => assert.deepEqual([...p.data], [...before[i]], "parameters untouched"));
    assert.equal(model.training, false);
    // By hand: mean of batch means and of unbiased batch variances of the Linear's output.
    const lin = model.at(0);
    const means = [0, 0, 0];
    const vars = [0, 0, 0];
    noGrad(() => {
      for (const b of batches) {
        const h = lin.forward(b);
        for (let c = 0; c < 3; c++) {
          const col = Array.from({ length: 8 }, (_, i) => h.data[i * 3 + c]);
          const m = col.reduce((a, v) => a + v) / 8;
          means[c] += m / 3;
          vars[c] += col.reduce((a, v) => a + (v - m) ** 2, 0) / 7 / 3;
        }
      }
    });
    const bn = model.at(1) as nn.BatchNorm1d;
    assertAllClose(bn.runningMean!, means, { atol: 1e-12, rtol: 1e-12 }, "running mean");
    assertAllClose(bn.runningVar!, vars, { atol: 1e-12, rtol: 1e-12 }, "running variance");
  });
  it("every variant computes plain BN population statistics (ghost unsplit, renorm uncorrected), and keeps its settings", () => {
    const gen = new Generator(12);
    const x = randn([8, 2], gen, { scale: 2, shift: 1 });
    const ref = new nn.BatchNorm1d(2, { dtype: "float64" });
    nn.adaptBatchNorm(ref, [x]);
    for (const bn of [
      new nn.GhostBatchNorm1d(2, { virtualBatchSize: 4, dtype: "float64" }),
      new nn.BatchRenorm1d(2, { rMax: 1.1, dMax: 0.1, dtype: "float64", momentum: 0.2 }),
      new nn.SyncBatchNorm(2, { dtype: "float64" }),
    ]) {
      bn.trackRunningStats = false;
      nn.adaptBatchNorm(bn, [x]);
      assertAllClose(bn.runningMean!, ref.runningMean!, { atol: 1e-14, rtol: 0 }, `${bn.constructor.name} mean`);
      assertAllClose(bn.runningVar!, ref.runningVar!, { atol: 1e-14, rtol: 1e-14 }, `${bn.constructor.name} variance`);
      assert.equal(bn.trackRunningStats, false, "trackRunningStats restored");
      assert.equal(bn.populationPass, false);
    }
  });
});
