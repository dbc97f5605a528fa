/**
 * Winograd F(2×2, 3×3): the convolution and its input and weight gradients
 * against the direct convolution. What these tests prove: the reference Winograd (double
 * precision) is the direct convolution up to double rounding; every wasm
 * build matches the direct convolution within a stated float32 bound on
 * awkward shapes (1×1 and odd-sized images, padding 0–2, channel counts that
 * are not multiples of the 4×8 register tile); outputs are overwritten
 * whole; the split between threads keeps every bit; other windows are refused.
 *
 * The float32 bound, with u = 2⁻²⁴ and D = Σ|W||x| (the direct convolution
 * of absolute values): 4·(C + 8)·u·D + 1e-30 for C input channels. The sum
 * over channels of the Winograd-domain products errs by at most about
 * C·u times their magnitude, and the transforms add and subtract at most 4
 * (input) and 9 (output) terms and scale the kernel by up to 9/4, so that
 * magnitude is a small multiple of D; on these cases the error measured at
 * most 0.62 of (C + 8)·u·D (all-positive data, where the transforms cancel
 * most), so the factor 4 leaves room without hiding a wrong tile. ∂ℓ/∂W sums
 * over every tile of every image: 4·(N·OH·OW + 16)·u·Σ|gy||x|, the bound of
 * im2col + GEMM's N·OH·OW-term sums (conv.test.ts) with the same factor.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isWinogradWindow, transposedWindow, type Window2d } from "../../src/backend/backend.js";
import { referenceBackend as ref } from "../../src/backend/reference/index.js";
import { initWasmBackendSync, wasmSharedMemorySupported, type WasmBackend } from "../../src/backend/wasm/index.js";
import { nodeThreadSpawner } from "../../src/node/wasmThreads.js";
import { describeOrSkip } from "../skip.js";
import { assertAllClose } from "../allclose.js";
import { wasmBuilds } from "./builds.js";
import { rng } from "./rng.js";

const u = 2 ** -24;


/** Uniform in (−1, 1), or in (0, 1) when `positive` (the transforms' worst case: their differences cancel). */
function randomF32(n: number, next: () => number, positive = false): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = positive ? next() : 2 * next() - 1;
  return a;
}

/** The 3×3 stride-1 window with padding p over an H×W plane. */
function window(H: number, W: number, p: number): Window2d {
  return { H, W, kh: 3, kw: 3, sh: 1, sw: 1, ph: p, pw: p, OH: H + 2 * p - 2, OW: W + 2 * p - 2 };
}

interface Case {
  N: number;
  C: number;
  O: number;
  g: Window2d;
  label: string;
}

const cases: Case[] = [
  [1, 1, 1, 1, 1, 1, "1×1 image, one channel"],
  [2, 3, 5, 5, 7, 1, "odd sizes, 3 → 5 channels"],
  [1, 3, 2, 6, 9, 0, "no padding (4×7 output)"],
  [2, 2, 3, 3, 5, 2, "padding 2 (its input gradient has padding 0)"],
  [2, 4, 6, 14, 14, 1, "an Inception 3×3 at width 1/16"],
  [3, 17, 9, 7, 7, 1, "17 → 9 channels on 7×7"],
  [2, 8, 8, 4, 4, 1, "4×4 image"],
  [2, 33, 31, 16, 16, 1, "33 → 31 channels on 16×16 (several register tiles, edges in both)"],
  [1, 5, 4, 2, 11, 1, "2×11 image: one row of tiles"],
  [13, 12, 16, 7, 7, 1, "13 images on 7×7: ∂W in passes of 8 images side by side, the last of 5"],
].map(([N, C, O, H, W, p, label]) => {
  const g = window(H as number, W as number, p as number);
  return { N, C, O, g, label: `${label}: N ${N}, ${C}→${O}, ${H}×${W}, padding ${p}` } as Case;
});

/** The direct convolution (and of absolute values) in float64, from the reference im2col kernels. */
function direct(x: Float32Array, weight: Float32Array, bias: Float32Array | null, N: number, C: number, O: number, g: Window2d) {
  const n = N * O * g.OH * g.OW;
  const [y, mag] = [new Float64Array(n), new Float64Array(n)];
  const abs = (a: Float32Array) => Float64Array.from(a, Math.abs);
  ref.conv2dForward(Float64Array.from(x), Float64Array.from(weight), bias && Float64Array.from(bias), y, N, C, O, g);
  ref.conv2dForward(abs(x), abs(weight), bias && abs(bias), mag, N, C, O, g);
  return { y, mag };
}

/** ∂ℓ/∂x of the direct convolution (and of absolute values) in float64. */
function directGx(weight: Float32Array, gy: Float32Array, N: number, C: number, O: number, g: Window2d) {
  const n = N * C * g.H * g.W;
  const [gx, mag] = [new Float64Array(n), new Float64Array(n)];
  const abs = (a: Float32Array) => Float64Array.from(a, Math.abs);
  ref.conv2dBackward(null, Float64Array.from(weight), Float64Array.from(gy), gx, null, null, N, C, O, g);
  ref.conv2dBackward(null, abs(weight), abs(gy), mag, null, null, N, C, O, g);
  return { gx, mag };
}

/** ∂ℓ/∂W of the direct convolution (and of absolute values) in float64. */
function directGw(x: Float32Array, gy: Float32Array, N: number, C: number, O: number, g: Window2d) {
  const n = O * C * 9;
  const [gw, mag] = [new Float64Array(n), new Float64Array(n)];
  const abs = (a: Float32Array) => Float64Array.from(a, Math.abs);
  const unused = new Float64Array(n); // the weight, which ∂ℓ/∂W does not read
  ref.conv2dBackward(Float64Array.from(x), unused, Float64Array.from(gy), null, gw, null, N, C, O, g);
  ref.conv2dBackward(abs(x), unused, abs(gy), null, mag, null, N, C, O, g);
  return { gw, mag };
}

describe("Winograd F(2×2, 3×3) windows", () => {
  it("takes 3×3 stride-1 windows with padding ≤ 2 only; the input gradient's window has padding 2 − p and the input's size", () => {
    assert.ok(isWinogradWindow(window(5, 7, 1)));
    assert.ok(!isWinogradWindow({ ...window(5, 7, 1), sh: 2, OH: 3 }));
    assert.ok(!isWinogradWindow({ H: 5, W: 5, kh: 5, kw: 5, sh: 1, sw: 1, ph: 2, pw: 2, OH: 5, OW: 5 }));
    assert.ok(!isWinogradWindow(window(5, 7, 3)));
    assert.deepEqual(transposedWindow(window(5, 7, 0)), window(3, 5, 2));
    assert.deepEqual(transposedWindow(window(5, 7, 2)), { ...window(7, 9, 0) });
  });
});

describe("reference backend: Winograd F(2×2, 3×3) is the direct convolution", () => {
  it("forward, input gradient and weight gradient within 1e-12·Σ|terms| of im2col + GEMM in float64", () => {
    const next = rng(1);
    for (const { N, C, O, g, label } of cases) {
      const x = randomF32(N * C * g.H * g.W, next);
      const weight = randomF32(O * C * 9, next);
      const bias = randomF32(O, next);
      const d = direct(x, weight, bias, N, C, O, g);
      const y = new Float64Array(d.y.length).fill(NaN);
      ref.conv2dWinogradForward(Float64Array.from(x), Float64Array.from(weight), Float64Array.from(bias), y, N, C, O, g);
      assertAllClose(y, d.y, { atol: (i) => 1e-12 * d.mag[i], rtol: 0 }, `y (${label})`);
      const gy = randomF32(N * O * g.OH * g.OW, next);
      const e = directGx(weight, gy, N, C, O, g);
      const gx = new Float64Array(e.gx.length).fill(NaN);
      ref.conv2dWinogradBackwardInput(Float64Array.from(weight), Float64Array.from(gy), gx, N, C, O, g);
      assertAllClose(gx, e.gx, { atol: (i) => 1e-12 * e.mag[i], rtol: 0 }, `gx (${label})`);
      const f = directGw(x, gy, N, C, O, g);
      const gw = new Float64Array(f.gw.length).fill(NaN);
      ref.conv2dWinogradBackwardWeight(Float64Array.from(x), Float64Array.from(gy), gw, N, C, O, g);
      assertAllClose(gw, f.gw, { atol: (i) => 1e-12 * f.mag[i], rtol: 0 }, `gw (${label})`);
    }
  });

  it("refuses other windows, pointing to the general kernels", () => {
    const g: Window2d = { ...window(5, 7, 1), sh: 2, OH: 3 };
    assert.throws(() => ref.conv2dWinogradForward(new Float32Array(35), new Float32Array(9), null, new Float32Array(21), 1, 1, 1, g), /3×3 window with stride 1.*conv2dForward/);
  });
});

for (const w of wasmBuilds()) {
  describe(`wasm backend (${w.variant} build): Winograd F(2×2, 3×3) against the direct convolution`, () => {
    it("conv2dWinogradForward, with and without bias, signed and positive data: within 4·(C + 8)·u·Σ|W||x|", () => {
      const next = rng(2);
      for (const { N, C, O, g, label } of cases) {
        for (const [withBias, positive] of [[true, false], [false, true]]) {
          const x = randomF32(N * C * g.H * g.W, next, positive);
          const weight = randomF32(O * C * 9, next, positive);
          const bias = withBias ? randomF32(O, next) : null;
          const d = direct(x, weight, bias, N, C, O, g);
          const y = new Float32Array(d.y.length).fill(NaN); // every element must be written
          w.conv2dWinogradForward(x, weight, bias, y, N, C, O, g);
          assertAllClose(y, d.y, { atol: (i) => 4 * (C + 8) * u * d.mag[i] + 1e-30, rtol: 0 }, `y (${label}, bias ${withBias}, positive ${positive})`);
        }
      }
    });

    it("conv2dWinogradBackwardInput: within 4·(O + 8)·u·Σ|W||gy| of the direct convolution's ∂ℓ/∂x", () => {
      const next = rng(3);
      for (const { N, C, O, g, label } of cases) {
        for (const positive of [false, true]) {
          const weight = randomF32(O * C * 9, next, positive);
          const gy = randomF32(N * O * g.OH * g.OW, next, positive);
          const e = directGx(weight, gy, N, C, O, g);
          const gx = new Float32Array(e.gx.length).fill(NaN);
          w.conv2dWinogradBackwardInput(weight, gy, gx, N, C, O, g);
          assertAllClose(gx, e.gx, { atol: (i) => 4 * (O + 8) * u * e.mag[i] + 1e-30, rtol: 0 }, `gx (${label}, positive ${positive})`);
        }
      }
    });

    it("conv2dWinogradBackwardWeight: within 4·(N·OH·OW + 16)·u·Σ|gy||x| of the direct convolution's ∂ℓ/∂W", () => {
      const next = rng(5);
      for (const { N, C, O, g, label } of cases) {
        for (const positive of [false, true]) {
          const x = randomF32(N * C * g.H * g.W, next, positive);
          const gy = randomF32(N * O * g.OH * g.OW, next, positive);
          const f = directGw(x, gy, N, C, O, g);
          const gw = new Float32Array(f.gw.length).fill(NaN);
          w.conv2dWinogradBackwardWeight(x, gy, gw, N, C, O, g);
          assertAllClose(gw, f.gw, { atol: (i) => 4 * (N * g.OH * g.OW + 16) * u * f.mag[i] + 1e-30, rtol: 0 }, `gw (${label}, positive ${positive})`);
        }
      }
    });

    it("refuses other windows, and operands shorter than their shape", () => {
      const g: Window2d = { ...window(5, 7, 1), sh: 2, OH: 3 };
      assert.throws(() => w.conv2dWinogradForward(new Float32Array(35), new Float32Array(9), null, new Float32Array(21), 1, 1, 1, g), /3×3 window with stride 1/);
      const h = window(5, 7, 1);
      assert.throws(() => w.conv2dWinogradBackwardInput(new Float32Array(2 * 3 * 9), new Float32Array(2 * 35 - 1), new Float32Array(3 * 35), 1, 3, 2, h), /'gy' holds 69 elements/);
    });
  });
}

describeOrSkip("Winograd kernels on several threads", { skip: !wasmSharedMemorySupported() && "no shared WebAssembly memory here" }, () => {
  it("forward, input gradient and weight gradient have the same bits on 2 and 3 threads as on 1", async () => {
    const b: WasmBackend = initWasmBackendSync({ sharedMemory: true });
    const next = rng(4);
    for (const { N, C, O, g, label } of cases.filter((c) => c.N > 1)) {
      const x = randomF32(N * C * g.H * g.W, next);
      const weight = randomF32(O * C * 9, next);
      const bias = randomF32(O, next);
      const gy = randomF32(N * O * g.OH * g.OW, next);
      const run = () => {
        const y = new Float32Array(N * O * g.OH * g.OW);
        const gx = new Float32Array(x.length);
        const gw = new Float32Array(weight.length);
        b.conv2dWinogradForward(x, weight, bias, y, N, C, O, g);
        b.conv2dWinogradBackwardInput(weight, gy, gx, N, C, O, g);
        b.conv2dWinogradBackwardWeight(x, gy, gw, N, C, O, g);
        return { y, gx, gw };
      };
      const once = run();
      for (const threads of [2, 3]) {
        await b.startThreads(threads, nodeThreadSpawner);
        const saved = b.minParallelWork;
        b.minParallelWork = 0; // split every call, however small
        try {
          const split = run();
          assert.deepEqual(split.y, once.y, `${label}: y on ${threads} threads`);
          assert.deepEqual(split.gx, once.gx, `${label}: gx on ${threads} threads`);
          assert.deepEqual(split.gw, once.gw, `${label}: gw on ${threads} threads`);
        } finally {
          b.minParallelWork = saved;
          b.stopThreads();
        }
      }
    }
  });
});
