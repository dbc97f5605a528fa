/**
 * No path for a non-finite value into a model (issue 15, part 3): every
 * loadStateDict refuses null, non-numbers, non-finite values and negative
 * running variances naming the key; SGD.step() checks the updated values
 * and leaves parameters and momentum buffers untouched when any would be
 * non-finite; tensor() refuses non-numeric values.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, ops, optim, Tensor, tensor } from "../../src/index.js";
import { bytesOf, randn } from "./helpers.js";

const mlp = (seed: number) => {
  const g = new Generator(seed);
  return new nn.Sequential(new nn.Linear(4, 5, { generator: g }), new nn.BatchNorm1d(5), new nn.Sigmoid(), new nn.Linear(5, 3, { generator: g }));
};
const snapshot = (m: nn.Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, bytesOf(t)]));
const assertUnchanged = (m: nn.Module, before: Record<string, Buffer>) => {
  const after = snapshot(m);
  for (const k of Object.keys(before)) assert.ok(before[k].equals(after[k]), `'${k}' was written`);
};
const plainState = (m: nn.Module): Record<string, any> => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, Array.from(t.data)]));

describe("Module.loadStateDict refuses what would put a non-finite value into the model", () => {
  it("refuses null as the state dict with a clear error", () => {
    const m = mlp(1);
    assert.throws(() => m.loadStateDict(null as any), /^Error: loadStateDict: expected a state dict .*got null; nothing was loaded\./);
    assert.throws(() => m.loadStateDict(7 as any), /got number 7/);
  });

  it("refuses a null value, naming the key", () => {
    const m = mlp(1);
    const before = snapshot(m);
    const sd = plainState(m);
    sd["1.running_mean"] = null;
    assert.throws(() => m.loadStateDict(sd), /'1\.running_mean' must be a Tensor or an array of numbers; got null/);
    assertUnchanged(m, before);
  });

  it("refuses null inside an array (JSON's NaN), naming the key and index, and writes nothing", () => {
    const m = mlp(1);
    const before = snapshot(m);
    const sd = plainState(m);
    sd["0.weight"][3] = null;
    assert.throws(() => m.loadStateDict(sd), /'0\.weight' holds null at index 3 where a finite number belongs; nothing was loaded/);
    assertUnchanged(m, before);
  });

  it("refuses a string among the numbers", () => {
    const m = mlp(1);
    const sd = plainState(m);
    sd["3.bias"][0] = "0.5";
    assert.throws(() => m.loadStateDict(sd), /'3\.bias' holds a string \("0\.5"\) at index 0/);
  });

  it("refuses Infinity", () => {
    const m = mlp(1);
    const sd = plainState(m);
    sd["1.weight"][2] = -Infinity;
    assert.throws(() => m.loadStateDict(sd), /'1\.weight' holds a non-finite value \(-Infinity\) at index 2/);
  });

  it("refuses a negative running_var (evaluation would output NaN), naming the key", () => {
    const m = mlp(1);
    const before = snapshot(m);
    const sd = m.stateDict();
    sd["1.running_var"] = tensor([-1, -5, 1, 1, 1]);
    assert.throws(() => m.loadStateDict(sd), /'1\.running_var' holds -1 at index 0, but it cannot be negative/);
    assertUnchanged(m, before);
    const sd2 = m.stateDict();
    sd2["1.num_batches_tracked"] = tensor([-3], [], { dtype: "float64" });
    assert.throws(() => m.loadStateDict(sd2), /'1\.num_batches_tracked' holds -3/);
  });

  it("still accepts a running_var of zero and a valid state dict", () => {
    const m = mlp(1);
    const sd = m.stateDict();
    sd["1.running_var"] = tensor([0, 0, 1, 2, 3]);
    m.loadStateDict(sd);
    assert.deepEqual([...m.stateDict()["1.running_var"].data], [0, 0, 1, 2, 3]);
  });
});

describe("SGD.loadStateDict validates every entry", () => {
  const setup = () => {
    const m = mlp(2);
    return { m, sgd: new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9 }) };
  };

  it("refuses null in a momentum buffer (JSON's NaN), and the next step writes no NaN", () => {
    const { m, sgd } = setup();
    const n = m.parameters().length;
    const velocity: any[] = m.parameters().map(() => null);
    velocity[0] = Array.from({ length: 20 }, () => 1);
    velocity[0][0] = null;
    assert.throws(() => sgd.loadStateDict({ steps: 1, velocity }), /SGD\.loadStateDict: 'velocity\[0\]' \(momentum buffer 0\) holds null at index 0 where a finite number belongs; nothing was loaded/);
    assert.equal(sgd.stateDict().velocity.length, n);
    assert.ok(sgd.stateDict().velocity.every((v) => v === null), "nothing was loaded");
  });

  it("refuses the issue's { velocity: [[null, 1]] } naming the mismatch", () => {
    const p = tensor([1, 2], [2], { requiresGrad: true });
    const sgd = new optim.SGD([p], { lr: 0.1, momentum: 0.9 });
    assert.throws(() => sgd.loadStateDict({ velocity: [[null, 1]] } as any), /'steps' must be a whole number ≥ 0; got undefined/);
    assert.throws(() => sgd.loadStateDict({ steps: 0, velocity: [[null, 1]] } as any), /'velocity\[0\]' .* holds null at index 0/);
    p.grad = tensor([1, 1], [2]);
    sgd.step();
    assert.ok([...p.data].every(Number.isFinite));
  });

  it("refuses null, {} and non-finite entries with clear errors instead of TypeErrors", () => {
    const p = tensor([1, 2], [2], { requiresGrad: true });
    const sgd = new optim.SGD([p], { lr: 0.1, momentum: 0.9 });
    assert.throws(() => sgd.loadStateDict(null as any), /SGD\.loadStateDict: expected \{ steps, velocity \}; got null; nothing was loaded/);
    assert.throws(() => sgd.loadStateDict({} as any), /SGD\.loadStateDict: 'steps' must be a whole number ≥ 0; got undefined/);
    assert.throws(() => sgd.loadStateDict({ steps: 1 } as any), /'velocity' must be an array .*got undefined/);
    assert.throws(() => sgd.loadStateDict({ steps: -10, velocity: [null] }), /'steps' must be a whole number ≥ 0; got number -10/);
    assert.throws(() => sgd.loadStateDict({ steps: 1, velocity: [[1, Infinity]] }), /holds Infinity at index 1/);
    assert.throws(() => sgd.loadStateDict({ steps: 1, velocity: [[1, 2, 3]] }), /'velocity\[0\]' \(momentum buffer 0\) has 3 values, the parameter 2/);
    assert.throws(() => sgd.loadStateDict({ steps: 1, velocity: ["ab" as any] }), /'velocity\[0\]' must be an array of numbers or null; got a string/);
  });

  it("loads a valid state (round trip through JSON) and continues to the same bits", () => {
    const run = (reload: boolean) => {
      const m = mlp(3);
      let sgd = new optim.SGD(m.parameters(), { lr: 0.2, momentum: 0.9 });
      const g = new Generator(9);
      for (let i = 0; i < 4; i++) {
        if (reload && i === 2) {
          const saved = JSON.parse(JSON.stringify(sgd.stateDict()));
          sgd = new optim.SGD(m.parameters(), { lr: 0.2, momentum: 0.9 });
          sgd.loadStateDict(saved);
        }
        sgd.zeroGrad();
        ops.crossEntropy(m.forward(randn([8, 4], g, { dtype: "float32" })), [0, 1, 2, 0, 1, 2, 0, 1]).backward();
        sgd.step();
      }
      return Array.from(m.stateDict()["3.weight"].data);
    };
    assert.deepEqual(run(true), run(false));
  });
});

describe("Adam.loadStateDict refuses null and non-numbers", () => {
  it("names the entry", () => {
    const p = tensor([1, 2], [2], { requiresGrad: true });
    const adam = new optim.Adam([p]);
    assert.throws(() => adam.loadStateDict(null as any), /Adam\.loadStateDict: expected .*got null; nothing was loaded/);
    assert.throws(() => adam.loadStateDict({} as any), /expAvg must be an array with one entry per parameter \(1\); got undefined/);
    const ok = { steps: [1], expAvg: [[0, 0]], expAvgSq: [[0, 0]], maxExpAvgSq: [null] };
    assert.throws(() => adam.loadStateDict({ ...ok, expAvg: [[null, 0]] } as any), /expAvg\[0\] holds null at index 0/);
    assert.throws(() => adam.loadStateDict({ ...ok, expAvgSq: [[-1, 0]] }), /expAvgSq\[0\] holds a negative value/);
    adam.loadStateDict(ok);
  });
});

describe("SGD.step() checks the updated values, not only the gradients", () => {
  const assertSame = (a: Tensor, before: number[]) => assert.deepEqual(Array.from(a.data), before);

  it("a finite gradient with an overflowing update (lr 1e38) leaves the parameters unchanged and throws", () => {
    const p = tensor([1, -2, 3], [3], { requiresGrad: true });
    const q = tensor([0.5], [1], { requiresGrad: true });
    const sgd = new optim.SGD([q, p], { lr: 1e38 });
    q.grad = tensor([1], [1]);
    p.grad = tensor([1e10, 1, 1], [3]);
    assert.throws(() => sgd.step(), /SGD\.step\(\): the update would make parameter 1 \(shape \[3\]\) hold -Infinity at index 0 although its gradient is finite \(lr 1e\+38.*No parameter or buffer was changed/);
    assertSame(p, [1, -2, 3]);
    assertSame(q, [0.5]); // updated before parameter 1 failed: put back
    assert.equal(sgd.stateDict().steps, 0);
  });

  it("weight decay that overflows is caught the same way", () => {
    const p = tensor([3e38, 1], [2], { requiresGrad: true });
    const sgd = new optim.SGD([p], { lr: 1, weightDecay: 10 });
    p.grad = tensor([0, 0], [2]);
    assert.throws(() => sgd.step(), /would make parameter 0 .* hold -?Infinity at index 0 .*weight decay 10/);
    assert.deepEqual(Array.from(p.data), [Math.fround(3e38), 1]);
  });

  it("momentum buffers are put back too (an overflow in the buffer on a later step)", () => {
    const p = tensor([0, 0], [2], { requiresGrad: true });
    const sgd = new optim.SGD([p], { lr: 0, momentum: 1 });
    p.grad = tensor([3e38, 1], [2]);
    sgd.step(); // v = g
    const vBefore = sgd.stateDict().velocity[0];
    p.grad = tensor([3e38, 1], [2]);
    // v = 3e38 + 3e38 overflows float32 to Infinity, and p − 0·Infinity is NaN: both kernels compute in float32
    // (the reference rounds every operation), so both name the parameter's NaN first.
    assert.throws(() => sgd.step(), /would make parameter 0 \(shape \[2\]\) hold NaN at index 0/);
    assert.deepEqual(sgd.stateDict().velocity[0], vBefore);
    assert.deepEqual(Array.from(p.data), [0, 0]);
    assert.equal(sgd.stateDict().steps, 1);
  });

  it("an intermediate that overflows float32 but not float64 (wd·p + g with a tiny lr) is refused on every backend, naming the same entry", () => {
    // float32: d = 0 + 10·3e38 = Infinity, so p − 1e-10·d = −Infinity; in float64 d = 3e39 and p − 3e29 would be finite.
    const p = tensor([1, 3e38], [2], { requiresGrad: true });
    const sgd = new optim.SGD([p], { lr: 1e-10, weightDecay: 10 });
    p.grad = tensor([0, 0], [2]);
    assert.throws(() => sgd.step(), /would make parameter 0 \(shape \[2\]\) hold -Infinity at index 1 /);
    assert.deepEqual(Array.from(p.data), [1, Math.fround(3e38)]);
  });

  it("a first step that fails leaves no momentum buffer behind", () => {
    const p = tensor([1], [1], { requiresGrad: true });
    const sgd = new optim.SGD([p], { lr: 1e38, momentum: 0.9 });
    p.grad = tensor([1e10], [1]);
    assert.throws(() => sgd.step(), /would make parameter 0/);
    assert.deepEqual(sgd.stateDict().velocity, [null]);
    p.grad = tensor([1], [1]);
    sgd.lr = 0.5;
    sgd.step();
    assert.deepEqual(Array.from(p.data), [0.5]);
  });
});

describe("tensor() refuses non-numeric values", () => {
  it("names the value and where it is", () => {
    assert.throws(() => tensor(["a", "b"] as any), /tensor\(\): values must be numbers; got a string \("a"\) at flat index 0/);
    assert.throws(() => tensor([[1, 2], [3, null]] as any), /got null at flat index 3/);
    assert.throws(() => tensor([1, undefined] as any), /got undefined at flat index 1/);
    assert.throws(() => tensor("ab" as any), /values must be numbers; got a string/);
    assert.equal(tensor([NaN]).data[0], NaN); // NaN is a number: allowed, as in PyTorch
  });
});
