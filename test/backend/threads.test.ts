/**
 * Multi-core wasm kernels: GEMM, convolution and SGD's checked step split
 * between worker threads over the shared linear memory. What these tests prove: the split
 * covers every row and column exactly once on tile boundaries, and a
 * product, a convolution, its gradients and a whole training run have the
 * same bits on 2 and 3 threads as on 1 (the shares are cut so that no
 * element's sum changes order) — on awkward sizes (1, 3, 17, 100, 784,
 * non-multiples of the 4×8 tile); and misuse gets a clear error.
 */
import { after, before, describe, it } from "node:test";
import { describeOrSkip } from "../skip.js";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { Generator, getBackend, nn, optim, registerBackend, scope, setBackend } from "../../src/index.js";
import type { Window2d } from "../../src/backend/index.js";
import { initWasmBackendSync, wasmSharedMemorySupported, type WasmBackend } from "../../src/backend/wasm/index.js";
import { splitRange } from "../../src/backend/wasm/threads.js";
import { nodeThreadSpawner, startWasmThreads } from "../../src/node/wasmThreads.js";
import { randn } from "../core/helpers.js";

setFlagsFromString("--experimental-wasm-relaxed-simd");

const initial = getBackend().name;
after(() => setBackend(initial));

function random(n: number, seed: number): Float32Array {
  const g = new Generator(seed);
  return randn([n], g, { dtype: "float32" }).data as Float32Array;
}

/** Runs `f` on the backend split between `threads` threads (every kernel, however small). */
async function withThreads<T>(b: WasmBackend, threads: number, f: () => T): Promise<T> {
  await b.startThreads(threads, nodeThreadSpawner);
  const saved = b.minParallelWork;
  b.minParallelWork = 0;
  try {
    return f();
  } finally {
    b.minParallelWork = saved;
    b.stopThreads();
  }
}

describe("splitRange: the shares of a split kernel", () => {
  it("covers [0, total) in order, once, with inner bounds on multiples of the tile", () => {
    for (const [total, parts, align] of [[100, 2, 8], [3, 2, 4], [17, 3, 4], [784, 2, 8], [1, 4, 1], [0, 2, 4], [64, 3, 1]]) {
      const r = splitRange(total, parts, align);
      assert.equal(r.length, parts);
      let next = 0;
      for (const [s, e] of r) {
        assert.equal(s, next, `split of ${total} into ${parts}: contiguous`);
        assert.ok(e >= s);
        if (e !== total) assert.equal(e % align, 0, `inner bound ${e} is a multiple of ${align}`);
        next = e;
      }
      assert.equal(next, total);
    }
  });
});

describeOrSkip("wasm kernels on several threads", { skip: !wasmSharedMemorySupported() && "no shared WebAssembly memory here" }, () => {
  let b: WasmBackend;
  before(() => {
    b = initWasmBackendSync({ sharedMemory: true });
  });

  it("GEMM: every transpose and awkward size has the same bits on 2 and 3 threads as on 1", async () => {
    const cases: [number, number, number][] = [[1, 1, 1], [3, 17, 5], [17, 3, 100], [60, 100, 784], [100, 784, 60], [33, 9, 1], [5, 130, 17]];
    for (const [M, N, K] of cases) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const A = random(M * K, M + K);
          const B = random(K * N, N * 7 + K);
          const C0 = random(M * N, 3);
          const once = C0.slice();
          b.gemm(transA, transB, M, N, K, 0.5, A, B, 0.25, once);
          for (const threads of [2, 3]) {
            const split = C0.slice();
            await withThreads(b, threads, () => b.gemm(transA, transB, M, N, K, 0.5, A, B, 0.25, split));
            assert.deepEqual(split, once, `${M}×${N}×${K} transA=${transA} transB=${transB} on ${threads} threads`);
          }
        }
      }
    }
  });

  it("convolution forward and all three gradients have the same bits on 2 and 3 threads as on 1", async () => {
    const window = (H: number, W: number, k: number, s: number, p: number): Window2d => ({
      H, W, kh: k, kw: k, sh: s, sw: s, ph: p, pw: p,
      OH: Math.floor((H + 2 * p - k) / s) + 1, OW: Math.floor((W + 2 * p - k) / s) + 1,
    });
    const cases: [string, number, number, number, Window2d][] = [
      ["3×3 pad 1, 3 images, 17 → 5 channels", 3, 17, 5, window(7, 5, 3, 1, 1)],
      ["1 image, 3 → 9 channels, stride 2", 1, 3, 9, window(9, 9, 3, 2, 1)],
      ["pointwise, 5 images, 6 → 13 channels", 5, 6, 13, window(4, 4, 1, 1, 0)],
      ["pointwise on 7×7, 4 images, 13 → 22 channels", 4, 13, 22, window(7, 7, 1, 1, 0)],
      ["2 images, 8 → 3 channels (fewer rows than threads × 4)", 2, 8, 3, window(6, 6, 3, 1, 0)],
    ];
    for (const [label, N, C, O, g] of cases) {
      const K = C * g.kh * g.kw;
      const x = random(N * C * g.H * g.W, 1);
      const w = random(O * K, 2);
      const bias = random(O, 3);
      const gy = random(N * O * g.OH * g.OW, 4);
      const run = () => {
        const y = new Float32Array(N * O * g.OH * g.OW);
        const gx = new Float32Array(N * C * g.H * g.W);
        const gw = new Float32Array(O * K);
        const gb = new Float32Array(O);
        b.conv2dForward(x, w, bias, y, N, C, O, g);
        b.conv2dBackward(x, w, gy, gx, gw, gb, N, C, O, g);
        return { y, gx, gw, gb };
      };
      const once = run();
      for (const threads of [2, 3]) {
        const split = await withThreads(b, threads, run);
        for (const key of ["y", "gx", "gw", "gb"] as const) assert.deepEqual(split[key], once[key], `${label}: ${key} on ${threads} threads`);
      }
    }
  });

  it("SGD's checked step: the same bits on 2 and 3 threads as on 1, and the non-finite count summed over every thread's share", async () => {
    for (const n of [1, 5, 17, 100, 1003]) {
      for (const [firstStep, nesterov, momentum] of [[true, false, 0.9], [false, false, 0.9], [false, true, 0.9], [false, false, 0]] as const) {
        const p = random(n, n);
        const grad = random(n, n + 1);
        const v = random(n, n + 2);
        // Non-finite gradients spread over the whole range, so that every share of 2 or 3 threads finds some.
        const bad = n >= 17 ? [0, Math.floor(n / 3) + 1, Math.floor(n / 2) + 1, n - 1] : [];
        for (const [j, i] of bad.entries()) grad[i] = [NaN, Infinity, -Infinity, NaN][j];
        const run = () => {
          const newP = new Float32Array(n);
          const newV = momentum === 0 ? null : new Float32Array(n);
          const count = b.sgdStepChecked(p, grad, firstStep ? null : v, newP, newV, firstStep, 0.1, momentum, 0, 0.01, nesterov);
          return { newP, newV, count };
        };
        const once = run();
        assert.equal(once.count, bad.length, `n = ${n}: one thread counts every non-finite gradient`);
        for (const threads of [2, 3]) {
          const split = await withThreads(b, threads, run);
          const what = `n = ${n}, first ${firstStep}, nesterov ${nesterov}, momentum ${momentum} on ${threads} threads`;
          assert.deepEqual(split.newP, once.newP, `${what}: new parameters`);
          assert.deepEqual(split.newV, once.newV, `${what}: new velocity`);
          assert.equal(split.count, once.count, `${what}: the shares' counts summed`);
        }
      }
    }
  });

  it("a conv + BN network trains to the same bits on 2 threads as on 1", async () => {
    const train = () => {
      registerBackend(b);
      setBackend("wasm");
      const g = new Generator(3);
      const model = new nn.Sequential(
        new nn.Conv2d(3, 16, 3, { padding: 1, bias: false, generator: g }),
        new nn.BatchNorm2d(16),
        new nn.ReLU(),
        new nn.Conv2d(16, 8, 3, { stride: 2, padding: 1, generator: g }),
        new nn.ReLU(),
        new nn.GlobalAvgPool2d(),
        new nn.Flatten(),
        new nn.Linear(8, 4, { generator: g }),
      );
      const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
      const x = randn([8, 3, 10, 10], new Generator(4), { dtype: "float32" });
      const y = new Int32Array([0, 1, 2, 3, 0, 1, 2, 3]);
      const loss = new nn.CrossEntropyLoss();
      for (let s = 0; s < 8; s++) {
        scope(() => {
          opt.zeroGrad({ setToNone: false });
          loss.forward(model.forward(x), y).backward();
          opt.step();
        });
      }
      return Object.values(model.stateDict()).map((t) => Float32Array.from(t.data));
    };
    const once = train();
    const split = await withThreads(b, 2, train);
    for (let i = 0; i < once.length; i++) assert.deepEqual(split[i], once[i], `state entry ${i}`);
  });

  it("reports the thread count and stops cleanly", async () => {
    assert.equal(await startWasmThreads(b, 2), 2);
    assert.equal(b.threads, 2);
    b.stopThreads();
    assert.equal(b.threads, 1);
    assert.equal(await startWasmThreads(b, 1), 1);
  });

  it("refuses a bad thread count, and threads without a shared memory, with a clear error", async () => {
    await assert.rejects(() => b.startThreads(0, nodeThreadSpawner), /integer ≥ 1; got 0/);
    await assert.rejects(() => b.startThreads(1.5, nodeThreadSpawner), /integer ≥ 1; got 1.5/);
    const priv = initWasmBackendSync({ sharedMemory: false });
    await assert.rejects(() => priv.startThreads(2, nodeThreadSpawner), /threads need the shared memory/);
    await assert.rejects(() => startWasmThreads(priv, 2), /needs the wasm backend's shared memory/);
    assert.throws(() => {
      b.minParallelWork = -1;
    }, /minParallelWork must be/);
  });
});
