/**
 * DataParallel over worker threads: N workers × B/N with SyncBN give the
 * loss, gradients, parameters and running statistics of one process on B
 * (within float32 reduction-order tolerance); the replicas stay
 * bit-identical; without sync, BN sees only its shard; bad options and
 * failing replicas give clear errors instead of hanging.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, optim, scope, Tensor } from "../../src/index.js";
import { startDataParallel, type DataParallel } from "../../src/node/parallel.js";
import { ProcessGroup } from "../../src/parallel/index.js";
import { assertAllClose } from "../allclose.js";
import { buildTestModel, type TestReplicaOptions } from "./replicaModel.js";

const replica = new URL("./replicaModel.js", import.meta.url);
const open: DataParallel[] = [];
after(async () => {
  for (const dp of open) await dp.close();
});

async function start(options: TestReplicaOptions, workers: number, extra: Partial<Parameters<typeof startDataParallel>[0]> = {}) {
  const dp = await startDataParallel({
    replica,
    options,
    workers,
    inputShape: options.kind === "mlp" ? [6] : [2, 4, 4],
    maxBatchSize: 24,
    ...extra,
  });
  open.push(dp);
  return dp;
}

function batch(seed: number, rows: number, kind: "mlp" | "conv"): { x: Tensor; y: Int32Array } {
  const g = new Generator(seed);
  const shape = kind === "mlp" ? [rows, 6] : [rows, 2, 4, 4];
  const x = new Tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => g.normal() * 2 + 0.5), shape);
  const y = Int32Array.from({ length: rows }, (_, i) => (i * 7 + seed) % 3);
  return { x, y };
}

/** One process on the whole batch: the loss and gradients of each step. */
function singleProcess(o: TestReplicaOptions, batches: { x: Tensor; y: Int32Array }[]) {
  const model = buildTestModel(o);
  const opt = new optim.SGD(model.parameters(), { lr: o.lr, momentum: o.momentum });
  const lossFn = new nn.CrossEntropyLoss();
  const losses: number[] = [];
  const grads: Float32Array[][] = [];
  model.train();
  for (const { x, y } of batches) {
    losses.push(
      scope(() => {
        opt.zeroGrad({ setToNone: false });
        const loss = lossFn.forward(model.forward(x), y);
        loss.backward();
        grads.push(model.parameters().map((p) => Float32Array.from(p.grad!.data)));
        opt.step();
        return loss.item();
      }),
    );
  }
  return { model, losses, grads };
}

const flatState = (m: nn.Module) => [...m.namedParameters(), ...m.namedBuffers()];

for (const kind of ["mlp", "conv"] as const) {
  for (const workers of [2, 3]) {
    describe(`DataParallel, ${kind}, ${workers} workers`, () => {
      it(`${workers} workers × B/${workers} with SyncBN give one process's loss, gradients, parameters and running statistics on B`, async () => {
        const o: TestReplicaOptions = { seed: 3, kind, lr: 0.1, momentum: 0 };
        const B = 6 * workers;
        const batches = [0, 1, 2].map((s) => batch(10 + s, B, kind));
        const reference = singleProcess(o, batches);
        const dp = await start(o, workers);
        const before = buildTestModel(o).parameters();
        for (let s = 0; s < batches.length; s++) {
          const loss = dp.step(batches[s].x, batches[s].y);
          assertAllClose(loss, reference.losses[s], { atol: 1e-6, rtol: 1e-5 }, `loss of step ${s}`);
          if (s === 0) {
            // momentum 0: the step was p ← p − lr·g, so g = (p_before − p_after)/lr
            const afterStep = dp.pull().parameters();
            afterStep.forEach((p, i) => {
              const g = p.data.map((v, j) => (before[i].data[j] - v) / o.lr);
              assertAllClose(g, reference.grads[0][i], { atol: 2e-5, rtol: 1e-4 }, `gradient of parameter ${i}`);
            });
          }
        }
        const pulled = dp.pull();
        const expected = new Map(flatState(reference.model));
        for (const [name, t] of flatState(pulled)) {
          assertAllClose(t, expected.get(name)!, { atol: 2e-6, rtol: 1e-5 }, name);
        }
        assert.ok(flatState(pulled).some(([n]) => n.endsWith("running_var")));
        await dp.close();
      });
    });
  }
}

describe("DataParallel: replicas, sync off, state", () => {
  it("with momentum, after several steps every replica holds the same bits (parameters and running statistics)", async () => {
    for (const syncBatchNorm of [true, false]) {
      const dp = await start({ seed: 5, kind: "mlp", lr: 0.05, momentum: 0.9 }, 3, { syncBatchNorm });
      for (let s = 0; s < 5; s++) {
        const { x, y } = batch(40 + s, 12, "mlp");
        dp.step(x, y);
      }
      const states = dp.replicaStates();
      assert.equal(states.length, 3);
      for (let r = 1; r < states.length; r++) assert.deepEqual(states[r], states[0], `replica ${r} differs from replica 0 (sync ${syncBatchNorm})`);
      await dp.close();
    }
  });

  it("without SyncBN each replica's BN normalizes with its shard's statistics: the loss and running statistics differ from one process's", async () => {
    const o: TestReplicaOptions = { seed: 3, kind: "mlp", lr: 0.1, momentum: 0 };
    const b = batch(11, 8, "mlp");
    const reference = singleProcess(o, [b]);
    const dp = await start(o, 2, { syncBatchNorm: false });
    const loss = dp.step(b.x, b.y);
    assert.ok(Math.abs(loss - reference.losses[0]) > 1e-4, `loss ${loss} vs ${reference.losses[0]}`);
    // running mean of the first BN after one step = momentum · (rank 0's shard mean): computed by hand
    const first = buildTestModel(o).at(0);
    const shard0 = first.forward(new Tensor(b.x.data.slice(0, 4 * 6), [4, 6]));
    const mean = Array.from({ length: 8 }, (_, c) => (0.1 * [0, 1, 2, 3].reduce((s, r) => s + shard0.data[r * 8 + c], 0)) / 4);
    assertAllClose((dp.pull() as nn.Sequential).at(1).stateDict().running_mean, mean, { atol: 1e-6, rtol: 1e-5 });
    await dp.close();
  });

  it("push() loads the coordinator's module into every replica; optimizer state round-trips", async () => {
    const dp = await start({ seed: 1, kind: "mlp", lr: 0.05, momentum: 0.9 }, 2);
    const b = batch(3, 8, "mlp");
    dp.step(b.x, b.y);
    const state = (await dp.optimizerState()) as optim.SGDState;
    assert.equal(state.steps, 1);
    assert.equal(state.velocity.length, dp.module.parameters().length);
    const model = dp.pull();
    model.parameters()[0].data.fill(0.25);
    dp.push();
    for (const s of dp.replicaStates()) assert.ok(s.subarray(0, 48).every((v) => v === 0.25));
    await dp.loadOptimizerState({ ...state, steps: 7 });
    assert.equal(((await dp.optimizerState()) as optim.SGDState).steps, 7);
    dp.step(b.x, b.y); // still serving after the message round trip
    await dp.close();
    assert.throws(() => dp.step(b.x, b.y), /closed/);
  });

  it("ProcessGroup of one: the collectives are the identity", () => {
    const mem = {
      size: 1,
      control: new SharedArrayBuffer(64),
      input: new SharedArrayBuffer(0),
      target: new SharedArrayBuffer(0),
      losses: new SharedArrayBuffer(8),
      collective: new SharedArrayBuffer(2 * 8 * 8),
      collectiveCapacity: 8,
      slots: new SharedArrayBuffer(8 * 4),
      slotLength: 4,
      state: new SharedArrayBuffer(0),
      message: new SharedArrayBuffer(16),
    };
    const g = new ProcessGroup(0, mem);
    const v = Float64Array.of(1, 2, 3);
    g.allReduceSum(v);
    assert.deepEqual([...v], [1, 2, 3]);
    assert.deepEqual(g.allGather(Float64Array.of(4)).map((p) => [...p]), [[4]]);
    assert.throws(() => g.allReduceSum(new Float64Array(9)), /exceeds the group's capacity of 8/);
  });
});

describe("DataParallel: errors", () => {
  const o: TestReplicaOptions = { seed: 0, kind: "mlp", lr: 0.1, momentum: 0 };
  it("bad options are refused before any worker starts", async () => {
    await assert.rejects(start(o, 0), /workers must be an integer ≥ 1; got 0/);
    await assert.rejects(start(o, 1.5), /workers must be an integer ≥ 1; got 1.5/);
    await assert.rejects(start(o, 2, { maxBatchSize: 0 }), /maxBatchSize must be an integer ≥ 1/);
    await assert.rejects(start(o, 2, { inputShape: [6, -1] }), /inputShape must be an array of integers ≥ 1/);
    await assert.rejects(start(o, 2, { exportName: "nothing" }), /exports no function "nothing"/);
  });

  it("bad batches are refused with what was expected", async () => {
    const dp = await start(o, 2, { maxBatchSize: 8 });
    const b = batch(0, 7, "mlp");
    assert.throws(() => dp.step(b.x, b.y), /a batch of 7 does not split into 2 equal shards/);
    const big = batch(0, 10, "mlp");
    assert.throws(() => dp.step(big.x, big.y), /a batch of 10 exceeds maxBatchSize 8/);
    const ok = batch(0, 8, "mlp");
    assert.throws(() => dp.step(ok.x, ok.y.subarray(0, 6)), /expected 8 target values for 8 examples; got 6/);
    assert.throws(() => dp.step(new Tensor(new Float32Array(8 * 3), [8, 3]), ok.y), /expected inputs of shape \[B, 6\]; got \[8, 3\]/);
    dp.step(ok.x, ok.y);
    await dp.close();
  });

  it("a factory that throws: start() rejects with its message", async () => {
    await assert.rejects(start({ ...o, failIn: "factory" }, 2), /the factory was told to fail/);
  });

  it("a replica that throws inside a step: the step throws its message, the other replicas do not hang", async () => {
    const dp = await start({ ...o, failIn: { forwardOnRank: 1 } }, 2);
    const b = batch(0, 8, "mlp");
    assert.throws(() => dp.step(b.x, b.y), /replica 1: boom in forward/);
    assert.throws(() => dp.step(b.x, b.y), /replica 1: boom in forward/);
    await dp.close();
  });
});
