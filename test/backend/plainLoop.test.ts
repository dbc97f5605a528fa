/**
 * A plain PyTorch-style loop — zeroGrad, forward, loss, backward, step,
 * without scope() — on whatever backend the suite selects: 10,000 steps,
 * one synchronous stretch from step 1,000 to step 10,000 (no turn of the
 * event loop, so no finalizer runs in between), keep the live tensor
 * buffers, the JavaScript heap and the wasm backend's linear memory flat.
 * Needs node --expose-gc (npm test passes it).
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { backendBytes, settle } from "../core/helpers.js";
import { Generator, liveBufferCount, nn, optim, setBufferTracking, Tensor } from "../../src/index.js";

/** The loop, with `inputGrad`: each input requires grad and the loop drops its gradient with `x.grad = null` before the step. */
async function plainLoop(inputGrad: boolean): Promise<void> {
  await settle();
  setBufferTracking(true);
  const g = new Generator(9);
  const model = new nn.Sequential(
    new nn.Linear(20, 32, { bias: false, generator: g }),
    new nn.BatchNorm1d(32),
    new nn.Sigmoid(),
    new nn.Linear(32, 10, { generator: g }),
  );
  const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const lossFn = new nn.CrossEntropyLoss();
  const batches = Array.from({ length: 8 }, (_, b) => {
    const x = new Float32Array(16 * 20);
    for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37 + b) + ((i * 7 + b) % 3) * 0.1;
    return { x: new Tensor(x, [16, 20], inputGrad), y: Int32Array.from({ length: 16 }, (_, i) => (i * 3 + b) % 10) };
  });
  const step = (i: number): number => {
    const { x, y } = batches[i % batches.length];
    opt.zeroGrad();
    if (inputGrad) x.grad = null;
    const loss = lossFn.forward(model.forward(x), y);
    loss.backward();
    opt.step();
    return i % 1000 === 0 ? loss.item() : NaN;
  };
  const first = step(0);
  for (let i = 1; i < 1000; i++) step(i);
  await settle();
  const at1000 = { buffers: liveBufferCount(), heap: process.memoryUsage().heapUsed, backend: backendBytes() };
  let last = NaN;
  for (let i = 1000; i < 10_000; i++) {
    const l = step(i);
    if (!Number.isNaN(l)) last = l;
  }
  const backendBeforeGc = backendBytes();
  await settle();
  const at10000 = { buffers: liveBufferCount(), heap: process.memoryUsage().heapUsed, backend: backendBytes() };
  setBufferTracking(false);
  assert.ok(last < first, `training ran (loss ${first} → ${last})`);
  assert.ok(at10000.buffers <= at1000.buffers + 50, `live buffers grew from ${at1000.buffers} at step 1,000 to ${at10000.buffers} at step 10,000`);
  const heapGrowthMB = (at10000.heap - at1000.heap) / 2 ** 20;
  assert.ok(heapGrowthMB <= 4, `heapUsed after gc grew by ${heapGrowthMB.toFixed(2)} MB from step 1,000 to step 10,000 (limit 4 MB)`);
  // Backend memory: flat even before the collector runs (a synchronous loop must not grow it).
  assert.ok(
    backendBeforeGc <= at1000.backend + 2 ** 20,
    `the backend's memory in use grew from ${at1000.backend} to ${backendBeforeGc} bytes over 9,000 synchronous steps (limit +1 MiB)`,
  );
  assert.ok(at10000.backend <= at1000.backend + 2 ** 20, `the backend's memory in use grew from ${at1000.backend} to ${at10000.backend} bytes`);
}

it("10,000 plain-loop steps (no scope) of 20-32-BN-sigmoid-10, batch 16: live buffers, heap and backend memory stay flat from step 1,000", () => plainLoop(false));

it("the same with inputs that require grad, whose gradient the loop drops with x.grad = null each step (as bench/defaultPath.ts's conv loop): flat too", () => plainLoop(true));

it("x.grad = null each step: the input's gradient takes the dropped one's storage (at most 2 storages, exchanged, over 5 steps)", () => {
  const lin = new nn.Linear(4, 3, { generator: new Generator(1) });
  const x = new Tensor(Float32Array.from({ length: 8 }, (_, i) => i / 8), [2, 4], true);
  const storages = new Set<unknown>();
  for (let i = 0; i < 5; i++) {
    x.grad = null;
    lin.forward(x).backward(new Float32Array(6).fill(1));
    storages.add(x.grad!.data);
  }
  assert.ok(storages.size <= 2, `the input's gradient was given ${storages.size} storages over 5 steps`);
});

it("a gradient of 4,096 values or more is exchanged for the dropped one (no copy): its storage alternates between two buffers; a shorter one is copied into the dropped one's storage", () => {
  const lin = new nn.Linear(64, 128, { generator: new Generator(2) }); // weight: 8,192 values; bias: 128
  const x = new Tensor(Float32Array.from({ length: 4 * 64 }, (_, i) => Math.sin(i)), [4, 64]);
  const weights: unknown[] = [];
  const biases = new Set<unknown>();
  let first: number[] = [];
  for (let i = 0; i < 6; i++) {
    lin.zeroGrad();
    lin.forward(x).backward(new Float32Array(4 * 128).fill(0.5));
    weights.push(lin.weight.grad!.data);
    biases.add(lin.bias!.grad!.data);
    if (i === 0) first = Array.from(lin.weight.grad!.data);
    else assert.deepEqual(Array.from(lin.weight.grad!.data), first, `step ${i}: the same gradient as the first`);
  }
  assert.equal(new Set(weights).size, 2, "the weight's gradient alternates between two storages");
  for (let i = 2; i < weights.length; i++) assert.equal(weights[i], weights[i - 2], `step ${i} reuses the storage of step ${i - 2}`);
  assert.equal(biases.size, 1, "the bias's gradient is copied into one storage");
});
