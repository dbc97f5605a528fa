/**
 * Zero-copy tensor storage: with a shared linear memory, the float32 buffers
 * a training step allocates inside scope() live in the wasm module's memory
 * and the kernels use them in place. These tests prove that this changes
 * where the numbers are kept and nothing else: storage lands in linear
 * memory only inside scopes, a small convolutional network trains to
 * bit-identical parameters and running statistics with a shared memory
 * (zero-copy) and with a private one (every operand copied in and out), and
 * pooled blocks are given back by clearPool().
 */
import { after, describe, it } from "node:test";
import { describeOrSkip } from "../skip.js";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { clearPool, Generator, getBackend, nn, ops, optim, registerBackend, scope, setBackend, Tensor, zeros } from "../../src/index.js";
import { initWasmBackendSync, wasmSharedMemorySupported, type WasmBackend } from "../../src/backend/wasm/index.js";
import { storageAllocator } from "../../src/backend/storage.js";
import { randn } from "../core/helpers.js";

setFlagsFromString("--experimental-wasm-relaxed-simd");

const initial = getBackend().name;
after(() => setBackend(initial));

function select(b: WasmBackend): void {
  registerBackend(b);
  setBackend("wasm");
}

/** A small Inception-like network: conv → BN → ReLU → max-pool → 1×1 conv → BN → ReLU → global average → linear. */
function network(seed: number): nn.Sequential {
  const g = new Generator(seed);
  return new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1, bias: false, generator: g }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Conv2d(8, 12, 1, { bias: false, generator: g }),
    new nn.BatchNorm2d(12),
    new nn.ReLU(),
    new nn.GlobalAvgPool2d(),
    new nn.Flatten(),
    new nn.Linear(12, 5, { generator: g }),
  );
}

/** Train `steps` SGD steps inside scope() on the given build; returns every parameter and buffer, flattened. */
function train(b: WasmBackend, steps: number): Float32Array[] {
  select(b);
  const model = network(7);
  const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
  const lossFn = new nn.CrossEntropyLoss();
  const data = new Generator(11);
  const x = randn([6, 3, 8, 8], data, { dtype: "float32" });
  const y = new Int32Array([0, 1, 2, 3, 4, 0]);
  for (let s = 0; s < steps; s++) {
    scope(() => {
      opt.zeroGrad({ setToNone: false });
      const loss = lossFn.forward(model.forward(x), y);
      loss.backward();
      opt.step();
    });
  }
  const out: Float32Array[] = [];
  for (const t of Object.values(model.stateDict())) out.push(Float32Array.from(t.data));
  return out;
}

describeOrSkip("zero-copy tensor storage in a shared wasm memory", { skip: !wasmSharedMemorySupported() && "no shared WebAssembly memory here" }, () => {
  const shared = initWasmBackendSync({ sharedMemory: true });
  const privateMemory = initWasmBackendSync({ sharedMemory: false, relaxed: shared.variant === "relaxed-simd" });

  it("the shared build lends an allocator, the private one none", () => {
    assert.equal(shared.sharedMemory, true);
    assert.ok(shared.storage !== undefined);
    assert.equal(privateMemory.sharedMemory, false);
    assert.equal(privateMemory.storage, undefined);
    select(shared);
    assert.equal(storageAllocator(), shared.storage);
    setBackend("reference");
    assert.equal(storageAllocator(), null, "the reference backend computes on ordinary arrays");
  });

  it("storage lands in linear memory inside scope() only", () => {
    select(shared);
    const outside = zeros([4, 5]);
    assert.equal(shared.storage!.owns(outside.data), false);
    const [inScope, values] = scope(() => {
      const t = zeros([4, 5]);
      const r = ops.relu(new Tensor(new Float32Array([1, -2, 3]), [3]));
      return [shared.storage!.owns(t.data) && shared.storage!.owns(r.data), Array.from(r.data)] as const;
    });
    assert.equal(inScope, true);
    assert.deepEqual(values, [1, 0, 3]);
  });

  it("the buffer pool hands a backend only buffers in its own memory (another backend's would be copied in and out)", () => {
    const other = initWasmBackendSync({ sharedMemory: true });
    select(shared);
    scope(() => zeros([123, 45])); // a buffer in shared's memory goes to the pool
    select(other);
    const owner = scope(() => {
      const t = zeros([123, 45]);
      return [other.storage!.owns(t.data), shared.storage!.owns(t.data)];
    });
    assert.deepEqual(owner, [true, false]);
    select(shared);
    assert.equal(scope(() => shared.storage!.owns(zeros([123, 45]).data)), true, "and the first backend gets its own back");
  });

  it("a conv + BN network trains to the same bits with zero-copy storage as with every operand copied", () => {
    const a = train(shared, 15);
    const b = train(privateMemory, 15);
    const start = (() => {
      setBackend("reference");
      return Object.values(network(7).stateDict()).map((t) => Float32Array.from(t.data));
    })();
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.deepEqual(a[i], b[i], `state entry ${i}`);
    // And training did something: the first convolution's weights moved.
    assert.notDeepEqual(a[0], start[0]);
  });

  it("a synchronous loop whose zeroGrad() drops the gradients every step keeps linear memory bounded, and trains as with a private memory", () => {
    // Each step's gradients escape the scope (314 KB for the 784×100 weight); finalizers cannot run inside
    // this loop, so without the allocator's budget for long-lived storage 400 steps would hold 125 MB.
    const run = (b: WasmBackend) => {
      select(b);
      const g = new Generator(5);
      const model = new nn.Sequential(new nn.Linear(784, 100, { generator: g }), new nn.Sigmoid(), new nn.Linear(100, 10, { generator: g }));
      const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
      const lossFn = new nn.CrossEntropyLoss();
      const x = randn([8, 784], new Generator(6), { dtype: "float32" });
      const y = new Int32Array([0, 1, 2, 3, 4, 5, 6, 7]);
      let peak = 0;
      for (let s = 0; s < 400; s++) {
        scope(() => {
          opt.zeroGrad(); // drops the gradients: the next backward pass makes new ones
          lossFn.forward(model.forward(x), y).backward();
          opt.step();
        });
        if (b.sharedMemory) peak = Math.max(peak, b.linearMemoryBytesInUse());
      }
      return { state: Object.values(model.stateDict()).map((t) => Float32Array.from(t.data)), peak };
    };
    const a = run(shared);
    const b = run(privateMemory);
    assert.ok(a.peak < 96 * 2 ** 20, `linear memory in use peaked at ${(a.peak / 2 ** 20).toFixed(1)} MiB`);
    for (let i = 0; i < a.state.length; i++) assert.deepEqual(a.state[i], b.state[i], `state entry ${i}`);
  });

  it("outside any scope, a module's parameters, their gradients and the optimizer's buffers are made in linear memory, and a plain loop reuses the gradients' storage", () => {
    select(shared);
    const g = new Generator(5);
    const model = new nn.Sequential(new nn.Linear(784, 100, { generator: g }), new nn.BatchNorm1d(100), new nn.Sigmoid(), new nn.Linear(100, 10, { generator: g }));
    const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const lossFn = new nn.CrossEntropyLoss();
    const x = randn([8, 784], new Generator(6), { dtype: "float32" });
    const y = new Int32Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const step = () => {
      opt.zeroGrad();
      lossFn.forward(model.forward(x), y).backward();
      opt.step();
    };
    const params = model.parameters();
    assert.ok(params.every((p) => shared.storage!.owns(p.data)), "parameters");
    step();
    assert.ok(params.every((p) => shared.storage!.owns(p.grad!.data)), "gradients");
    // Step 2 fills the backward pass's pool (step 1's weight gradients stayed as the gradients) and makes the
    // optimizer's second set of momentum buffers (see SGD.step); from then on nothing new.
    step();
    const grads = params.map((p) => p.grad!.data);
    const data = params.map((p) => p.data);
    const before = shared.linearMemoryBytesInUse();
    for (let s = 0; s < 20; s++) step();
    params.forEach((p, i) => {
      assert.equal(p.data, data[i], `parameter ${i} keeps its storage`);
      assert.equal(p.grad!.data, grads[i], `gradient ${i} reuses its storage`);
    });
    assert.ok(opt.stateDict().velocity.every((v) => v !== null));
    assert.equal(shared.linearMemoryBytesInUse(), before, "20 more steps take no linear memory");
  });

  it("tensors returned from the outermost scope stay valid, in linear memory within the budget and copied out past it", () => {
    const fresh = initWasmBackendSync({ sharedMemory: true }); // its own memory and budget, untouched by the tests before
    select(fresh);
    const kept: Tensor[] = [];
    for (let i = 0; i < 40; i++) {
      // 4 MiB each: 160 MiB in all, well past the 64 MiB budget.
      kept.push(scope(() => ops.relu(new Tensor(new Float32Array(2 ** 20).fill(i), [2 ** 20]))));
    }
    const inMemory = kept.filter((t) => fresh.storage!.owns(t.data)).length;
    assert.ok(inMemory >= 1 && inMemory < 40, `${inMemory} of 40 returned tensors stayed in linear memory`);
    kept.forEach((t, i) => {
      assert.equal(t.data[0], i);
      assert.equal(t.data[2 ** 20 - 1], i);
    });
    assert.ok(fresh.linearMemoryBytesInUse() < 96 * 2 ** 20, `${(fresh.linearMemoryBytesInUse() / 2 ** 20).toFixed(1)} MiB in use`);
  });

  it("clearPool() gives the pooled blocks of linear memory back", () => {
    select(shared);
    clearPool();
    const before = shared.linearMemoryBytesInUse();
    scope(() => {
      zeros([1000]);
      zeros([64, 64]);
    });
    const pooled = shared.linearMemoryBytesInUse();
    assert.ok(pooled >= before + 4000 + 64 * 64 * 4, `pooled ${pooled} bytes, before ${before}`);
    clearPool();
    assert.equal(shared.linearMemoryBytesInUse(), before);
  });
});
