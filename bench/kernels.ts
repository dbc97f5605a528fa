/**
 * Kernel micro-benchmark: GEMM GFLOP/s and BatchNorm forward + backward GB/s
 * on the reference backend and on both builds of the wasm backend, next to
 * the memory-copy bandwidth measured in the same run. Prints a table and
 * writes bench/results/kernels.json.
 *
 *   npm run build && node dist/bench/kernels.js      (or npm run bench:kernels)
 *
 * Each figure is the best of several timed rounds after a warm-up (V8 first
 * runs wasm on its baseline compiler and tiers up to the optimizing one in
 * the background): the best round is the one least disturbed by other work
 * on the machine. The median is kept in the JSON too.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import type { Backend } from "../src/backend/backend.js";
import { referenceBackend } from "../src/backend/reference/index.js";
import { initWasmBackendSync, wasmSimdSupported } from "../src/backend/wasm/index.js";
import type { KernelExports } from "../src/backend/wasm/backend.js";
import { kernelsSimdBase64 } from "../src/backend/wasm/generated/kernels-simd.js";

interface Timing {
  /** Best seconds per call over the rounds. */
  best: number;
  median: number;
  calls: number;
}

/** Calls fn repeatedly: warm-up, then `rounds` rounds of at least `roundSeconds` each. */
function time(fn: () => void, rounds = 25, roundSeconds = 0.025): Timing {
  // Long enough for V8 to finish compiling the optimized code in the background.
  const warmEnd = performance.now() + 300;
  let calls = 0;
  do {
    fn();
    calls++;
  } while (performance.now() < warmEnd || calls < 3);
  const perCall: number[] = [];
  let total = 0;
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    do {
      fn();
      n++;
      t = performance.now();
    } while (t - t0 < roundSeconds * 1000);
    perCall.push((t - t0) / 1000 / n);
    total += n;
  }
  perCall.sort((a, b) => a - b);
  return { best: perCall[0], median: perCall[perCall.length >> 1], calls: total };
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

const backends: [string, Backend][] = [["reference", referenceBackend]];
backends.push(["wasm scalar", initWasmBackendSync({ simd: false })]);
if (wasmSimdSupported()) backends.push(["wasm simd", initWasmBackendSync({ simd: true })]);

// --- GEMM ------------------------------------------------------------------

const gemmCases = [
  { label: "64×784×112 NN", transA: false, transB: false, M: 64, N: 112, K: 784 },
  { label: "Linear fwd x·Wᵀ NT", transA: false, transB: true, M: 60, N: 100, K: 784 },
  { label: "Linear dx = dy·W NN", transA: false, transB: false, M: 60, N: 784, K: 100 },
  { label: "Linear dW = dyᵀ·x TN", transA: true, transB: false, M: 100, N: 784, K: 60 },
  { label: "256³ NN", transA: false, transB: false, M: 256, N: 256, K: 256 },
];

const gemmResults: Record<string, unknown>[] = [];
for (const g of gemmCases) {
  const a = random(g.M * g.K, 1);
  const b = random(g.K * g.N, 2);
  const c = new Float32Array(g.M * g.N);
  const flop = 2 * g.M * g.N * g.K;
  const row: Record<string, unknown> = { case: g.label, M: g.M, N: g.N, K: g.K, transA: g.transA, transB: g.transB };
  for (const [name, be] of backends) {
    const t = time(() => be.gemm(g.transA, g.transB, g.M, g.N, g.K, 1, a, b, 0, c), name === "reference" ? 3 : 25);
    row[name] = { gflops: flop / t.best / 1e9, medianGflops: flop / t.median / 1e9, secondsPerCall: t.best };
  }
  gemmResults.push(row);
}

// --- memory copy -----------------------------------------------------------

const copyBytes = 64 * 2 ** 20;
const src = random(copyBytes / 4, 3);
const dst = new Float32Array(copyBytes / 4);
const copy = time(() => dst.set(src), 5, 0.15);
// Counted as bytes read + bytes written, like the BN figures below.
const copyGBs = (2 * copyBytes) / copy.best / 1e9;

// --- BatchNorm forward + backward -------------------------------------------

/**
 * One BN training step over (N, C, S), as the op layer runs it: moments, the
 * affine pass, the two backward reductions, the backward elementwise pass.
 * Bytes counted: the tensor passes these kernels must make — moments reads x
 * twice, affine reads x and writes y, grad sums read x and dy, grad input
 * reads x and dy and writes dx: 9 passes of 4·N·C·S bytes. (The first-cut
 * wasm glue also copies operands in and out of linear memory; that traffic
 * is not counted, it is what the figure pays for.)
 */
const bnCases = [
  { label: "(60, 100)", N: 60, C: 100, S: 1 },
  { label: "(128, 32, 16, 16)", N: 128, C: 32, S: 256 },
  { label: "(64, 64, 32, 32)", N: 64, C: 64, S: 1024 },
];

const bnResults: Record<string, unknown>[] = [];
for (const s of bnCases) {
  const n = s.N * s.C * s.S;
  const x = random(n, 4);
  const dy = random(n, 5);
  const y = new Float32Array(n);
  const dx = new Float32Array(n);
  const [mean, variance, scale, shift, sumDy, sumDyXmu, ka, kb, kk] = Array.from({ length: 9 }, () => new Float64Array(s.C));
  const bytes = 9 * 4 * n;
  const row: Record<string, unknown> = { case: s.label, N: s.N, C: s.C, S: s.S, bytesPerStep: bytes };
  for (const [name, be] of backends) {
    const step = () => {
      be.channelMoments(x, s.N, s.C, s.S, mean, variance);
      for (let c = 0; c < s.C; c++) {
        scale[c] = 1 / Math.sqrt(variance[c] + 1e-5);
        shift[c] = 0;
      }
      be.channelAffine(x, y, s.N, s.C, s.S, mean, scale, shift);
      be.channelGradSums(x, dy, s.N, s.C, s.S, mean, sumDy, sumDyXmu);
      const m = s.N * s.S;
      for (let c = 0; c < s.C; c++) {
        const invStd = scale[c];
        ka[c] = sumDy[c] / m;
        kb[c] = (sumDyXmu[c] / m) * invStd * invStd;
        kk[c] = invStd;
      }
      be.channelGradInput(x, dy, dx, s.N, s.C, s.S, mean, ka, kb, kk);
    };
    const t = time(step, name === "reference" ? 3 : 25);
    row[name] = { GBs: bytes / t.best / 1e9, medianGBs: bytes / t.median / 1e9, secondsPerStep: t.best };
  }
  bnResults.push(row);
}

// --- sigmoid (the exp choice: SIMD polynomial vs scalar Mathf.exp) ------------

const sigN = 1 << 20;
const sx = random(sigN, 6).map((v) => v * 20);
const sy = new Float32Array(sigN);
const sigmoidRow: Record<string, unknown> = { case: `sigmoid n = 2^20` };
for (const [name, be] of backends) {
  const t = time(() => be.sigmoid(sx, sy), name === "reference" ? 3 : 25);
  sigmoidRow[name] = { gElementsPerSecond: sigN / t.best / 1e9, secondsPerCall: t.best };
}

// --- the SIMD kernels alone: operands already in linear memory ------------------
//
// What the first-cut glue costs: the same kernels called on byte offsets, with
// no copies in or out — what zero-copy tensor storage would give.

const raw = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(kernelsSimdBase64, "base64")), {})
  .exports as unknown as KernelExports;
let top = Math.ceil((raw.heapBase() >>> 0) / 64) * 64;
/** A fresh region of `bytes` in linear memory, filled with small random floats (bench only: never freed). */
function place(bytes: number): number {
  const p = top;
  top += Math.ceil(bytes / 64) * 64;
  const short = top - raw.memory.buffer.byteLength;
  if (short > 0) raw.memory.grow(Math.ceil(short / 65536));
  new Float32Array(raw.memory.buffer, p, bytes / 4).set(random(bytes / 4, p));
  return p;
}
const rawGemm: Record<string, unknown>[] = [];
for (const g of gemmCases) {
  const [pa, pb, pc] = [place(g.M * g.K * 4), place(g.K * g.N * 4), place(g.M * g.N * 4)];
  const work = place(raw.gemmWorkspaceBytes(g.M, g.N, g.K) >>> 0);
  const t = time(() => raw.gemm(g.transA, g.transB, g.M, g.N, g.K, 1, pa, pb, 0, pc, work));
  rawGemm.push({ case: g.label, gflops: (2 * g.M * g.N * g.K) / t.best / 1e9 });
}
const rawBn: Record<string, unknown>[] = [];
for (const s of bnCases) {
  const n = s.N * s.C * s.S;
  const [x, y, dy] = [place(4 * n), place(4 * n), place(4 * n)];
  const [mean, variance, sumDy, sumDyXmu, a, b, k] = Array.from({ length: 7 }, () => place(8 * s.C));
  const work = place(raw.batchNormWorkspaceBytes(s.C) >>> 0);
  const step = () => {
    raw.channelMoments(x, s.N, s.C, s.S, mean, variance);
    raw.channelAffine(x, y, s.N, s.C, s.S, mean, a, b, work);
    raw.channelGradSums(x, dy, s.N, s.C, s.S, mean, sumDy, sumDyXmu);
    raw.channelGradInput(x, dy, y, s.N, s.C, s.S, mean, a, b, k, work);
  };
  // Moderate coefficients (0.5), so no pass runs into subnormal arithmetic.
  for (const p of [a, b, k]) new Float64Array(raw.memory.buffer, p, s.C).fill(0.5);
  const t = time(step);
  rawBn.push({ case: s.label, GBs: (9 * 4 * n) / t.best / 1e9 });
}

// --- report ------------------------------------------------------------------

const names = backends.map(([n]) => n);
const pad = (s: string, w: number) => s.padEnd(w);
const num = (v: unknown, key: string) => ((v as Record<string, number> | undefined)?.[key] ?? NaN).toFixed(1).padStart(12);
const num3 = (v: unknown, key: string) => ((v as Record<string, number> | undefined)?.[key] ?? NaN).toFixed(3).padStart(12);

console.log(`\nnode ${process.version}, ${cpus()[0]?.model ?? "unknown CPU"}, one thread\n`);
console.log(`${pad("GEMM GFLOP/s (M×N×K)", 36)}${names.map((n) => n.padStart(12)).join("")}`);
for (const r of gemmResults) {
  console.log(`${pad(`${r.case} ${r.M}×${r.N}×${r.K}`, 36)}${names.map((n) => num(r[n], "gflops")).join("")}`);
}
console.log(`\n${pad("BN fwd+bwd GB/s (9 passes)", 36)}${names.map((n) => n.padStart(12)).join("")}`);
for (const r of bnResults) console.log(`${pad(String(r.case), 36)}${names.map((n) => num(r[n], "GBs")).join("")}`);
console.log(`${pad("memory copy (Float32Array.set, 64 MiB)", 36)}${copyGBs.toFixed(1).padStart(12)}  GB/s read + write`);
console.log(`\n${pad("sigmoid, G elements/s (n = 2^20)", 36)}${names.map((n) => num3(sigmoidRow[n], "gElementsPerSecond")).join("")}`);
console.log(`\nwasm simd kernels alone, no copies (zero-copy preview)`);
for (const r of rawGemm) console.log(`${pad(`GEMM ${r.case}`, 36)}${num(r, "gflops").padStart(12)}  GFLOP/s`);
for (const r of rawBn) console.log(`${pad(`BN fwd+bwd ${r.case}`, 36)}${num(r, "GBs").padStart(12)}  GB/s`);

const results = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model ?? "unknown",
  method: "best of timed rounds after warm-up; medians kept alongside",
  gemm: gemmResults,
  batchnorm: bnResults,
  memoryCopy: { bytes: copyBytes, GBsReadPlusWrite: copyGBs, secondsPerCopy: copy.best },
  sigmoid: sigmoidRow,
  simdKernelsWithoutCopies: { gemm: rawGemm, batchnorm: rawBn },
};
const dir = new URL("../../bench/results/", import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL("kernels.json", dir), JSON.stringify(results, null, 2) + "\n");
console.log(`\nwrote ${new URL("kernels.json", dir).pathname}`);
