#!/usr/bin/env node
// Which 3×3 stride-1 convolutions run faster by Winograd F(2×2, 3×3) than by
// im2col + GEMM (not a test, not the benchmark suite): per shape, the
// forward (conv2dForward vs conv2dWinogradForward) and the input gradient
// (conv2dBackward with only gx vs conv2dWinogradBackwardInput) and the
// weight gradient (conv2dBackward with only gw vs conv2dWinogradBackwardWeight)
// on the wasm backend's relaxed-SIMD build, one thread, padding 1. The rules
// in src/ops/conv.ts (useWinograd, useWinogradWeight) were read off this table.
//
//   npm run build && node bench/winograd.mjs ['[[C, O, HW], …]'] [--n 64] [--reps 9]
//
// Each figure is the best of 3 rounds of `reps` calls after one warm-up call,
// the four variants taking turns, so a busy machine slows them alike.
import { setFlagsFromString } from "node:v8";
setFlagsFromString("--experimental-wasm-relaxed-simd"); // Node 20: before the first wasm compile

const { initWasmBackendSync } = await import(new URL("../dist/src/backend/wasm/index.js", import.meta.url).href);
const b = initWasmBackendSync({ relaxed: true });
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const N = opt("--n", 64);
const reps = opt("--reps", 9);
// The Inception table's 3×3 stride-1 layers at width 1/16 (stem stride 2), the bench's conv step, and the edges of the rule.
const shapes = args[0]?.startsWith("[") ? JSON.parse(args[0]) : [
  [4, 6, 14], [6, 6, 14], [4, 4, 14], [12, 12, 7], [12, 16, 7], [6, 8, 7], [8, 10, 7], [10, 12, 7], [12, 20, 4], [14, 14, 4],
  [32, 32, 16], [64, 64, 8], [1, 8, 16], [2, 8, 16], [16, 16, 2], [32, 32, 4], [128, 128, 4], [128, 128, 8],
];

const window = (H) => ({ H, W: H, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, OH: H, OW: H });
function random(n, seed) {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}
function best(f) {
  f();
  let m = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f();
    m = Math.min(m, performance.now() - t0);
  }
  return m;
}

console.log(`N ${N}, padding 1, one thread, ms per call (best of 3 × ${reps}); ratio = im2col ÷ Winograd`);
console.log("  C    O   H×W |  fwd im2col  Winograd  ratio |  ∂x im2col  Winograd  ratio |  ∂W im2col  Winograd  ratio");
for (const [C, O, H] of shapes) {
  const g = window(H);
  const x = random(N * C * H * H, 1), w = random(O * C * 9, 2), y = new Float32Array(N * O * H * H), gy = random(y.length, 3), gx = new Float32Array(x.length), gw = new Float32Array(w.length);
  const t = [Infinity, Infinity, Infinity, Infinity, Infinity, Infinity];
  for (let round = 0; round < 3; round++) {
    t[0] = Math.min(t[0], best(() => b.conv2dForward(x, w, null, y, N, C, O, g)));
    t[1] = Math.min(t[1], best(() => b.conv2dWinogradForward(x, w, null, y, N, C, O, g)));
    t[2] = Math.min(t[2], best(() => b.conv2dBackward(null, w, gy, gx, null, null, N, C, O, g)));
    t[3] = Math.min(t[3], best(() => b.conv2dWinogradBackwardInput(w, gy, gx, N, C, O, g)));
    t[4] = Math.min(t[4], best(() => b.conv2dBackward(x, w, gy, null, gw, null, N, C, O, g)));
    t[5] = Math.min(t[5], best(() => b.conv2dWinogradBackwardWeight(x, gy, gw, N, C, O, g)));
  }
  const f = (v) => v.toFixed(3).padStart(9);
  console.log(`${String(C).padStart(3)}  ${String(O).padStart(3)}  ${`${H}×${H}`.padStart(5)} | ${f(t[0])} ${f(t[1])} ${(t[0] / t[1]).toFixed(2).padStart(6)} | ${f(t[2])} ${f(t[3])} ${(t[2] / t[3]).toFixed(2).padStart(6)} | ${f(t[4])} ${f(t[5])} ${(t[4] / t[5]).toFixed(2).padStart(6)}`);
}
