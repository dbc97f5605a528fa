/**
 * Activation groups (src/tensor/activationGroup.ts): outside scope(), a
 * Sequential keeps the activations between its own layers in the backend's
 * memory and recycles them once nothing can read them. What these tests
 * prove: a plain loop trains to the same bits as the layers run one by one
 * (no recycled memory is ever read); an intermediate reached through the
 * graph is readable until the backward pass and throws after it; the graph
 * cannot be run twice, except with retainGraph; the output survives when it
 * is a view of an intermediate (Flatten last); a user's own layer keeps its
 * input intact; a pass without a graph recycles at once; forward passes that
 * never see a backward pass hold a bounded amount of memory, which comes
 * back once they are collected. On a backend without memory of its own (the
 * reference backend) the same assertions hold with nothing recycled.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, nn, noGrad, ops, optim, Tensor } from "../../src/index.js";
import { storageAllocator } from "../../src/backend/storage.js";
import { PENDING_BUDGET_BYTES } from "../../src/tensor/activationGroup.js";
import { backendBytes, randn, settle } from "./helpers.js";

const recycles = () => storageAllocator() !== null;

function layers(seed: number): nn.Module[] {
  const g = new Generator(seed);
  return [
    new nn.Linear(12, 24, { bias: false, generator: g }),
    new nn.BatchNorm1d(24),
    new nn.Sigmoid(),
    new nn.Linear(24, 24, { generator: g }),
    new nn.ReLU(),
    new nn.Linear(24, 5, { generator: g }),
  ];
}

/** Runs the modules one after another from user code: every activation an ordinary tensor. */
function oneByOne(ms: nn.Module[], x: Tensor): Tensor {
  return ms.reduce((h, m) => m.forward(h), x);
}

/** A Linear that keeps its last input, as a user's layer may. */
class KeepingLinear extends nn.Linear {
  kept: Tensor | null = null;
  override forward(x: Tensor): Tensor {
    this.kept = x;
    return super.forward(x);
  }
}

describe("activation groups: a plain loop's intermediates in the backend's memory", () => {
  it("a plain loop over a Sequential trains to the same bits as the same layers called one by one, step after step", () => {
    const a = layers(1);
    const b = layers(1);
    const seq = new nn.Sequential(...a);
    const optA = new optim.SGD(seq.parameters(), { lr: 0.1, momentum: 0.9 });
    const optB = new optim.SGD(b.flatMap((m) => m.parameters()), { lr: 0.1, momentum: 0.9 });
    const lossFn = new nn.CrossEntropyLoss();
    const g = new Generator(3);
    for (let step = 0; step < 12; step++) {
      const x = randn([16, 12], g, { dtype: "float32" });
      const y = Int32Array.from({ length: 16 }, (_, i) => (i + step) % 5);
      optA.zeroGrad();
      optB.zeroGrad();
      const outA = seq.forward(x);
      const outB = oneByOne(b, x);
      assert.deepEqual(outA.data, outB.data, `step ${step}: outputs`);
      lossFn.forward(outA, y).backward();
      lossFn.forward(outB, y).backward();
      optA.step();
      optB.step();
    }
    const pa = seq.parameters();
    const pb = b.flatMap((m) => m.parameters());
    for (let i = 0; i < pa.length; i++) assert.deepEqual(pa[i].data, pb[i].data, `parameter ${i} after 12 steps`);
  });

  it("a large input on the heap, staged once into the backend's memory for the first layer's forward and ∂ℓ/∂W: the same gradients as without (Linear and Conv2d)", () => {
    const g = new Generator(14);
    const cases: [string, () => nn.Module[], number[]][] = [
      ["Linear", () => [new nn.Linear(100, 32, { generator: new Generator(1) }), new nn.ReLU(), new nn.Linear(32, 4, { generator: new Generator(2) })], [64, 100]],
      ["Conv2d", () => [new nn.Conv2d(3, 4, 3, { padding: 1, generator: new Generator(3) }), new nn.ReLU(), new nn.Flatten()], [8, 3, 16, 16]],
    ];
    for (const [label, make, shape] of cases) {
      const x = randn(shape, g, { dtype: "float32" }); // 6,400 and 6,144 values: staged
      const a = make();
      const b = make();
      ops.sum(new nn.Sequential(...a).forward(x)).backward();
      ops.sum(oneByOne(b, x)).backward();
      const pa = a.flatMap((m) => m.parameters());
      const pb = b.flatMap((m) => m.parameters());
      for (let i = 0; i < pa.length; i++) assert.deepEqual(pa[i].grad!.data, pb[i].grad!.data, `${label}: gradient of parameter ${i}`);
    }
  });

  it("an intermediate reached through the graph is readable until backward() and throws after it; a second backward() is refused", () => {
    const ms = layers(2);
    const seq = new nn.Sequential(...ms);
    const x = randn([8, 12], new Generator(4), { dtype: "float32" });
    const out = seq.forward(x);
    // The last Linear's input: the ReLU's output, an intermediate.
    const h = out.gradFn!.inputs[0];
    const expected = oneByOne(ms.slice(0, 5), x).data.slice();
    assert.deepEqual(h.data, expected, "the intermediate holds the ReLU's output before backward()");
    const loss = ops.sum(out);
    loss.backward();
    if (recycles()) assert.throws(() => h.data, /intermediate activation of a forward pass outside scope\(\).*recycled/);
    else assert.deepEqual(h.data, expected, "without backend memory nothing is recycled");
    assert.throws(() => loss.backward(), /already freed/);
  });

  it("with retainGraph the intermediates live on, and a second backward pass adds the same gradient again", () => {
    const seq = new nn.Sequential(...layers(5));
    const x = randn([8, 12], new Generator(6), { dtype: "float32" });
    const out = seq.forward(x);
    const h = out.gradFn!.inputs[0];
    const before = h.data.slice();
    const loss = ops.sum(out);
    loss.backward(undefined, { retainGraph: true });
    const w = seq.parameters()[0];
    const once = w.grad!.data.slice();
    assert.deepEqual(h.data, before, "still readable after a retaining backward pass");
    loss.backward();
    assert.deepEqual(
      w.grad!.data,
      once.map((v) => Math.fround(v + v)),
      "the second pass adds the same gradient (read from intact activations)",
    );
  });

  it("an output that is a view of an intermediate (Flatten last) stays valid after backward() and through later steps", () => {
    const g = new Generator(7);
    const seq = new nn.Sequential(new nn.Conv2d(2, 3, 3, { padding: 1, generator: g }), new nn.ReLU(), new nn.Flatten());
    const opt = new optim.SGD(seq.parameters(), { lr: 0.05 });
    const x = randn([4, 2, 5, 5], g, { dtype: "float32" });
    const out = seq.forward(x);
    const copy = out.data.slice();
    ops.sum(out).backward();
    opt.step();
    for (let i = 0; i < 5; i++) {
      opt.zeroGrad();
      ops.sum(seq.forward(x)).backward();
      opt.step();
    }
    assert.deepEqual(out.data, copy, "the first output still holds its values");
  });

  it("a user's own layer keeps an intact input: what it is handed is no intermediate of the group", () => {
    const g = new Generator(8);
    const keeping = new KeepingLinear(24, 24, { generator: g });
    const seq = new nn.Sequential(new nn.Linear(12, 24, { generator: g }), new nn.ReLU(), keeping, new nn.ReLU(), new nn.Linear(24, 5, { generator: g }));
    const opt = new optim.SGD(seq.parameters(), { lr: 0.05 });
    const x = randn([8, 12], g, { dtype: "float32" });
    ops.sum(seq.forward(x)).backward();
    const kept = keeping.kept!;
    const copy = kept.data.slice();
    for (let i = 0; i < 5; i++) {
      opt.zeroGrad();
      ops.sum(seq.forward(randn([8, 12], g, { dtype: "float32" }))).backward();
      opt.step();
    }
    assert.deepEqual(kept.data, copy, "the input the user's layer kept is unchanged after later steps");
  });

  it("layers frozen up to the last: the backward pass through the output still recycles the intermediates (memory flat over a synchronous loop)", () => {
    const g = new Generator(12);
    const frozen = new nn.Linear(32, 64, { generator: g });
    for (const p of frozen.parameters()) p.requiresGrad = false;
    const seq = new nn.Sequential(frozen, new nn.ReLU(), new nn.Linear(64, 4, { generator: g }));
    const opt = new optim.SGD(seq.parameters().filter((p) => p.requiresGrad), { lr: 0.01 });
    const x = randn([16, 32], g, { dtype: "float32" });
    const step = () => {
      opt.zeroGrad();
      ops.sum(seq.forward(x)).backward();
      opt.step();
    };
    for (let i = 0; i < 20; i++) step();
    const before = backendBytes();
    for (let i = 0; i < 2000; i++) step(); // 8 KiB of intermediates a step: 16 MiB if none were recycled
    assert.ok(backendBytes() <= before + 2 ** 20, `the backend's memory grew from ${before} to ${backendBytes()} bytes over 2,000 steps`);
  });

  it("a user's layer after built-in ones: their activations stay ordinary tensors, so a graph the user's layer keeps can be back-propagated later", () => {
    /** Keeps its input and returns what depends on its own parameter only: the output's backward pass never reaches the input's graph. */
    class Stash extends nn.Module {
      kept: Tensor | null = null;
      readonly p = new Tensor(new Float32Array([1, 2, 3]), [3], true);
      override forward(x: Tensor): Tensor {
        this.kept = x;
        return ops.mul(this.p, 2);
      }
    }
    const run = (later: boolean) => {
      const g = new Generator(13);
      const stash = new Stash();
      const seq = new nn.Sequential(new nn.Linear(12, 24, { generator: g }), new nn.ReLU(), stash);
      const x = randn([8, 12], g, { dtype: "float32" });
      ops.sum(seq.forward(x)).backward();
      const kept = stash.kept!;
      if (later) for (let i = 0; i < 3; i++) ops.sum(seq.forward(randn([8, 12], g, { dtype: "float32" }))).backward(); // reuse pooled memory
      ops.sum(kept).backward(); // the Linear → ReLU graph the user's layer kept
      return seq.parameters()[0].grad!.data.slice();
    };
    assert.deepEqual(run(true), run(false), "the kept graph gives the same gradient after later passes (its activations were not recycled)");
  });

  it("a forward pass that throws midway (a layer's shape error) gives its intermediates back: the backend's memory stays flat over many such errors", () => {
    const g = new Generator(15);
    // The last Linear expects 20 features but gets 24: it throws after the first layers' outputs were made.
    const seq = new nn.Sequential(new nn.Linear(12, 24, { generator: g }), new nn.ReLU(), new nn.Linear(24, 24, { generator: g }), new nn.ReLU(), new nn.Linear(20, 2, { generator: g }));
    const x = randn([256, 12], g, { dtype: "float32" });
    assert.throws(() => seq.forward(x), /expected input of shape \[N, 20\]/);
    const before = backendBytes();
    for (let i = 0; i < 200; i++) assert.throws(() => seq.forward(x)); // 96 KiB of intermediates a pass: ~19 MiB if none came back
    assert.ok(backendBytes() <= before + 2 ** 20, `the backend's memory grew from ${before} to ${backendBytes()} bytes over 200 failed passes`);
  });

  it("a pass without a graph (noGrad) recycles its intermediates at once: the backend's memory stays flat over many passes", () => {
    const seq = new nn.Sequential(...layers(9));
    const x = randn([64, 12], new Generator(10), { dtype: "float32" });
    const ref = noGrad(() => seq.forward(x)).data.slice();
    const before = backendBytes();
    for (let i = 0; i < 2000; i++) {
      const out = noGrad(() => seq.forward(x));
      if (i % 500 === 0) assert.deepEqual(out.data, ref, `pass ${i}: the same output`);
    }
    assert.ok(backendBytes() <= before + 2 ** 20, `the backend's memory grew from ${before} to ${backendBytes()} bytes over 2,000 passes`);
  });

  it("forward passes never followed by a backward pass hold at most the budget, and give it back once collected", async () => {
    const g = new Generator(11);
    // Intermediates of 4 × 16,384 floats (256 KiB): the budget is reached after ~256 passes.
    const seq = new nn.Sequential(new nn.Linear(8, 16384, { generator: g }), new nn.ReLU(), new nn.Linear(16384, 2, { generator: g }));
    const x = randn([4, 8], g, { dtype: "float32" });
    await settle();
    const before = backendBytes();
    for (let i = 0; i < 400; i++) seq.forward(x); // graphs built, never back-propagated, dropped
    const grown = backendBytes() - before;
    if (recycles()) assert.ok(grown <= PENDING_BUDGET_BYTES + 2 * 2 ** 20, `the backend's memory grew by ${grown} bytes (budget ${PENDING_BUDGET_BYTES})`);
    await settle();
    // Collected: the groups are back in the pool, so the same passes again allocate nothing new.
    const afterGc = backendBytes();
    for (let i = 0; i < 200; i++) seq.forward(x);
    assert.ok(backendBytes() <= afterGc + 2 ** 20, `passes after collection reused the pool: ${afterGc} → ${backendBytes()} bytes`);
  });
});
