import type { Backend, PoolWindows, Window2d } from "../backend.js";
import type { Storage, StorageAllocator } from "../storage.js";
import { Arena } from "./arena.js";
import { controlBytes, splitRange, ThreadTeam, type ThreadSpawner } from "./threads.js";
import type { LinearMemory } from "./linearMemory.js";

/** Which build of the kernels: with relaxed SIMD (fused multiply-add), plain SIMD, or scalar. */
export type WasmVariant = "relaxed-simd" | "simd" | "scalar";

/** The wasm backend: the Backend kernels, plus the build that runs them. */
export interface WasmBackend extends Backend {
  /** The build: "wasm-relaxed-simd", "wasm-simd" or "wasm-scalar" (each also selectable as "wasm"). */
  readonly name: `wasm-${WasmVariant}`;
  readonly variant: WasmVariant;
  /** Whether linear memory is shared: then the tensors of training steps live in it (zero-copy). */
  readonly sharedMemory: boolean;
  /** Bytes of linear memory in use past the static data (tensor storage and kernel scratch), for diagnostics. */
  linearMemoryBytesInUse(): number;
  /** Threads that share the large kernels (this one included); 1 until startThreads(). */
  readonly threads: number;
  /**
   * The smallest kernel, in multiply-adds, that is split between the threads
   * (smaller ones run on the calling thread alone, where waking the others
   * would cost more than it saves). See DEFAULT_MIN_PARALLEL_WORK.
   */
  minParallelWork: number;
  /**
   * Share the large kernels (GEMM, convolution) between `count` threads:
   * this one and count − 1 workers started by `spawn`, each running
   * runKernelThread (src/node/wasmThreads.ts starts them in Node). Needs the
   * shared memory. Results keep their bits whatever the count. Replaces any
   * earlier team; count 1 stops it.
   */
  startThreads(count: number, spawn: ThreadSpawner): Promise<void>;
  /** Back to one thread; the workers end. */
  stopThreads(): void;
}

/**
 * Kernels below this many multiply-adds run on one thread: measured with
 * `npm run bench -- --only threads` on a 2-core machine (see the README), a
 * dispatch to a sleeping worker costs tens of microseconds.
 */
export const DEFAULT_MIN_PARALLEL_WORK = 1 << 21;

/** What one backend instance owns besides its kernels' exports. */
export interface WasmBackendContext {
  heap: LinearMemory;
  /** The compiled module, for worker threads to instantiate over the same memory. */
  module: WebAssembly.Module;
  /** Present with a shared memory: tensor storage in linear memory. */
  storage?: StorageAllocator;
}

/**
 * The exports of the kernels module (assembly/index.ts). Pointers are byte
 * offsets into `memory`; booleans travel as i32.
 */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  gemmWorkspaceBytes(M: number, N: number, K: number): number;
  gemmBlock(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    a: number,
    b: number,
    beta: number,
    c: number,
    work: number,
    m0: number,
    m1: number,
    n0: number,
    n1: number,
  ): void;
  gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    a: number,
    b: number,
    beta: number,
    c: number,
    work: number,
  ): void;
  batchNormWorkspaceBytes(C: number): number;
  channelMoments(x: number, N: number, C: number, S: number, mean: number, variance: number): void;
  channelAffine(x: number, y: number, N: number, C: number, S: number, center: number, scale: number, shift: number, work: number): void;
  channelGradSums(x: number, dy: number, N: number, C: number, S: number, mean: number, sumDy: number, sumDyXmu: number): void;
  channelGradInput(
    x: number,
    dy: number,
    dx: number,
    N: number,
    C: number,
    S: number,
    mean: number,
    a: number,
    b: number,
    k: number,
    work: number,
  ): void;
  im2col(
    x: number,
    C: number,
    H: number,
    W: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    ph: number,
    pw: number,
    OH: number,
    OW: number,
    cols: number,
    work: number,
  ): void;
  im2colWorkspaceBytes(C: number, H: number, W: number, ph: number, pw: number): number;
  col2im(
    cols: number,
    C: number,
    H: number,
    W: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    ph: number,
    pw: number,
    OH: number,
    OW: number,
    dx: number,
    work: number,
  ): void;
  conv2dWorkspaceBytes(C: number, H: number, W: number, kh: number, kw: number, ph: number, pw: number, O: number, OH: number, OW: number): number;
  conv2dForward(
    x: number,
    weight: number,
    bias: number,
    y: number,
    N: number,
    C: number,
    H: number,
    W: number,
    O: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    ph: number,
    pw: number,
    OH: number,
    OW: number,
    work: number,
    n0: number,
    n1: number,
  ): void;
  conv2dBackward(
    x: number,
    weight: number,
    gy: number,
    gx: number,
    gw: number,
    gb: number,
    N: number,
    C: number,
    H: number,
    W: number,
    O: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    ph: number,
    pw: number,
    OH: number,
    OW: number,
    work: number,
    n0: number,
    n1: number,
    o0: number,
    o1: number,
  ): void;
  maxPool2dForward(
    x: number,
    y: number,
    argmax: number,
    planes: number,
    H: number,
    W: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    ph: number,
    pw: number,
    OH: number,
    OW: number,
    work: number,
  ): void;
  maxPool2dWorkspaceBytes(H: number, W: number, kw: number, sw: number, ph: number, pw: number, OW: number): number;
  /** Returns the number of argmax entries outside [0, H·W) (skipped). */
  maxPool2dBackward(gy: number, argmax: number, gx: number, planes: number, H: number, W: number, OH: number, OW: number): number;
  avgPool2dWorkspaceBytes(H: number, OW: number): number;
  avgPool2dForward(x: number, y: number, planes: number, H: number, W: number, OH: number, OW: number, rows: number, cols: number, work: number): void;
  avgPool2dBackward(gy: number, gx: number, planes: number, H: number, W: number, OH: number, OW: number, rows: number, cols: number, work: number): void;
  addRowVector(x: number, bias: number, y: number, rows: number, cols: number): void;
  sumRowsWorkspaceBytes(cols: number): number;
  sumRows(g: number, rows: number, cols: number, out: number, work: number): void;
  sigmoid(x: number, y: number, n: number): void;
  sigmoidBackward(y: number, dy: number, dx: number, n: number): void;
  relu(x: number, y: number, n: number): void;
  reluBackward(x: number, dy: number, dx: number, n: number): void;
  softmaxCrossEntropy(logits: number, targets: number, N: number, C: number, probs: number): number;
  addInPlace(dst: number, src: number, n: number): void;
  countNonFinite(x: number, n: number): number;
  sgdStep(
    param: number,
    grad: number,
    velocity: number,
    n: number,
    firstStep: boolean,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
  ): void;
}

/**
 * The Backend over one instance of the kernels module. Each call places its
 * operands with the arena: storage that lives in linear memory (allocated
 * there by the storage allocator, see index.ts) is used in place, anything
 * else is copied in and the results copied out. The convolution and pooling
 * kernels take the whole batch in one call, so their intermediates (column
 * matrices, padded planes) never leave linear memory.
 */
export function createWasmBackend(k: KernelExports, variant: WasmVariant, context: WasmBackendContext): WasmBackend {
  const { heap, module, storage } = context;
  const arena = new Arena(heap);
  let team: ThreadTeam | null = null;
  let teamControl = { p: 0, bytes: 0 };
  let minParallelWork = DEFAULT_MIN_PARALLEL_WORK;
  /** The threads a kernel of `work` multiply-adds is split between. */
  const teamFor = (work: number): number => (team !== null && work >= minParallelWork ? team.size : 1);

  return {
    name: `wasm-${variant}`,
    variant,
    sharedMemory: heap.shared,
    storage,
    linearMemoryBytesInUse: () => heap.bytesInUse(),

    get threads() {
      return team?.size ?? 1;
    },

    get minParallelWork() {
      return minParallelWork;
    },

    set minParallelWork(value: number) {
      if (!(value >= 0)) throw new RangeError(`wasm backend: minParallelWork must be a number of multiply-adds ≥ 0; got ${value}`);
      minParallelWork = value;
    },

    async startThreads(count, spawn) {
      if (!Number.isInteger(count) || count < 1) throw new RangeError(`wasm backend: the thread count must be an integer ≥ 1; got ${count}`);
      if (count > 1 && !heap.shared) {
        throw new Error("wasm backend: threads need the shared memory (initWasmBackend({ sharedMemory: true }); in browsers a cross-origin-isolated page)");
      }
      this.stopThreads();
      if (count === 1) return;
      const bytes = controlBytes(count);
      const p = heap.allocate(bytes);
      try {
        team = await ThreadTeam.start(module, heap.memory, p, count, spawn);
        teamControl = { p, bytes };
      } catch (err) {
        heap.release(p, bytes);
        throw err;
      }
    },

    stopThreads() {
      if (team === null) return;
      team.stop();
      team = null;
      heap.release(teamControl.p, teamControl.bytes);
    },

    gemm(transA, transB, M, N, K, alpha, a, b, beta, c) {
      const fa = f32(a, "gemm", "a");
      const fb = f32(b, "gemm", "b");
      const fc = f32(c, "gemm", "c");
      if (M <= 0 || N <= 0) return;
      need(fa, M * K, "gemm", "a", `op(A) of ${M}×${K}`);
      need(fb, K * N, "gemm", "b", `op(B) of ${K}×${N}`);
      need(fc, M * N, "gemm", "c", `C of ${M}×${N}`);
      arena.reset();
      const pa = arena.input(fa, M * K);
      const pb = arena.input(fb, K * N);
      // beta = 0 never reads C, so it need not be copied in.
      const pc = beta === 0 ? arena.target(fc, M * N) : arena.update(fc, M * N);
      const workBytes = k.gemmWorkspaceBytes(M, N, K) >>> 0;
      const T = teamFor(M * N * K);
      if (team === null || T === 1) {
        k.gemm(transA, transB, M, N, K, alpha, pa, pb, beta, pc, arena.alloc(workBytes));
      } else {
        // Split the longer side of C (on tile boundaries: 4 rows, 8 columns); each thread packs the other operand whole.
        const byColumns = N >= M;
        const ranges = splitRange(byColumns ? N : M, T, byColumns ? 8 : 4);
        const shares = ranges.map(([s, e]) => {
          const [m0, m1, n0, n1] = byColumns ? [0, M, s, e] : [s, e, 0, N];
          return [+transA, +transB, M, N, K, alpha, pa, pb, beta, pc, arena.alloc(workBytes), m0, m1, n0, n1];
        });
        team.run("gemmBlock", shares, k.gemmBlock as unknown as (...a: number[]) => void);
      }
      arena.output(pc, fc, M * N);
    },

    addRowVector(x, bias, y, rows, cols) {
      const fx = f32(x, "addRowVector", "x");
      const fb = f32(bias, "addRowVector", "bias");
      const fy = f32(y, "addRowVector", "y");
      const n = rows * cols;
      need(fx, n, "addRowVector", "x", `a ${rows}×${cols} matrix`);
      need(fb, cols, "addRowVector", "bias", `${cols} columns`);
      need(fy, n, "addRowVector", "y", `a ${rows}×${cols} matrix`);
      arena.reset();
      const px = arena.input(fx, n);
      const pb = arena.input(fb, cols);
      const py = arena.target(fy, n);
      k.addRowVector(px, pb, py, rows, cols);
      arena.output(py, fy, n);
    },

    sumRows(g, rows, cols, out) {
      const fg = f32(g, "sumRows", "g");
      const fo = f32(out, "sumRows", "out");
      need(fg, rows * cols, "sumRows", "g", `a ${rows}×${cols} matrix`);
      need(fo, cols, "sumRows", "out", `${cols} columns`);
      arena.reset();
      const pg = arena.input(fg, rows * cols);
      const po = arena.target(fo, cols);
      const work = arena.alloc(k.sumRowsWorkspaceBytes(cols) >>> 0);
      k.sumRows(pg, rows, cols, po, work);
      arena.output(po, fo, cols);
    },

    channelMoments(x, N, C, S, mean, variance) {
      const fx = f32(x, "channelMoments", "x");
      need(fx, N * C * S, "channelMoments", "x", `(N, C, S) = (${N}, ${C}, ${S})`);
      arena.reset();
      const px = arena.input(fx, N * C * S);
      const pm = arena.alloc(C * 8);
      const pv = arena.alloc(C * 8);
      k.channelMoments(px, N, C, S, pm, pv);
      arena.outputF64(pm, mean, C);
      arena.outputF64(pv, variance, C);
    },

    channelAffine(x, y, N, C, S, center, scale, shift) {
      const fx = f32(x, "channelAffine", "x");
      const fy = f32(y, "channelAffine", "y");
      const n = N * C * S;
      need(fx, n, "channelAffine", "x", `(N, C, S) = (${N}, ${C}, ${S})`);
      need(fy, n, "channelAffine", "y", `(N, C, S) = (${N}, ${C}, ${S})`);
      arena.reset();
      const px = arena.input(fx, n);
      const pc = arena.inputF64(center, C);
      const ps = arena.inputF64(scale, C);
      const pt = arena.inputF64(shift, C);
      const py = arena.target(fy, n);
      const work = arena.alloc(k.batchNormWorkspaceBytes(C) >>> 0);
      k.channelAffine(px, py, N, C, S, pc, ps, pt, work);
      arena.output(py, fy, n);
    },

    channelGradSums(x, dy, N, C, S, mean, sumDy, sumDyXmu) {
      const fx = f32(x, "channelGradSums", "x");
      const fg = f32(dy, "channelGradSums", "dy");
      const n = N * C * S;
      need(fx, n, "channelGradSums", "x", `(N, C, S) = (${N}, ${C}, ${S})`);
      need(fg, n, "channelGradSums", "dy", `(N, C, S) = (${N}, ${C}, ${S})`);
      arena.reset();
      const px = arena.input(fx, n);
      const pg = arena.input(fg, n);
      const pm = arena.inputF64(mean, C);
      const ps = arena.alloc(C * 8);
      const pd = arena.alloc(C * 8);
      k.channelGradSums(px, pg, N, C, S, pm, ps, pd);
      arena.outputF64(ps, sumDy, C);
      arena.outputF64(pd, sumDyXmu, C);
    },

    channelGradInput(x, dy, dx, N, C, S, mean, a, b, kc) {
      const fx = f32(x, "channelGradInput", "x");
      const fg = f32(dy, "channelGradInput", "dy");
      const fd = f32(dx, "channelGradInput", "dx");
      const n = N * C * S;
      need(fx, n, "channelGradInput", "x", `(N, C, S) = (${N}, ${C}, ${S})`);
      need(fg, n, "channelGradInput", "dy", `(N, C, S) = (${N}, ${C}, ${S})`);
      need(fd, n, "channelGradInput", "dx", `(N, C, S) = (${N}, ${C}, ${S})`);
      arena.reset();
      const px = arena.input(fx, n);
      const pg = arena.input(fg, n);
      const pm = arena.inputF64(mean, C);
      const pa = arena.inputF64(a, C);
      const pb = arena.inputF64(b, C);
      const pk = arena.inputF64(kc, C);
      const pd = arena.target(fd, n);
      const work = arena.alloc(k.batchNormWorkspaceBytes(C) >>> 0);
      k.channelGradInput(px, pg, pd, N, C, S, pm, pa, pb, pk, work);
      arena.output(pd, fd, n);
    },

    im2col(x, C, g, cols) {
      const fx = f32(x, "im2col", "x");
      const fc = f32(cols, "im2col", "cols");
      checkWindow("im2col", g);
      const K = C * g.kh * g.kw;
      const L = g.OH * g.OW;
      need(fx, C * g.H * g.W, "im2col", "x", `(C, H, W) = (${C}, ${g.H}, ${g.W})`);
      need(fc, K * L, "im2col", "cols", `(C·kh·kw, OH·OW) = (${K}, ${L})`);
      arena.reset();
      const px = arena.input(fx, C * g.H * g.W);
      const pc = arena.target(fc, K * L);
      const work = arena.alloc(k.im2colWorkspaceBytes(C, g.H, g.W, g.ph, g.pw) >>> 0);
      k.im2col(px, C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW, pc, work);
      arena.output(pc, fc, K * L);
    },

    col2im(cols, C, g, dx) {
      const fc = f32(cols, "col2im", "cols");
      const fd = f32(dx, "col2im", "dx");
      checkWindow("col2im", g);
      const K = C * g.kh * g.kw;
      const L = g.OH * g.OW;
      const n = C * g.H * g.W;
      need(fc, K * L, "col2im", "cols", `(C·kh·kw, OH·OW) = (${K}, ${L})`);
      need(fd, n, "col2im", "dx", `(C, H, W) = (${C}, ${g.H}, ${g.W})`);
      arena.reset();
      const pc = arena.input(fc, K * L);
      const pd = arena.update(fd, n);
      const work = arena.alloc(k.im2colWorkspaceBytes(C, g.H, g.W, g.ph, g.pw) >>> 0);
      k.col2im(pc, C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW, pd, work);
      arena.output(pd, fd, n);
    },

    conv2dForward(x, weight, bias, y, N, C, O, g) {
      const fx = f32(x, "conv2dForward", "x");
      const fw = f32(weight, "conv2dForward", "weight");
      const fb = bias === null ? null : f32(bias, "conv2dForward", "bias");
      const fy = f32(y, "conv2dForward", "y");
      checkWindow("conv2dForward", g);
      const K = C * g.kh * g.kw;
      const L = g.OH * g.OW;
      need(fx, N * C * g.H * g.W, "conv2dForward", "x", `(N, C, H, W) = (${N}, ${C}, ${g.H}, ${g.W})`);
      need(fw, O * K, "conv2dForward", "weight", `(O, C, kh, kw) = (${O}, ${C}, ${g.kh}, ${g.kw})`);
      if (fb !== null) need(fb, O, "conv2dForward", "bias", `${O} output channels`);
      need(fy, N * O * L, "conv2dForward", "y", `(N, O, OH, OW) = (${N}, ${O}, ${g.OH}, ${g.OW})`);
      arena.reset();
      const px = arena.input(fx, N * C * g.H * g.W);
      const pw = arena.input(fw, O * K);
      const pb = fb === null ? 0 : arena.input(fb, O);
      const py = arena.target(fy, N * O * L);
      const workBytes = k.conv2dWorkspaceBytes(C, g.H, g.W, g.kh, g.kw, g.ph, g.pw, O, g.OH, g.OW) >>> 0;
      const T = N > 1 ? teamFor(N * O * K * L) : 1;
      if (team === null || T === 1) {
        k.conv2dForward(px, pw, pb, py, N, C, g.H, g.W, O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW, arena.alloc(workBytes), 0, N);
      } else {
        // Each thread convolves its own images.
        const shares = splitRange(N, T, 1).map(([n0, n1]) => [
          px, pw, pb, py, N, C, g.H, g.W, O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW, arena.alloc(workBytes), n0, n1,
        ]);
        team.run("conv2dForward", shares, k.conv2dForward as (...a: number[]) => void);
      }
      arena.output(py, fy, N * O * L);
    },

    conv2dBackward(x, weight, gy, gx, gw, gb, N, C, O, g) {
      const fw = f32(weight, "conv2dBackward", "weight");
      const fg = f32(gy, "conv2dBackward", "gy");
      const fgx = gx === null ? null : f32(gx, "conv2dBackward", "gx");
      const fgw = gw === null ? null : f32(gw, "conv2dBackward", "gw");
      const fgb = gb === null ? null : f32(gb, "conv2dBackward", "gb");
      if (fgw !== null && x === null) throw new TypeError("wasm backend: conv2dBackward: the weight gradient needs the input x");
      const fx = fgw === null ? null : f32(x!, "conv2dBackward", "x");
      checkWindow("conv2dBackward", g);
      const K = C * g.kh * g.kw;
      const L = g.OH * g.OW;
      const nx = N * C * g.H * g.W;
      const input = `(N, C, H, W) = (${N}, ${C}, ${g.H}, ${g.W})`;
      need(fg, N * O * L, "conv2dBackward", "gy", `(N, O, OH, OW) = (${N}, ${O}, ${g.OH}, ${g.OW})`);
      if (fgx !== null) need(fw, O * K, "conv2dBackward", "weight", `(O, C, kh, kw) = (${O}, ${C}, ${g.kh}, ${g.kw})`);
      if (fgx !== null) need(fgx, nx, "conv2dBackward", "gx", input);
      if (fx !== null) need(fx, nx, "conv2dBackward", "x", input);
      if (fgw !== null) need(fgw, O * K, "conv2dBackward", "gw", `(O, C, kh, kw) = (${O}, ${C}, ${g.kh}, ${g.kw})`);
      if (fgb !== null) need(fgb, O, "conv2dBackward", "gb", `${O} output channels`);
      if (fgx === null && fgw === null && fgb === null) return;
      arena.reset();
      // Only what the wanted gradients read is copied in: x for gw, the weight for gx.
      const px = fx === null ? 0 : arena.input(fx, nx);
      const pw = fgx === null ? 0 : arena.input(fw, O * K);
      const pg = arena.input(fg, N * O * L);
      const pgx = fgx === null ? 0 : arena.target(fgx, nx);
      const pgw = fgw === null ? 0 : arena.target(fgw, O * K);
      const pgb = fgb === null ? 0 : arena.target(fgb, O);
      const workBytes = fgx === null && fgw === null ? 0 : k.conv2dWorkspaceBytes(C, g.H, g.W, g.kh, g.kw, g.ph, g.pw, O, g.OH, g.OW) >>> 0;
      const T = teamFor(2 * N * O * K * L);
      if (team === null || T === 1) {
        const work = workBytes === 0 ? 0 : arena.alloc(workBytes);
        k.conv2dBackward(px, pw, pg, pgx, pgw, pgb, N, C, g.H, g.W, O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW, work, 0, N, 0, O);
      } else {
        // Each thread: ∂x of its own images, and its rows of ∂W and ∂b summed over every image (so no thread's sum depends on another's).
        const images = splitRange(N, T, 1);
        const rows = splitRange(O, T, 4);
        const shares = images.map(([n0, n1], t) => [
          px, pw, pg, pgx, pgw, pgb, N, C, g.H, g.W, O, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW,
          workBytes === 0 ? 0 : arena.alloc(workBytes), n0, n1, rows[t][0], rows[t][1],
        ]);
        team.run("conv2dBackward", shares, k.conv2dBackward as (...a: number[]) => void);
      }
      if (fgx !== null) arena.output(pgx, fgx, nx);
      if (fgw !== null) arena.output(pgw, fgw, O * K);
      if (fgb !== null) arena.output(pgb, fgb, O);
    },

    maxPool2dForward(x, y, argmax, planes, g) {
      const fx = f32(x, "maxPool2dForward", "x");
      const fy = f32(y, "maxPool2dForward", "y");
      checkWindow("maxPool2dForward", g);
      const nx = planes * g.H * g.W;
      const ny = planes * g.OH * g.OW;
      need(fx, nx, "maxPool2dForward", "x", `${planes} planes of ${g.H}×${g.W}`);
      need(fy, ny, "maxPool2dForward", "y", `${planes} planes of ${g.OH}×${g.OW}`);
      need(argmax, ny, "maxPool2dForward", "argmax", `${planes} planes of ${g.OH}×${g.OW}`);
      arena.reset();
      const px = arena.input(fx, nx);
      const py = arena.target(fy, ny);
      const pa = arena.targetI32(argmax, ny);
      const work = arena.alloc(k.maxPool2dWorkspaceBytes(g.H, g.W, g.kw, g.sw, g.ph, g.pw, g.OW) >>> 0);
      k.maxPool2dForward(px, py, pa, planes, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW, work);
      arena.output(py, fy, ny);
      arena.outputI32(pa, argmax, ny);
    },

    maxPool2dBackward(gy, argmax, gx, planes, g) {
      const fg = f32(gy, "maxPool2dBackward", "gy");
      const fd = f32(gx, "maxPool2dBackward", "gx");
      const HW = g.H * g.W;
      const ny = planes * g.OH * g.OW;
      need(fg, ny, "maxPool2dBackward", "gy", `${planes} planes of ${g.OH}×${g.OW}`);
      need(argmax, ny, "maxPool2dBackward", "argmax", `${planes} planes of ${g.OH}×${g.OW}`);
      need(fd, planes * HW, "maxPool2dBackward", "gx", `${planes} planes of ${g.H}×${g.W}`);
      arena.reset();
      const pg = arena.input(fg, ny);
      const pa = arena.inputI32(argmax, ny);
      const pd = arena.target(fd, planes * HW);
      // The kernel skips (and counts) indices outside the plane rather than write into another one.
      const bad = k.maxPool2dBackward(pg, pa, pd, planes, g.H, g.W, g.OH, g.OW);
      if (bad !== 0) {
        const i = argmax.findIndex((a, j) => j < ny && !(a >= 0 && a < HW));
        throw new RangeError(`wasm backend: maxPool2dBackward: argmax[${i}] = ${argmax[i]} is not an index in a ${g.H}×${g.W} plane (${bad} such entries)`);
      }
      arena.output(pd, fd, planes * HW);
    },

    avgPool2dForward(x, y, planes, w) {
      const fx = f32(x, "avgPool2dForward", "x");
      const fy = f32(y, "avgPool2dForward", "y");
      checkPoolWindows("avgPool2dForward", w);
      const nx = planes * w.H * w.W;
      const ny = planes * w.OH * w.OW;
      need(fx, nx, "avgPool2dForward", "x", `${planes} planes of ${w.H}×${w.W}`);
      need(fy, ny, "avgPool2dForward", "y", `${planes} planes of ${w.OH}×${w.OW}`);
      arena.reset();
      const px = arena.input(fx, nx);
      const pr = arena.inputI32(w.rows, 3 * w.OH);
      const pc = arena.inputI32(w.cols, 3 * w.OW);
      const py = arena.target(fy, ny);
      const work = arena.alloc(k.avgPool2dWorkspaceBytes(w.H, w.OW) >>> 0);
      k.avgPool2dForward(px, py, planes, w.H, w.W, w.OH, w.OW, pr, pc, work);
      arena.output(py, fy, ny);
    },

    avgPool2dBackward(gy, gx, planes, w) {
      const fg = f32(gy, "avgPool2dBackward", "gy");
      const fd = f32(gx, "avgPool2dBackward", "gx");
      checkPoolWindows("avgPool2dBackward", w);
      const nx = planes * w.H * w.W;
      const ny = planes * w.OH * w.OW;
      need(fg, ny, "avgPool2dBackward", "gy", `${planes} planes of ${w.OH}×${w.OW}`);
      need(fd, nx, "avgPool2dBackward", "gx", `${planes} planes of ${w.H}×${w.W}`);
      arena.reset();
      const pg = arena.input(fg, ny);
      const pr = arena.inputI32(w.rows, 3 * w.OH);
      const pc = arena.inputI32(w.cols, 3 * w.OW);
      const pd = arena.target(fd, nx);
      const work = arena.alloc(k.avgPool2dWorkspaceBytes(w.H, w.OW) >>> 0);
      k.avgPool2dBackward(pg, pd, planes, w.H, w.W, w.OH, w.OW, pr, pc, work);
      arena.output(pd, fd, nx);
    },

    sigmoid(x, y) {
      unary(x, y, "sigmoid", "x", "y", k.sigmoid);
    },

    sigmoidBackward(y, dy, dx) {
      binary(y, dy, dx, "sigmoidBackward", "y", k.sigmoidBackward);
    },

    relu(x, y) {
      unary(x, y, "relu", "x", "y", k.relu);
    },

    reluBackward(x, dy, dx) {
      binary(x, dy, dx, "reluBackward", "x", k.reluBackward);
    },

    softmaxCrossEntropy(logits, targets, N, C, probs) {
      const fl = f32(logits, "softmaxCrossEntropy", "logits");
      const fp = f32(probs, "softmaxCrossEntropy", "probs");
      need(fl, N * C, "softmaxCrossEntropy", "logits", `(N, C) = (${N}, ${C})`);
      need(fp, N * C, "softmaxCrossEntropy", "probs", `(N, C) = (${N}, ${C})`);
      if (targets.length < N) {
        throw new RangeError(`softmaxCrossEntropy: targets holds ${targets.length} class indices; ${N} rows need ${N}`);
      }
      // The kernel reads logits[n, t_n] unchecked: an index out of range would read another row.
      for (let n = 0; n < N; n++) {
        const t = targets[n];
        if (!(t >= 0 && t < C)) {
          throw new RangeError(`softmaxCrossEntropy: target ${t} of row ${n} is not a class index in [0, ${C})`);
        }
      }
      arena.reset();
      const pl = arena.input(fl, N * C);
      const pt = arena.inputI32(targets, N);
      const pp = arena.target(fp, N * C);
      const loss = k.softmaxCrossEntropy(pl, pt, N, C, pp);
      arena.output(pp, fp, N * C);
      return loss;
    },

    addInPlace(dst, src) {
      const fd = f32(dst, "addInPlace", "dst");
      const fs = f32(src, "addInPlace", "src");
      const n = fd.length;
      need(fs, n, "addInPlace", "src", `${n} elements, as dst`);
      arena.reset();
      const pd = arena.update(fd, n);
      const ps = arena.input(fs, n);
      k.addInPlace(pd, ps, n);
      arena.output(pd, fd, n);
    },

    countNonFinite(x) {
      const fx = f32(x, "countNonFinite", "x");
      arena.reset();
      return k.countNonFinite(arena.input(fx, fx.length), fx.length);
    },

    sgdStep(param, grad, velocity, firstStep, lr, momentum, dampening, weightDecay, nesterov) {
      const fp = f32(param, "sgdStep", "param");
      const fg = f32(grad, "sgdStep", "grad");
      const fv = velocity === null ? null : f32(velocity, "sgdStep", "velocity");
      const n = fp.length;
      need(fg, n, "sgdStep", "grad", `${n} parameters`);
      if (fv !== null) need(fv, n, "sgdStep", "velocity", `${n} parameters`);
      arena.reset();
      const pp = arena.update(fp, n);
      const pg = arena.input(fg, n);
      // A first step overwrites the velocity without reading it.
      const pv = fv === null ? 0 : firstStep ? arena.target(fv, n) : arena.update(fv, n);
      k.sgdStep(pp, pg, pv, n, firstStep, lr, momentum, dampening, weightDecay, nesterov);
      arena.output(pp, fp, n);
      if (fv !== null) arena.output(pv, fv, n);
    },
  };

  /** y = f(x) over x.length elements. */
  function unary(x: Storage, y: Storage, kernel: string, xName: string, yName: string, f: (x: number, y: number, n: number) => void): void {
    const fx = f32(x, kernel, xName);
    const fy = f32(y, kernel, yName);
    const n = fx.length;
    need(fy, n, kernel, yName, `${n} elements, as ${xName}`);
    arena.reset();
    const px = arena.input(fx, n);
    const py = arena.target(fy, n);
    f(px, py, n);
    arena.output(py, fy, n);
  }

  /** dx = f(u, dy) over u.length elements. */
  function binary(
    u: Storage,
    dy: Storage,
    dx: Storage,
    kernel: string,
    uName: string,
    f: (u: number, dy: number, dx: number, n: number) => void,
  ): void {
    const fu = f32(u, kernel, uName);
    const fg = f32(dy, kernel, "dy");
    const fd = f32(dx, kernel, "dx");
    const n = fu.length;
    need(fg, n, kernel, "dy", `${n} elements, as ${uName}`);
    need(fd, n, kernel, "dx", `${n} elements, as ${uName}`);
    arena.reset();
    const pu = arena.input(fu, n);
    const pg = arena.input(fg, n);
    const pd = arena.target(fd, n);
    f(pu, pg, pd, n);
    arena.output(pd, fd, n);
  }
}

/** The storage as float32, or an error that says where float64 should have gone. */
function f32(s: Storage, kernel: string, name: string): Float32Array {
  if (s instanceof Float32Array) return s;
  throw new TypeError(
    `wasm backend: ${kernel} got ${s?.constructor?.name ?? typeof s} storage for '${name}'; it computes float32 only. ` +
      `float64 tensors must run on the reference backend (backendFor("float64") returns it).`,
  );
}

/**
 * The window must be one the kernels can run: positive sizes and strides,
 * padding ≥ 0, and OH×OW the positions it really has (the kernels index by
 * them unchecked).
 */
function checkWindow(kernel: string, g: Window2d): void {
  const { H, W, kh, kw, sh, sw, ph, pw, OH, OW } = g;
  const ints = [H, W, kh, kw, sh, sw, ph, pw, OH, OW];
  const ok =
    ints.every((v) => Number.isInteger(v) && v >= 0) &&
    Math.min(H, W, kh, kw, sh, sw) >= 1 &&
    OH === Math.floor((H + 2 * ph - kh) / sh) + 1 &&
    OW === Math.floor((W + 2 * pw - kw) / sw) + 1 &&
    OH >= 1 &&
    OW >= 1;
  if (!ok) throw new RangeError(`wasm backend: ${kernel}: inconsistent window ${JSON.stringify(g)}`);
}

/** Every window of the tables must be non-empty and inside the plane, with a positive divisor. */
function checkPoolWindows(kernel: string, w: PoolWindows): void {
  const check = (t: Int32Array, n: number, size: number, axis: string): void => {
    if (t.length < 3 * n) throw new RangeError(`wasm backend: ${kernel}: the ${axis} table holds ${t.length} entries; ${n} windows need ${3 * n}`);
    for (let o = 0; o < n; o++) {
      const [s, e, d] = [t[3 * o], t[3 * o + 1], t[3 * o + 2]];
      if (!(s >= 0 && s < e && e <= size && d > 0)) {
        throw new RangeError(`wasm backend: ${kernel}: ${axis} window ${o} is [${s}, ${e}) with divisor ${d}; windows must be non-empty inside [0, ${size})`);
      }
    }
  };
  check(w.rows, w.OH, w.H, "row");
  check(w.cols, w.OW, w.W, "column");
}

function need(s: ArrayLike<number>, n: number, kernel: string, name: string, what: string): void {
  if (s.length < n) {
    throw new RangeError(`wasm backend: ${kernel}: '${name}' holds ${s.length} elements; ${what} needs ${n}`);
  }
}
