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
import { enableRelaxedSimd } from "../src/experiments/backend.js";
import { initWasmBackendSync, wasmRelaxedSimdSupported, wasmSimdSupported } from "../src/backend/wasm/index.js";

enableRelaxedSimd();
import { kernelsSimdBase64 } from "../src/backend/wasm/generated/kernels-simd.js";
import { bnCases, bnKernelStep, gemmCases, gemmFlops, gemmStep, memoryCopy, random, RawKernels, time } from "./measure.js";

const backends: [string, Backend][] = [["reference", referenceBackend]];
backends.push(["wasm scalar", initWasmBackendSync({ simd: false })]);
if (wasmSimdSupported()) backends.push(["wasm simd", initWasmBackendSync({ simd: true, relaxed: false })]);
if (wasmRelaxedSimdSupported()) backends.push(["wasm relaxed simd", initWasmBackendSync({ relaxed: true })]);

// --- GEMM ------------------------------------------------------------------

const gemmResults: Record<string, unknown>[] = [];
for (const g of gemmCases) {
  const flop = gemmFlops(g);
  const row: Record<string, unknown> = { case: g.label, M: g.M, N: g.N, K: g.K, transA: g.transA, transB: g.transB };
  for (const [name, be] of backends) {
    const t = time(gemmStep(be, g), name === "reference" ? 3 : 25);
    row[name] = { gflops: flop / t.best / 1e9, medianGflops: flop / t.median / 1e9, secondsPerCall: t.best };
  }
  gemmResults.push(row);
}

// --- memory copy -----------------------------------------------------------

// Counted as bytes read + bytes written, like the BN figures below.
const copy = memoryCopy();
const copyGBs = copy.GBsReadPlusWrite;

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
const bnResults: Record<string, unknown>[] = [];
for (const s of bnCases) {
  const bytes = 9 * 4 * s.N * s.C * s.S;
  const row: Record<string, unknown> = { case: s.label, N: s.N, C: s.C, S: s.S, bytesPerStep: bytes };
  for (const [name, be] of backends) {
    const t = time(bnKernelStep(be, s), name === "reference" ? 3 : 25);
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

const raw = RawKernels.fromBase64(kernelsSimdBase64);
const rawGemm: Record<string, unknown>[] = [];
for (const g of gemmCases) {
  const t = time(raw.gemmStep(g));
  rawGemm.push({ case: g.label, gflops: (2 * g.M * g.N * g.K) / t.best / 1e9 });
}
const rawBn: Record<string, unknown>[] = [];
for (const s of bnCases) {
  const t = time(raw.bnStep(s));
  rawBn.push({ case: s.label, GBs: (9 * 4 * s.N * s.C * s.S) / t.best / 1e9 });
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
  memoryCopy: { bytes: copy.bytes, GBsReadPlusWrite: copyGBs, secondsPerCopy: copy.secondsPerCopy },
  sigmoid: sigmoidRow,
  simdKernelsWithoutCopies: { gemm: rawGemm, batchnorm: rawBn },
};
const dir = new URL("../../bench/results/", import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL("kernels.json", dir), JSON.stringify(results, null, 2) + "\n");
console.log(`\nwrote ${new URL("kernels.json", dir).pathname}`);
