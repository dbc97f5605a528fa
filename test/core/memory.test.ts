/**
 * Training does not leak: after warm-up, 800 more training steps of a small
 * BN network leave the number of live tensor storages and the heap where
 * they were. Needs node --expose-gc (npm test passes it).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, liveBufferCount, nn, ops, optim, setBufferTracking, Tensor } from "../../src/index.js";
import { randn } from "./helpers.js";

/** Collect garbage and let FinalizationRegistry callbacks run, a few rounds. */
async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    assert.fail("globalThis.gc is undefined: run node with --expose-gc (node --expose-gc --test dist/test/core/)");
  }
  for (let i = 0; i < 6; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

describe("memory", () => {
  it("1,000 training steps of 20-32-BN-sigmoid-10 (batch 16, float32) grow neither live buffers (≤ +50 from step 200 to 1000) nor heapUsed (≤ +4 MB)", async () => {
    await settle(); // fails early, with instructions, without --expose-gc
    setBufferTracking(true);
    const g = new Generator(2015);
    const model = new nn.Sequential(
      new nn.Linear(20, 32, { bias: false, generator: g }),
      new nn.BatchNorm1d(32),
      new nn.Sigmoid(),
      new nn.Linear(32, 10, { generator: g }),
    );
    const sgd = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    // A fixed pool of batches, made before measuring, so the data itself is not counted as growth.
    const batches: [Tensor, number[]][] = Array.from({ length: 8 }, () => [
      randn([16, 20], g, { dtype: "float32" }),
      Array.from({ length: 16 }, () => g.randint(10)),
    ]);
    let firstLoss = NaN;
    let lastLoss = NaN;
    let buffersAt200 = 0;
    let heapAt200 = 0;
    for (let step = 1; step <= 1000; step++) {
      const [x, t] = batches[step % batches.length];
      sgd.zeroGrad();
      const loss = ops.crossEntropy(model.forward(x), t);
      loss.backward();
      sgd.step();
      if (step === 1) firstLoss = loss.item();
      if (step === 1000) lastLoss = loss.item();
      if (step === 200) {
        await settle();
        buffersAt200 = liveBufferCount();
        heapAt200 = process.memoryUsage().heapUsed;
      }
    }
    await settle();
    const buffersAt1000 = liveBufferCount();
    setBufferTracking(false);
    const heapAt1000 = process.memoryUsage().heapUsed;
    assert.ok(lastLoss < firstLoss, `training ran (loss ${firstLoss} → ${lastLoss})`);
    assert.ok(
      buffersAt1000 <= buffersAt200 + 50,
      `live buffers grew from ${buffersAt200} at step 200 to ${buffersAt1000} at step 1000 (slack 50)`,
    );
    const growthMB = (heapAt1000 - heapAt200) / 2 ** 20;
    assert.ok(growthMB <= 4, `heapUsed after gc grew by ${growthMB.toFixed(2)} MB from step 200 to step 1000 (limit 4 MB)`);
  });
});
