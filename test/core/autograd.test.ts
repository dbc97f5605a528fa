/**
 * The define-by-run graph: depth, accumulation, reuse, noGrad, graph freeing,
 * and seeded reproducibility.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { manualSeed, nn, noGrad, isGradEnabled, ops, scope, tensor, Tensor } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { bytesOf } from "./helpers.js";

describe("autograd", () => {
  it("a chain of 100,000 ops ((x + 1)·1, 50,000 times) backpropagates without a stack overflow, with d/dx = 1", () => {
    const x = tensor([0.5, -2], [2], { dtype: "float64", requiresGrad: true });
    let y = x;
    for (let i = 0; i < 50_000; i++) y = ops.mul(ops.add(y, 1), 1);
    ops.sum(y).backward();
    assert.deepEqual([...y.data], [50_000.5, 49_998]);
    assert.deepEqual([...x.grad!.data], [1, 1]);
  });

  it("gradients accumulate across two backward passes on a leaf (grad = 2·3x² after two passes of Σx³)", () => {
    const x = tensor([1, -2, 0.5], [3], { dtype: "float64", requiresGrad: true });
    const cube = () => ops.sum(ops.mul(ops.square(x), x));
    cube().backward();
    assertAllClose(x.grad!, tensor([3, 12, 0.75], [3], { dtype: "float64" }), { atol: 0, rtol: 1e-15 }, "after one pass");
    cube().backward();
    assertAllClose(x.grad!, tensor([6, 24, 1.5], [3], { dtype: "float64" }), { atol: 0, rtol: 1e-15 }, "after two passes");
  });

  it("a tensor used twice gets the sum of both gradients (d/dx [x·x + exp(x)] = 2x + eˣ; d/dx [x + x] = 2)", () => {
    const x = tensor([0.3, -1.1, 2], [3], { dtype: "float64", requiresGrad: true });
    ops.sum(ops.add(ops.mul(x, x), ops.exp(x))).backward();
    assertAllClose(x.grad!.data, [...x.data].map((v) => 2 * v + Math.exp(v)), { atol: 0, rtol: 1e-15 }, "x·x + exp(x)");
    const z = tensor([1, 2], [2], { dtype: "float64", requiresGrad: true });
    ops.sum(ops.add(z, z)).backward();
    assert.deepEqual([...z.grad!.data], [2, 2]);
  });

  it("a tensor used in two branches that meet later (diamond) gets both contributions: d/dx Σ (2x)·(x+1) = 4x + 2", () => {
    const x = tensor([1, -3], [2], { dtype: "float64", requiresGrad: true });
    const a = ops.mul(x, 2);
    const b = ops.add(x, 1);
    ops.sum(ops.mul(a, b)).backward();
    assert.deepEqual([...x.grad!.data], [6, -10]);
  });

  it("a view (reshape) used twice accumulates into the leaf without corrupting either branch", () => {
    const x = tensor([1, 2, 3, 4], [2, 2], { dtype: "float64", requiresGrad: true });
    const v = ops.reshape(x, [4]);
    ops.sum(ops.add(ops.mul(v, 3), ops.reshape(x, [4]))).backward();
    assert.deepEqual([...x.grad!.data], [4, 4, 4, 4]);
  });

  it("noGrad records nothing: the result has requiresGrad false and no gradFn, and backward throws a clear error", () => {
    const x = tensor([1, 2], [2], { dtype: "float64", requiresGrad: true });
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return ops.sum(ops.mul(x, x));
    });
    assert.equal(isGradEnabled(), true, "grad mode is restored after noGrad");
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradFn, null);
    assert.throws(() => y.backward(), /does not require grad.*noGrad/s);
    assert.equal(x.grad, null);
  });

  it("noGrad restores grad mode even when its function throws", () => {
    assert.throws(() =>
      noGrad(() => {
        throw new Error("boom");
      }),
    /boom/);
    assert.equal(isGradEnabled(), true);
  });

  it("backward twice through the same graph throws a message mentioning retainGraph; { retainGraph: true } allows it and accumulates", () => {
    const x = tensor([1, 2, 3], [3], { dtype: "float64", requiresGrad: true });
    const loss = ops.sum(ops.square(x));
    loss.backward();
    assert.throws(() => loss.backward(), /retainGraph/);
    assert.deepEqual([...x.grad!.data], [2, 4, 6], "the failed second pass wrote nothing");

    const w = tensor([1, 2, 3], [3], { dtype: "float64", requiresGrad: true });
    const loss2 = ops.sum(ops.square(w));
    loss2.backward(undefined, { retainGraph: true });
    loss2.backward();
    assert.deepEqual([...w.grad!.data], [4, 8, 12]);
  });

  it("backward without a gradient on a non-scalar output throws, asking for the output's gradient", () => {
    const x = tensor([1, 2], [2], { requiresGrad: true });
    assert.throws(() => ops.mul(x, 2).backward(), /one-element output.*\[2\]/s);
  });
});

describe("zeroGrad() and the gradient storage of a plain loop", () => {
  const setup = () => {
    const lin = new nn.Linear(3, 2);
    const x = tensor([[1, 2, 3], [-1, 0, 2]]);
    const step = () => ops.sum(lin.forward(x)).backward();
    return { lin, step };
  };

  it("after zeroGrad() the next backward pass's gradient takes the dropped one's storage: over 6 steps at most 2 storages (the dropped one and the pass's own, exchanged), with the same values as a fresh gradient", () => {
    const { lin, step } = setup();
    step();
    const first = lin.weight.grad!;
    const values = Array.from(first.data);
    const storages = new Set<unknown>([first.data]);
    for (let i = 0; i < 5; i++) {
      lin.zeroGrad();
      assert.equal(lin.weight.grad, null);
      step();
      storages.add(lin.weight.grad!.data);
      assert.deepEqual(Array.from(lin.weight.grad!.data), values, "Σ_n x_n for every row, as the first time");
    }
    assert.notEqual(lin.weight.grad, first, "a new gradient tensor");
    assert.ok(storages.size <= 2, `the weight's gradient had ${storages.size} storages over 6 steps`);
  });

  it("a dropped gradient throws when read afterwards (its memory holds the next gradient), saying how to keep it", () => {
    const { lin, step } = setup();
    step();
    const dropped = lin.weight.grad!;
    const kept = dropped.clone();
    lin.zeroGrad();
    assert.throws(() => dropped.data, /is a gradient that zeroGrad\(\) dropped.*clone\(\) a gradient before zeroGrad\(\), or use zeroGrad\(\{ setToNone: false \}\)/);
    assert.deepEqual(Array.from(kept.data), [0, 2, 5, 0, 2, 5]);
  });

  it("a gradient the user assigned is only dropped, never released or reused", () => {
    const { lin, step } = setup();
    const mine = tensor([[1, 1, 1], [1, 1, 1]]);
    lin.weight.grad = mine;
    lin.zeroGrad();
    assert.deepEqual(Array.from(mine.data), [1, 1, 1, 1, 1, 1]);
    step();
    assert.notEqual(lin.weight.grad!.data, mine.data);
    assert.deepEqual(Array.from(mine.data), [1, 1, 1, 1, 1, 1]);
  });

  it("x.grad = null drops the gradient as zeroGrad() does: the next backward pass's gradient takes its storage (at most 2 over 6 steps, same values), and the dropped tensor throws when read, saying why", () => {
    const { lin, step } = setup();
    step();
    const first = lin.weight.grad!;
    const values = Array.from(first.data);
    const storages = new Set<unknown>([first.data]);
    lin.weight.grad = null;
    assert.throws(() => first.data, /was dropped by assigning to \.grad \(e\.g\. x\.grad = null\).*clone\(\) a gradient before dropping it/);
    for (let i = 0; i < 5; i++) {
      lin.weight.grad = null;
      step();
      storages.add(lin.weight.grad!.data);
      assert.deepEqual(Array.from(lin.weight.grad!.data), values);
    }
    assert.ok(storages.size <= 2, `the weight's gradient had ${storages.size} storages over 6 steps`);
  });

  it("replacing a backward-made gradient by an assigned one keeps the old storage for the next backward pass, never the assigned tensor's", () => {
    const { lin, step } = setup();
    step();
    const storage = lin.weight.grad!.data;
    const mine = tensor([[1, 1, 1], [1, 1, 1]]);
    lin.weight.grad = mine;
    step(); // accumulates into the assigned gradient, as PyTorch does
    assert.deepEqual(Array.from(mine.data), [1, 3, 6, 1, 3, 6]);
    lin.weight.grad = null; // the assigned one is only forgotten
    assert.deepEqual(Array.from(mine.data), [1, 3, 6, 1, 3, 6]);
    step();
    assert.notEqual(lin.weight.grad!.data, mine.data, "never the assigned tensor's storage");
    assert.deepEqual(Array.from(mine.data), [1, 3, 6, 1, 3, 6]);
    assert.deepEqual(Array.from(lin.weight.grad!.data), [0, 2, 5, 0, 2, 5]);
    const seen = new Set<unknown>([storage, lin.weight.grad!.data]);
    for (let i = 0; i < 4; i++) {
      lin.weight.grad = null;
      step();
      seen.add(lin.weight.grad!.data);
    }
    assert.ok(seen.size <= 2, `the dropped storage was not taken up again: ${seen.size} storages`);
  });

  it("a leaf made inside scope() gets its gradient in the scope's memory: dropping it there keeps nothing for later", () => {
    const w = scope(() => {
      const v = tensor([1, 2], [2], { requiresGrad: true });
      ops.sum(ops.mul(v, v)).backward();
      const g = v.grad!;
      v.grad = null;
      assert.deepEqual(Array.from(g.data), [2, 4], "not released: its memory is the scope's, not the leaf's to reuse");
      return tensor([3, 4], [2], { requiresGrad: true });
    });
    ops.sum(ops.mul(w, w)).backward();
    assert.deepEqual(Array.from(w.grad!.data), [6, 8]);
  });

  it("zeroGrad({ setToNone: false }) keeps the gradient tensor, zero-filled, readable", () => {
    const { lin, step } = setup();
    step();
    const g = lin.weight.grad!;
    lin.zeroGrad({ setToNone: false });
    assert.equal(lin.weight.grad, g);
    assert.deepEqual(Array.from(g.data), [0, 0, 0, 0, 0, 0]);
  });
});

describe("seeded reproducibility", () => {
  const draw = (seed: number) => {
    manualSeed(seed);
    const lin = new nn.Linear(7, 5);
    const t = new Tensor(new Float64Array(64), [64]);
    nn.init.normal(t, { std: 0.3 });
    return { w: bytesOf(lin.weight), b: bytesOf(lin.bias!), n: bytesOf(t) };
  };

  it("manualSeed makes nn.Linear init and nn.init.normal bit-identical across two runs", () => {
    const a = draw(42);
    const b = draw(42);
    assert.ok(a.w.equals(b.w), "Linear weight");
    assert.ok(a.b.equals(b.b), "Linear bias");
    assert.ok(a.n.equals(b.n), "init.normal");
  });

  it("different seeds give different Linear weights and normal draws", () => {
    const a = draw(42);
    const b = draw(43);
    assert.ok(!a.w.equals(b.w), "Linear weight");
    assert.ok(!a.n.equals(b.n), "init.normal");
  });
});

describe("backward(gradient): the caller's gradient array is read, never written or adopted", () => {
  it("through a view op into a leaf, and into a sum of two paths, dy keeps its values and .grad is a copy", () => {
    const dy = new Float32Array([1, 2, 3, 4]);
    const x = new Tensor(new Float32Array([1, 2, 3, 4]), [4], true);
    // A view: the root gradient passes unchanged to the leaf, which must not adopt the caller's array.
    ops.reshape(x, [2, 2]).backward(dy);
    assert.deepEqual(Array.from(x.grad!.data), [1, 2, 3, 4]);
    assert.notEqual(x.grad!.data, dy, "the leaf's gradient is its own array");
    ops.reshape(x, [2, 2]).backward(dy); // accumulates into x.grad, not into dy
    assert.deepEqual(Array.from(x.grad!.data), [2, 4, 6, 8]);
    assert.deepEqual(Array.from(dy), [1, 2, 3, 4], "dy unchanged");
    // Two paths into one tensor: r's gradient starts as the caller's array (moved through the view), then gets a sum.
    const w = new Tensor(new Float32Array([1, 1, 1, 1]), [4], true);
    const r = ops.mul(w, 3);
    const v = ops.add(ops.reshape(r, [2, 2]), ops.reshape(r, [2, 2]));
    ops.reshape(v, [4]).backward(dy);
    assert.deepEqual(Array.from(w.grad!.data), [6, 12, 18, 24]);
    assert.deepEqual(Array.from(dy), [1, 2, 3, 4], "dy unchanged after a sum of two paths");
  });
});
