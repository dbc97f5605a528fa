/**
 * Golden values from PyTorch: covshift must be numerically interchangeable
 * with torch. The fixtures in test/fixtures/ were written by
 * tools/torch/make_fixtures.py (float64 PyTorch, float32-representable inputs);
 * this test needs no Python.
 *
 * Every comparison runs twice: in float64 against the float64 golden values
 * (|a − e| ≤ 1e-12 + 1e-10·|e|), and in float32 against the same values with
 * float32 tolerances (stated at each comparison), all through ./allclose.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { tensor, Tensor, nn, optim, noGrad } from "../src/index.js";
import { assertAllClose, type Tolerance } from "./allclose.js";

type DType = "float32" | "float64";
const DTYPES: DType[] = ["float64", "float32"];

interface Enc {
  shape: number[];
  data: number[];
}

/** Fixture loader: tests run from dist/test/, the fixtures live in <root>/test/fixtures/. */
function loadFixture<T>(name: string): T {
  const file = fileURLToPath(new URL(`../../test/fixtures/${name}`, import.meta.url));
  return JSON.parse(fs.readFileSync(file, "utf8")) as T;
}

/** float64 covshift vs float64 torch: agreement to ~1e-10 relative. */
const TOL64: Tolerance = { rtol: 1e-10, atol: 1e-12 };
/** float32 covshift vs float64 torch: float32 rounding (~6e-8 per op) accumulated over a few ops. */
const TOL32: Tolerance = { rtol: 1e-4, atol: 1e-5 };
const tolFor = (dtype: DType): Tolerance => (dtype === "float64" ? TOL64 : TOL32);

function t(e: Enc, dtype: DType, requiresGrad = false): Tensor {
  return tensor(e.data, e.shape, { dtype, requiresGrad });
}

// ---------------------------------------------------------------------------
// BatchNorm

interface BnRecord {
  x: Enc;
  dy: Enc;
  y: Enc;
  dx: Enc;
  dweight: Enc | null;
  dbias: Enc | null;
  running_mean: Enc | null;
  running_var: Enc | null;
  num_batches_tracked: number | null;
}

interface BnCase {
  name: string;
  module: "BatchNorm1d" | "BatchNorm2d";
  num_features: number;
  eps: number;
  momentum: number | null;
  affine: boolean;
  track_running_stats: boolean;
  weight: Enc | null;
  bias: Enc | null;
  batches: BnRecord[];
  eval: BnRecord;
}

/** What covshift produced for one forward/backward, read back right after it. */
interface BnObserved {
  y: Tensor;
  dx: Tensor | null;
  dweight: Tensor | null;
  dbias: Tensor | null;
  runningMean: Tensor | null;
  runningVar: Tensor | null;
  numBatchesTracked: number;
}

interface BnRun {
  batches: BnObserved[];
  eval: BnObserved;
}

const bnFixture = loadFixture<{ cases: BnCase[] }>("batchnorm.json");

const snapshot = (x: Tensor | null | undefined): Tensor | null => (x ? x.clone() : null);

/** Replays a fixture case in covshift: the training batches in order, then eval. Gradients are per batch. */
function runBnCase(c: BnCase, dtype: DType): BnRun {
  const options = {
    eps: c.eps,
    momentum: c.momentum,
    affine: c.affine,
    trackRunningStats: c.track_running_stats,
    dtype,
  };
  const bn = c.module === "BatchNorm1d" ? new nn.BatchNorm1d(c.num_features, options) : new nn.BatchNorm2d(c.num_features, options);
  if (c.affine) {
    bn.weight!.data.set(c.weight!.data);
    bn.bias!.data.set(c.bias!.data);
  }
  const step = (r: BnRecord): BnObserved => {
    if (c.affine) {
      bn.weight!.grad = null;
      bn.bias!.grad = null;
    }
    const x = t(r.x, dtype, true);
    const y = bn.forward(x);
    y.backward(t(r.dy, dtype));
    return {
      y: y.clone(),
      dx: snapshot(x.grad),
      dweight: c.affine ? snapshot(bn.weight!.grad) : null,
      dbias: c.affine ? snapshot(bn.bias!.grad) : null,
      runningMean: snapshot(bn.runningMean),
      runningVar: snapshot(bn.runningVar),
      numBatchesTracked: bn.numBatchesTracked,
    };
  };
  bn.train();
  const batches = c.batches.map(step);
  bn.eval();
  return { batches, eval: step(c.eval) };
}

const bnRuns = new Map<string, BnRun>();
function bnRun(c: BnCase, dtype: DType): BnRun {
  const key = `${c.name}/${dtype}`;
  let run = bnRuns.get(key);
  if (!run) {
    run = runBnCase(c, dtype);
    bnRuns.set(key, run);
  }
  return run;
}

function forEachBatch(dtype: DType, fn: (c: BnCase, r: BnRecord, o: BnObserved, where: string) => void): void {
  for (const c of bnFixture.cases) {
    const run = bnRun(c, dtype);
    c.batches.forEach((r, i) => fn(c, r, run.batches[i], `${c.name} (${dtype}) batch ${i + 1}`));
  }
}

for (const dtype of DTYPES) {
  const tol = tolFor(dtype);
  describe(`BatchNorm vs PyTorch golden values (${dtype})`, () => {
    test("the fixtures cover BatchNorm1d on (N,C) and (N,C,L), BatchNorm2d, affine and not, momentum=null, no running stats", () => {
      const cases = bnFixture.cases;
      assert.ok(cases.some((c) => c.module === "BatchNorm1d" && c.batches[0].x.shape.length === 2));
      assert.ok(cases.some((c) => c.module === "BatchNorm1d" && c.batches[0].x.shape.length === 3));
      assert.ok(cases.some((c) => c.module === "BatchNorm2d" && c.batches[0].x.shape.length === 4));
      assert.ok(cases.some((c) => c.affine) && cases.some((c) => !c.affine));
      assert.ok(cases.some((c) => c.momentum === null && c.batches.length === 3));
      assert.ok(cases.some((c) => !c.track_running_stats));
    });

    test("training-mode output normalizes with the batch mean and biased batch variance: y = γ(x−μ_B)/√(σ²_B+ε)+β as in PyTorch", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      forEachBatch(dtype, (_c, r, o, where) => assertAllClose(o.y, r.y, tol, `${where}: y`));
    });

    test("running mean after each batch is PyTorch's: (1−momentum)·old + momentum·μ_B, or the cumulative average when momentum is null", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      forEachBatch(dtype, (c, r, o, where) => {
        if (!c.track_running_stats) {
          assert.equal(o.runningMean ?? null, null, `${where}: no running mean without trackRunningStats`);
          return;
        }
        assertAllClose(o.runningMean, r.running_mean!, tol, `${where}: runningMean`);
      });
    });

    test("running variance after each batch is PyTorch's (unbiased m/(m−1) update, m = N·spatial; factor 2 for a batch of two)", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      forEachBatch(dtype, (c, r, o, where) => {
        if (!c.track_running_stats) {
          assert.equal(o.runningVar ?? null, null, `${where}: no running variance without trackRunningStats`);
          return;
        }
        assertAllClose(o.runningVar, r.running_var!, tol, `${where}: runningVar`);
      });
    });

    test("numBatchesTracked counts training forwards exactly as PyTorch's num_batches_tracked", () => {
      forEachBatch(dtype, (c, r, o, where) => {
        if (c.track_running_stats) assert.equal(o.numBatchesTracked, r.num_batches_tracked, `${where}: numBatchesTracked`);
      });
    });

    test("dx back-propagates through the batch mean and variance exactly as PyTorch's", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      forEachBatch(dtype, (_c, r, o, where) => assertAllClose(o.dx, r.dx, tol, `${where}: dx`));
    });

    test("dγ = Σ dy·x̂ and dβ = Σ dy per channel equal PyTorch's weight.grad and bias.grad", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      forEachBatch(dtype, (c, r, o, where) => {
        if (!c.affine) return;
        assertAllClose(o.dweight, r.dweight!, tol, `${where}: dweight`);
        assertAllClose(o.dbias, r.dbias!, tol, `${where}: dbias`);
      });
    });

    test("eval mode normalizes with the running statistics (batch statistics without trackRunningStats) and leaves them unchanged", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      for (const c of bnFixture.cases) {
        const o = bnRun(c, dtype).eval;
        const where = `${c.name} (${dtype}) eval`;
        assertAllClose(o.y, c.eval.y, tol, `${where}: y`);
        if (c.track_running_stats) {
          assertAllClose(o.runningMean, c.eval.running_mean!, tol, `${where}: runningMean`);
          assertAllClose(o.runningVar, c.eval.running_var!, tol, `${where}: runningVar`);
          assert.equal(o.numBatchesTracked, c.eval.num_batches_tracked, `${where}: numBatchesTracked must not move in eval`);
        }
      }
    });

    test("eval-mode gradients equal PyTorch's: dx = dy·γ/√(running_var+ε) (constant statistics), dγ, dβ", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      for (const c of bnFixture.cases) {
        const o = bnRun(c, dtype).eval;
        const where = `${c.name} (${dtype}) eval`;
        assertAllClose(o.dx, c.eval.dx, tol, `${where}: dx`);
        if (c.affine) {
          assertAllClose(o.dweight, c.eval.dweight!, tol, `${where}: dweight`);
          assertAllClose(o.dbias, c.eval.dbias!, tol, `${where}: dbias`);
        }
      }
    });

    test("an input offset by 1000 with unit spread is normalized without cancellation (two-pass variance)", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      const c = bnFixture.cases.find((k) => k.name === "bn2d_large_offset");
      assert.ok(c, "fixture case bn2d_large_offset");
      const run = bnRun(c, dtype);
      c.batches.forEach((r, i) => {
        assertAllClose(run.batches[i].y, r.y, tol, `${c.name} (${dtype}) batch ${i + 1}: y`);
        assertAllClose(run.batches[i].runningVar, r.running_var!, tol, `${c.name} (${dtype}) batch ${i + 1}: runningVar`);
      });
    });
  });
}

// ---------------------------------------------------------------------------
// MLP with BatchNorm trained by SGD

interface SgdStep {
  loss: number;
  grads: Record<string, Enc>;
  state_after: Record<string, Enc>;
}

interface SgdConfig {
  name: string;
  sgd: { lr: number; momentum: number; weight_decay: number; dampening: number; nesterov: boolean };
  steps: SgdStep[];
  eval_logits: Enc;
}

interface MlpFixture {
  initial_state: Record<string, Enc>;
  x: Enc;
  targets: number[];
  x_eval: Enc;
  configs: SgdConfig[];
}

const mlpFixture = loadFixture<MlpFixture>("mlp_sgd.json");

/** Sequential(Linear(6,5), BatchNorm1d(5), Sigmoid(), Linear(5,4,bias=False), BatchNorm1d(4), ReLU(), Linear(4,3)); BN at its defaults (eps 1e-5, momentum 0.1). */
function makeMlp(dtype: DType) {
  return new nn.Sequential(
    new nn.Linear(6, 5, { dtype }),
    new nn.BatchNorm1d(5, { dtype }),
    new nn.Sigmoid(),
    new nn.Linear(5, 4, { bias: false, dtype }),
    new nn.BatchNorm1d(4, { dtype }),
    new nn.ReLU(),
    new nn.Linear(4, 3, { dtype }),
  );
}

function stateFromFixture(state: Record<string, Enc>, dtype: DType): Record<string, Tensor> {
  const sd: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(state)) sd[k] = t(v, dtype);
  return sd;
}

function assertState(actual: Record<string, Tensor>, expected: Record<string, Enc>, tol: Tolerance, where: string): void {
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${where}: state-dict keys`);
  for (const [k, e] of Object.entries(expected)) {
    if (k.endsWith("num_batches_tracked")) {
      assert.equal(actual[k].item(), e.data[0], `${where}: ${k}`);
    } else {
      assertAllClose(actual[k], e, tol, `${where}: ${k}`);
    }
  }
}

interface MlpObserved {
  losses: number[];
  grads: Record<string, Tensor | null>[];
  states: Record<string, Tensor>[];
  evalLogits: Tensor;
}

const mlpRuns = new Map<string, MlpObserved>();
function mlpRun(cfg: SgdConfig, dtype: DType): MlpObserved {
  const key = `${cfg.name}/${dtype}`;
  const cached = mlpRuns.get(key);
  if (cached) return cached;
  const model = makeMlp(dtype);
  model.loadStateDict(stateFromFixture(mlpFixture.initial_state, dtype));
  model.train();
  const opt = new optim.SGD(model.parameters(), {
    lr: cfg.sgd.lr,
    momentum: cfg.sgd.momentum,
    weightDecay: cfg.sgd.weight_decay,
    dampening: cfg.sgd.dampening,
    nesterov: cfg.sgd.nesterov,
  });
  const lossFn = new nn.CrossEntropyLoss();
  const x = t(mlpFixture.x, dtype);
  const observed: MlpObserved = { losses: [], grads: [], states: [], evalLogits: null as unknown as Tensor };
  for (let s = 0; s < cfg.steps.length; s++) {
    opt.zeroGrad();
    const loss = lossFn.forward(model.forward(x), mlpFixture.targets);
    loss.backward();
    observed.losses.push(loss.item());
    const grads: Record<string, Tensor | null> = {};
    for (const [name, p] of model.namedParameters()) grads[name] = snapshot(p.grad);
    observed.grads.push(grads);
    opt.step();
    const state: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(model.stateDict())) state[k] = v.clone();
    observed.states.push(state);
  }
  model.eval();
  noGrad(() => {
    observed.evalLogits = model.forward(t(mlpFixture.x_eval, dtype)).clone();
  });
  mlpRuns.set(key, observed);
  return observed;
}

/** float32 through 3 SGD steps of a 7-layer net: 1e-5 absolute + 1e-4 relative. */
const TOL32_MLP: Tolerance = { rtol: 1e-4, atol: 1e-5 };

for (const dtype of DTYPES) {
  const tol = dtype === "float64" ? TOL64 : TOL32_MLP;
  describe(`MLP with BatchNorm trained by SGD vs PyTorch (${dtype})`, () => {
    test("stateDict() uses PyTorch's keys (0.weight, 1.running_mean, 1.num_batches_tracked, …) and loadStateDict round-trips the initial state", () => {
      // tolerance: exact (a load copies values; inputs are float32-representable)
      const model = makeMlp(dtype);
      model.loadStateDict(stateFromFixture(mlpFixture.initial_state, dtype));
      assertState(model.stateDict(), mlpFixture.initial_state, { rtol: 0, atol: 0 }, `initial (${dtype})`);
      assert.deepEqual(
        model.namedParameters().map(([k]) => k),
        Object.keys(mlpFixture.configs[0].steps[0].grads),
        "namedParameters() lists PyTorch's parameter keys in registration order",
      );
    });

    for (const cfg of mlpFixture.configs) {
      const label = `SGD ${cfg.name} (lr ${cfg.sgd.lr}, momentum ${cfg.sgd.momentum}, weightDecay ${cfg.sgd.weight_decay}, nesterov ${cfg.sgd.nesterov})`;

      test(`${label}: the mean cross-entropy loss at each of 3 steps equals PyTorch's`, () => {
        // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
        const o = mlpRun(cfg, dtype);
        cfg.steps.forEach((s, i) => assertAllClose(o.losses[i], s.loss, tol, `${cfg.name} (${dtype}) step ${i + 1}: loss`));
      });

      test(`${label}: every parameter's gradient at each step equals PyTorch's (backprop through two BatchNorm layers)`, () => {
        // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
        const o = mlpRun(cfg, dtype);
        cfg.steps.forEach((s, i) => {
          for (const [k, e] of Object.entries(s.grads)) {
            assertAllClose(o.grads[i][k], e, tol, `${cfg.name} (${dtype}) step ${i + 1}: grad of ${k}`);
          }
        });
      });

      test(`${label}: every parameter and buffer after each step equals PyTorch's (SGD update, running stats, num_batches_tracked)`, () => {
        // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|; num_batches_tracked exact
        const o = mlpRun(cfg, dtype);
        cfg.steps.forEach((s, i) => assertState(o.states[i], s.state_after, tol, `${cfg.name} (${dtype}) after step ${i + 1}`));
      });

      test(`${label}: the trained model in eval mode gives PyTorch's logits`, () => {
        // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
        assertAllClose(mlpRun(cfg, dtype).evalLogits, cfg.eval_logits, tol, `${cfg.name} (${dtype}): eval logits`);
      });
    }
  });
}

// ---------------------------------------------------------------------------
// Loss and activations

interface OpsFixture {
  cross_entropy: { logits: Enc; targets: number[]; loss: number; dlogits: Enc };
  activations: { x: Enc; dy: Enc; sigmoid: { y: Enc; dx: Enc }; relu: { y: Enc; dx: Enc } };
}

const opsFixture = loadFixture<OpsFixture>("ops.json");

for (const dtype of DTYPES) {
  const tol = tolFor(dtype);
  describe(`loss and activations vs PyTorch (${dtype})`, () => {
    test("cross-entropy on logits of ±50 is finite and equals PyTorch's loss and gradient (log-sum-exp is stable)", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      const ce = opsFixture.cross_entropy;
      const logits = t(ce.logits, dtype, true);
      const loss = new nn.CrossEntropyLoss().forward(logits, ce.targets);
      assert.ok(Number.isFinite(loss.item()), `loss is ${loss.item()}`);
      assertAllClose(loss.item(), ce.loss, tol, `cross-entropy (${dtype}): loss`);
      loss.backward();
      assertAllClose(logits.grad, ce.dlogits, tol, `cross-entropy (${dtype}): dlogits`);
    });

    test("cross-entropy accepts Int32Array targets with the same result", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      const ce = opsFixture.cross_entropy;
      const loss = new nn.CrossEntropyLoss().forward(t(ce.logits, dtype), Int32Array.from(ce.targets));
      assertAllClose(loss.item(), ce.loss, tol, `cross-entropy (${dtype}, Int32Array): loss`);
    });

    test("sigmoid values and gradient dy·σ(1−σ) equal PyTorch's from −800 to 800 (no overflow)", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      const a = opsFixture.activations;
      const x = t(a.x, dtype, true);
      const y = new nn.Sigmoid().forward(x);
      assertAllClose(y, a.sigmoid.y, tol, `sigmoid (${dtype}): y`);
      y.backward(t(a.dy, dtype));
      assertAllClose(x.grad, a.sigmoid.dx, tol, `sigmoid (${dtype}): dx`);
    });

    test("relu values and gradient equal PyTorch's, with gradient 0 at x = 0", () => {
      // tolerance: float64 1e-12 + 1e-10·|e|; float32 1e-5 + 1e-4·|e|
      const a = opsFixture.activations;
      const x = t(a.x, dtype, true);
      const y = new nn.ReLU().forward(x);
      assertAllClose(y, a.relu.y, tol, `relu (${dtype}): y`);
      y.backward(t(a.dy, dtype));
      assertAllClose(x.grad, a.relu.dx, tol, `relu (${dtype}): dx`);
      const zero = a.x.data.indexOf(0);
      assert.equal(x.grad!.data[zero], 0, "relu'(0) = 0 as in PyTorch");
    });
  });
}
