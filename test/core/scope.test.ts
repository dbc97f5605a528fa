import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, ops, optim, scope, scopeStats, Tensor, tensor } from "../../src/index.js";
import { randn } from "./helpers.js";

function mlp(seed: number): nn.Sequential {
  const g = new Generator(seed);
  return new nn.Sequential(
    new nn.Linear(20, 32, { bias: false, generator: g }),
    new nn.BatchNorm1d(32),
    new nn.Sigmoid(),
    new nn.Linear(32, 10, { generator: g }),
  );
}

function batches(): [Tensor, number[]][] {
  const g = new Generator(7);
  return Array.from({ length: 4 }, () => [randn([16, 20], g, { dtype: "float32" }), Array.from({ length: 16 }, () => g.randint(10))]);
}

describe("scope(): buffer reuse across training steps", () => {
  it("after warm-up, 1,000 training steps inside scope() allocate no new buffers (zeroGrad without setToNone)", () => {
    const model = mlp(1);
    const sgd = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const data = batches();
    const step = (i: number) =>
      scope(() => {
        sgd.zeroGrad({ setToNone: false });
        const [x, t] = data[i % data.length];
        const loss = ops.crossEntropy(model.forward(x), t);
        loss.backward();
        sgd.step();
        return loss.item();
      });
    for (let i = 0; i < 10; i++) step(i);
    const before = scopeStats().misses;
    for (let i = 0; i < 1000; i++) step(i);
    assert.equal(scopeStats().misses - before, 0, "pool misses (new allocations) in steady state");
  });

  it("training inside scope() gives bit-identical parameters to training without it", () => {
    const plain = mlp(3);
    const scoped = mlp(3);
    const data = batches();
    const run = (model: nn.Sequential, wrap: (f: () => void) => void) => {
      const sgd = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-3 });
      for (let i = 0; i < 50; i++) {
        wrap(() => {
          sgd.zeroGrad({ setToNone: false });
          const [x, t] = data[i % data.length];
          ops.crossEntropy(model.forward(x), t).backward();
          sgd.step();
        });
      }
    };
    run(plain, (f) => f());
    run(scoped, (f) => scope(f));
    const a = plain.stateDict();
    const b = scoped.stateDict();
    for (const k of Object.keys(a)) assert.deepEqual(Array.from(b[k].data), Array.from(a[k].data), k);
  });

  it("a returned tensor survives; one left inside throws a message that says how to keep it", () => {
    let inner: Tensor | null = null;
    const kept = scope(() => {
      const a = tensor([1, 2, 3]);
      inner = ops.mul(a, 2);
      return { sum: ops.add(a, 1) };
    });
    assert.deepEqual(Array.from(kept.sum.data), [2, 3, 4]);
    assert.throws(() => inner!.data, /inside a scope\(\) that has ended.*Return it from the scope function/);
    assert.throws(() => inner!.toArray(), /scope/);
  });

  it("a graph built inside a finished scope cannot be back-propagated (no recycled memory is read)", () => {
    const w = tensor([1, 2], [2], { requiresGrad: true });
    const y = scope(() => ops.sum(ops.mul(ops.exp(w), 3)));
    assert.throws(() => y.backward(), /freed/);
  });

  it("gradients adopted by leaves and modules built inside a scope stay valid after it", () => {
    const { model, w } = scope(() => {
      const model = new nn.Linear(3, 2, { generator: new Generator(0) });
      const w = tensor([1, 2], [2], { requiresGrad: true });
      ops.sum(ops.square(w)).backward();
      return { model, w };
    });
    assert.deepEqual(Array.from(w.grad!.data), [2, 4]);
    assert.equal(model.weight.data.length, 6);
    assert.ok(model.forward(tensor([1, 1, 1], [1, 3])).data.every(Number.isFinite));
  });

  it("nested scopes: what the inner one returns lives until the outer one ends", () => {
    let fromInner: Tensor | null = null;
    const outerResult = scope(() => {
      fromInner = scope(() => ops.add(tensor([1, 2]), 1));
      assert.deepEqual(Array.from(fromInner.data), [2, 3], "valid inside the outer scope");
      return 5;
    });
    assert.equal(outerResult, 5);
    assert.throws(() => fromInner!.data, /scope/);
  });
});

describe("scope(): gradients of leaves made inside it", () => {
  it("a leaf made inside a scope has its gradient recycled with it (nothing escapes), and a returned leaf keeps a readable gradient", () => {
    const x0 = new Float32Array([1, -2, 3, -4]);
    // Warm the pool, then a step whose leaf is made inside must allocate nothing new.
    const step = () =>
      scope(() => {
        const x = new Tensor(x0, [4], true);
        ops.sum(ops.relu(x)).backward();
        return x.grad!.data[0];
      });
    step();
    step();
    const before = scopeStats().misses;
    for (let i = 0; i < 10; i++) assert.equal(step(), 1);
    assert.equal(scopeStats().misses, before, "the leaf's gradient went back to the pool every step");
    const kept = scope(() => {
      const x = new Tensor(x0, [4], true);
      ops.sum(ops.relu(x)).backward();
      return x;
    });
    assert.deepEqual(Array.from(kept.grad!.data), [1, 0, 1, 0], "the returned leaf's gradient is still readable");
  });
});
