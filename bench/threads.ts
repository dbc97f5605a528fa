/**
 * Where splitting a kernel between threads pays: GEMM (square n×n×n and the
 * §4.1 MLP's shapes) and one convolution's forward + backward, each timed on
 * one thread and on the team of a multi-threaded configuration, on the same
 * backend instance (minParallelWork set to ∞, then to 0). The smallest work
 * from which the split is at least 10% faster at every larger size measured
 * is the threshold the backend's DEFAULT_MIN_PARALLEL_WORK should sit near.
 */
import type { Window2d } from "../src/backend/index.js";
import type { WasmBackend } from "../src/backend/wasm/index.js";
import type { BackendConfig } from "./covshift.js";
import { random, time, type Effort } from "./measure.js";

export interface ThreadCase {
  case: string;
  /** Multiply-adds of one call. */
  work: number;
  msOneThread: number;
  msTeam: number;
  speedup: number;
}

export interface ThreadResults {
  config: string;
  threads: number;
  cases: ThreadCase[];
  /** Smallest work (multiply-adds) from which every larger measured case is ≥ 1.1× faster split; null if none. */
  threshold: number | null;
  /** The backend's default threshold, for comparison. */
  defaultMinParallelWork: number;
}

export function benchThreads(configs: BackendConfig[], effort: Effort, log: (s: string) => void): ThreadResults | null {
  const c = configs.filter((k) => k.threads > 1).sort((a, b) => (a.backend === "wasm-relaxed-simd" ? -1 : b.backend === "wasm-relaxed-simd" ? 1 : 0))[0];
  if (c === undefined) return null;
  const b = c.kernels as WasmBackend;
  const saved = b.minParallelWork;
  const cases: ThreadCase[] = [];
  const measure = (label: string, work: number, fn: () => void) => {
    log(`threads: ${label}`);
    b.minParallelWork = Infinity;
    const one = time(fn, effort.fast).best;
    b.minParallelWork = 0;
    const team = time(fn, effort.fast).best;
    cases.push({ case: label, work, msOneThread: one * 1e3, msTeam: team * 1e3, speedup: one / team });
  };
  try {
    for (const n of [16, 32, 48, 64, 96, 128, 192, 256, 384]) {
      const A = random(n * n, 1);
      const B = random(n * n, 2);
      const C = new Float32Array(n * n);
      measure(`GEMM ${n}³`, n * n * n, () => b.gemm(false, false, n, n, n, 1, A, B, 0, C));
    }
    for (const [label, M, N, K, tA, tB] of [
      ["GEMM 60×100×784 (MLP forward, layer 1)", 60, 100, 784, false, true],
      ["GEMM 100×784×60 (MLP ∂W, layer 1)", 100, 784, 60, true, false],
    ] as const) {
      const A = random(M * K, 3);
      const B = random(K * N, 4);
      const C = new Float32Array(M * N);
      measure(label, M * N * K, () => b.gemm(tA, tB, M, N, K, 1, A, B, 0, C));
    }
    for (const [N, Ch, S] of [
      [64, 8, 14],
      [64, 32, 16],
    ]) {
      const g: Window2d = { H: S, W: S, kh: 3, kw: 3, sh: 1, sw: 1, ph: 1, pw: 1, OH: S, OW: S };
      const K = Ch * 9;
      const x = random(N * Ch * S * S, 5);
      const w = random(Ch * K, 6);
      const y = new Float32Array(N * Ch * S * S);
      const gx = new Float32Array(N * Ch * S * S);
      const gw = new Float32Array(Ch * K);
      measure(`conv ${Ch}→${Ch} 3×3 on (${N}, ${Ch}, ${S}, ${S}), forward + backward`, 3 * N * Ch * K * S * S, () => {
        b.conv2dForward(x, w, null, y, N, Ch, Ch, g);
        b.conv2dBackward(x, w, y, gx, gw, null, N, Ch, Ch, g);
      });
    }
  } finally {
    b.minParallelWork = saved;
  }
  const sorted = [...cases].sort((p, q) => p.work - q.work);
  let threshold: number | null = null;
  for (let i = sorted.length - 1; i >= 0 && sorted[i].speedup >= 1.1; i--) threshold = sorted[i].work;
  return { config: c.label, threads: c.threads, cases, threshold, defaultMinParallelWork: saved };
}
