/**
 * What the benchmarks share: the timer (best of rounds after a warm-up), the
 * seeded inputs, the GEMM and BatchNorm cases at the paper's shapes, the BN
 * kernel sequence of one training step, the memory-copy bandwidth, and
 * operands placed directly in a kernels module's linear memory.
 *
 * Used by bench/kernels.ts (kernel micro-benchmark) and bench/index.ts
 * (`npm run bench`).
 */
import type { Backend } from "../src/backend/backend.js";
import type { KernelExports } from "../src/backend/wasm/backend.js";

export interface Timing {
  /** Best seconds per call over the rounds. */
  best: number;
  median: number;
  calls: number;
}

export interface TimeOptions {
  /** Timed rounds; each figure is the best of them. Default 25. */
  rounds?: number;
  /** A round repeats the call for at least this long. Default 0.025 s; 0 = one call per round. */
  roundSeconds?: number;
  /** Warm-up time before the rounds. Default 300 ms. */
  warmupMs?: number;
  /** At least this many warm-up calls, however long they take. Default 3. */
  warmupCalls?: number;
  /** Stop starting new rounds once the timed rounds have taken this long (at least one round runs). Default: no limit. */
  maxSeconds?: number;
}

/**
 * How long to measure. Every case runs with `fast` (rounds of several calls,
 * capped at maxSeconds, so a 100 ms call still gets a few rounds); `slow` is
 * for the conv layer step, whose reference-backend call takes seconds.
 */
export interface Effort {
  fast: TimeOptions;
  slow: TimeOptions;
  /** Timed Figure 1 evaluations (10,000 images each). */
  evalRounds: number;
}

export const efforts: Record<"quick" | "full", Effort> = {
  quick: {
    fast: { rounds: 5, roundSeconds: 0.02, warmupMs: 100, warmupCalls: 1, maxSeconds: 0.3 },
    // No warm-up call: a slow call (the reference backend's conv takes seconds) is its own warm-up; the second round, if any, is warm.
    slow: { rounds: 2, roundSeconds: 0, warmupMs: 0, warmupCalls: 0, maxSeconds: 1 },
    evalRounds: 1,
  },
  full: {
    fast: { rounds: 20, roundSeconds: 0.05, warmupMs: 400, maxSeconds: 3 },
    slow: { rounds: 5, roundSeconds: 0, warmupMs: 300, warmupCalls: 2, maxSeconds: 10 },
    evalRounds: 3,
  },
};

/**
 * Calls fn repeatedly: warm-up, then `rounds` rounds of at least
 * `roundSeconds` each. The warm-up is long enough by default for V8 to finish
 * compiling the optimized code (wasm tiers up in the background).
 * `time(fn, rounds, roundSeconds)` is kept as a shorthand.
 */
export function time(fn: () => void, roundsOrOptions: number | TimeOptions = {}, roundSeconds?: number): Timing {
  const o: TimeOptions = typeof roundsOrOptions === "number" ? { rounds: roundsOrOptions, roundSeconds } : roundsOrOptions;
  const rounds = o.rounds ?? 25;
  const roundMs = (o.roundSeconds ?? 0.025) * 1000;
  const warmEnd = performance.now() + (o.warmupMs ?? 300);
  const warmupCalls = o.warmupCalls ?? 3;
  let calls = 0;
  while (performance.now() < warmEnd || calls < warmupCalls) {
    fn();
    calls++;
  }
  const perCall: number[] = [];
  let total = 0;
  const deadline = performance.now() + (o.maxSeconds ?? Infinity) * 1000;
  for (let r = 0; r < rounds && (r === 0 || performance.now() < deadline); r++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    do {
      fn();
      n++;
      t = performance.now();
    } while (t - t0 < roundMs);
    perCall.push((t - t0) / 1000 / n);
    total += n;
  }
  perCall.sort((a, b) => a - b);
  return { best: perCall[0], median: perCall[perCall.length >> 1], calls: total };
}

/**
 * Best seconds per call of each function over rounds that alternate between
 * them (so the machine's load hits all alike), by the wall clock and by this
 * process's CPU time (which other jobs on a busy machine disturb less; one
 * thread, so the two agree when idle). Each is warmed up first.
 */
export function alternate(fns: (() => void)[], o: TimeOptions): { wall: number[]; cpu: number[] } {
  for (const f of fns) time(f, { ...o, rounds: 1 });
  const wall = fns.map(() => Infinity);
  const cpu = fns.map(() => Infinity);
  const roundMs = (o.roundSeconds ?? 0.05) * 1000;
  for (let r = 0; r < (o.rounds ?? 10); r++) {
    fns.forEach((f, i) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      let n = 0;
      do {
        f();
        n++;
      } while (performance.now() - t0 < roundMs);
      const c = process.cpuUsage(c0);
      wall[i] = Math.min(wall[i], (performance.now() - t0) / 1000 / n);
      cpu[i] = Math.min(cpu[i], (c.user + c.system) / 1e6 / n);
    });
  }
  return { wall, cpu };
}

/** n floats uniform in [−0.5, 0.5), from a fixed LCG: the same inputs every run. */
export function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

export interface GemmCase {
  label: string;
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
}

/**
 * The GEMMs of the §4.1 network's first Linear (batch 60, 784 → 100) as
 * ops/matmul.ts calls them, the 64×784×112 target shape and 256³.
 */
export const gemmCases: readonly GemmCase[] = [
  { label: "64×784×112 NN", transA: false, transB: false, M: 64, N: 112, K: 784 },
  { label: "Linear fwd x·Wᵀ NT", transA: false, transB: true, M: 60, N: 100, K: 784 },
  { label: "Linear dx = dy·W NN", transA: false, transB: false, M: 60, N: 784, K: 100 },
  { label: "Linear dW = dyᵀ·x TN", transA: true, transB: false, M: 100, N: 784, K: 60 },
  { label: "256³ NN", transA: false, transB: false, M: 256, N: 256, K: 256 },
];

export const gemmFlops = (g: GemmCase) => 2 * g.M * g.N * g.K;

/** C = op(A)·op(B) through a backend's gemm, on seeded operands: a closure over its buffers. */
export function gemmStep(be: Backend, g: GemmCase): () => void {
  const a = random(g.M * g.K, 1);
  const b = random(g.K * g.N, 2);
  const c = new Float32Array(g.M * g.N);
  return () => be.gemm(g.transA, g.transB, g.M, g.N, g.K, 1, a, b, 0, c);
}

export interface BnCase {
  label: string;
  N: number;
  C: number;
  /** Spatial extent H·W (1 for an (N, C) input). */
  S: number;
  /** The tensor's shape, for the ops layer. */
  shape: number[];
}

/** BN inputs: the §4.1 hidden layer (60, 100), and two convolutional feature maps. */
export const bnCases: readonly BnCase[] = [
  { label: "(60, 100)", N: 60, C: 100, S: 1, shape: [60, 100] },
  { label: "(128, 32, 16, 16)", N: 128, C: 32, S: 256, shape: [128, 32, 16, 16] },
  { label: "(64, 64, 32, 32)", N: 64, C: 64, S: 1024, shape: [64, 64, 32, 32] },
];

/**
 * One BN training step over (N, C, S) on a backend's kernels, as the op
 * layer runs it: moments, the affine pass, the two backward reductions, the
 * backward elementwise pass. Returns the step as a closure over its buffers.
 */
export function bnKernelStep(be: Backend, s: { N: number; C: number; S: number }): () => void {
  const n = s.N * s.C * s.S;
  const x = random(n, 4);
  const dy = random(n, 5);
  const y = new Float32Array(n);
  const dx = new Float32Array(n);
  const [mean, variance, scale, shift, sumDy, sumDyXmu, ka, kb, kk] = Array.from({ length: 9 }, () => new Float64Array(s.C));
  const m = s.N * s.S;
  return () => {
    be.channelMoments(x, s.N, s.C, s.S, mean, variance);
    for (let c = 0; c < s.C; c++) {
      scale[c] = 1 / Math.sqrt(variance[c] + 1e-5);
      shift[c] = 0;
    }
    be.channelAffine(x, y, s.N, s.C, s.S, mean, scale, shift);
    be.channelGradSums(x, dy, s.N, s.C, s.S, mean, sumDy, sumDyXmu);
    for (let c = 0; c < s.C; c++) {
      const invStd = scale[c];
      ka[c] = sumDy[c] / m;
      kb[c] = (sumDyXmu[c] / m) * invStd * invStd;
      kk[c] = invStd;
    }
    be.channelGradInput(x, dy, dx, s.N, s.C, s.S, mean, ka, kb, kk);
  };
}

/**
 * Memory-copy bandwidth: Float32Array.set of `bytes` (default 64 MiB, far
 * beyond the caches), counted as bytes read + bytes written.
 */
export function memoryCopy(options: TimeOptions = { rounds: 5, roundSeconds: 0.15 }, bytes = 64 * 2 ** 20) {
  const src = random(bytes / 4, 3);
  const dst = new Float32Array(bytes / 4);
  const t = time(() => dst.set(src), options);
  return { bytes, GBsReadPlusWrite: (2 * bytes) / t.best / 1e9, medianGBs: (2 * bytes) / t.median / 1e9, secondsPerCopy: t.best };
}

/**
 * A kernels module's exports with a bump allocator over its linear memory:
 * operands placed once and passed by offset, so kernels run without the
 * backend glue's copies in and out (what zero-copy tensor storage would give).
 */
export class RawKernels {
  private top: number;

  constructor(readonly k: KernelExports) {
    this.top = Math.ceil((k.heapBase() >>> 0) / 64) * 64;
  }

  /** Loads the base64 bytes of a kernels build (src/backend/wasm/generated/*). */
  static fromBase64(base64: string): RawKernels {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const memory = new WebAssembly.Memory({ initial: 1 });
    return new RawKernels(new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as unknown as KernelExports);
  }

  /** A fresh region of `bytes` in linear memory, filled with small random floats (never freed). */
  place(bytes: number): number {
    const p = this.top;
    this.top += Math.ceil(bytes / 64) * 64;
    const short = this.top - this.k.memory.buffer.byteLength;
    if (short > 0) this.k.memory.grow(Math.ceil(short / 65536));
    new Float32Array(this.k.memory.buffer, p, bytes / 4).set(random(bytes / 4, p));
    return p;
  }

  /** C = op(A)·op(B) on operands already in linear memory. */
  gemmStep(g: GemmCase): () => void {
    const [pa, pb, pc] = [this.place(g.M * g.K * 4), this.place(g.K * g.N * 4), this.place(g.M * g.N * 4)];
    const work = this.place(this.k.gemmWorkspaceBytes(g.M, g.N, g.K) >>> 0);
    return () => this.k.gemm(g.transA, g.transB, g.M, g.N, g.K, 1, pa, pb, 0, pc, work);
  }

  /** The four BN kernels of a training step on operands already in linear memory. */
  bnStep(s: { N: number; C: number; S: number }): () => void {
    const n = s.N * s.C * s.S;
    const k = this.k;
    const [x, y, dy] = [this.place(4 * n), this.place(4 * n), this.place(4 * n)];
    const [mean, variance, sumDy, sumDyXmu, a, b, kc] = Array.from({ length: 7 }, () => this.place(8 * s.C));
    const work = this.place(k.batchNormWorkspaceBytes(s.C) >>> 0);
    // Moderate coefficients (0.5), so no pass runs into subnormal arithmetic.
    for (const p of [a, b, kc]) new Float64Array(k.memory.buffer, p, s.C).fill(0.5);
    return () => {
      k.channelMoments(x, s.N, s.C, s.S, mean, variance);
      k.channelAffine(x, y, s.N, s.C, s.S, mean, a, b, work);
      k.channelGradSums(x, dy, s.N, s.C, s.S, mean, sumDy, sumDyXmu);
      k.channelGradInput(x, dy, y, s.N, s.C, s.S, mean, a, b, kc, work);
    };
  }
}
