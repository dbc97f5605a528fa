import type { Backend } from "../backend.js";
import type { Storage } from "../../tensor/dtype.js";
import { Arena } from "./arena.js";

/** Which build of the kernels module runs. */
export type WasmVariant = "simd" | "scalar";

/** The wasm backend: the Backend kernels, plus the build that runs them. */
export interface WasmBackend extends Backend {
  readonly name: "wasm";
  readonly variant: WasmVariant;
}

/**
 * The exports of the kernels module (assembly/index.ts). Pointers are byte
 * offsets into `memory`; booleans travel as i32.
 */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  heapBase(): number;
  gemmWorkspaceBytes(M: number, N: number, K: number): number;
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
  addRowVector(x: number, bias: number, y: number, rows: number, cols: number): void;
  sumRowsWorkspaceBytes(cols: number): number;
  sumRows(g: number, rows: number, cols: number, out: number, work: number): void;
  sigmoid(x: number, y: number, n: number): void;
  sigmoidBackward(y: number, dy: number, dx: number, n: number): void;
  relu(x: number, y: number, n: number): void;
  reluBackward(x: number, dy: number, dx: number, n: number): void;
  softmaxCrossEntropy(logits: number, targets: number, N: number, C: number, probs: number): number;
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
 * The Backend over one instance of the kernels module. First cut: each call
 * copies its operands into the arena, runs the kernel there and copies the
 * results out. Elementwise kernels run in place on the copy of their input,
 * so a call needs scratch for its inputs only.
 */
export function createWasmBackend(k: KernelExports, variant: WasmVariant): WasmBackend {
  const arena = new Arena(k.memory, k.heapBase() >>> 0);

  return {
    name: "wasm",
    variant,

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
      const pc = beta === 0 ? arena.alloc(M * N * 4) : arena.input(fc, M * N);
      const work = arena.alloc(k.gemmWorkspaceBytes(M, N, K) >>> 0);
      k.gemm(transA, transB, M, N, K, alpha, pa, pb, beta, pc, work);
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
      k.addRowVector(px, pb, px, rows, cols);
      arena.output(px, fy, n);
    },

    sumRows(g, rows, cols, out) {
      const fg = f32(g, "sumRows", "g");
      const fo = f32(out, "sumRows", "out");
      need(fg, rows * cols, "sumRows", "g", `a ${rows}×${cols} matrix`);
      need(fo, cols, "sumRows", "out", `${cols} columns`);
      arena.reset();
      const pg = arena.input(fg, rows * cols);
      const po = arena.alloc(cols * 4);
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
      const work = arena.alloc(k.batchNormWorkspaceBytes(C) >>> 0);
      k.channelAffine(px, px, N, C, S, pc, ps, pt, work);
      arena.output(px, fy, n);
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
      const work = arena.alloc(k.batchNormWorkspaceBytes(C) >>> 0);
      k.channelGradInput(px, pg, pg, N, C, S, pm, pa, pb, pk, work);
      arena.output(pg, fd, n);
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
      const pp = arena.alloc(N * C * 4);
      const loss = k.softmaxCrossEntropy(pl, pt, N, C, pp);
      arena.output(pp, fp, N * C);
      return loss;
    },

    sgdStep(param, grad, velocity, firstStep, lr, momentum, dampening, weightDecay, nesterov) {
      const fp = f32(param, "sgdStep", "param");
      const fg = f32(grad, "sgdStep", "grad");
      const fv = velocity === null ? null : f32(velocity, "sgdStep", "velocity");
      const n = fp.length;
      need(fg, n, "sgdStep", "grad", `${n} parameters`);
      if (fv !== null) need(fv, n, "sgdStep", "velocity", `${n} parameters`);
      arena.reset();
      const pp = arena.input(fp, n);
      const pg = arena.input(fg, n);
      // A first step overwrites the velocity without reading it.
      const pv = fv === null ? 0 : firstStep ? arena.alloc(n * 4) : arena.input(fv, n);
      k.sgdStep(pp, pg, pv, n, firstStep, lr, momentum, dampening, weightDecay, nesterov);
      arena.output(pp, fp, n);
      if (fv !== null) arena.output(pv, fv, n);
    },
  };

  /** y = f(x) over x.length elements, in place on the copy of x. */
  function unary(x: Storage, y: Storage, kernel: string, xName: string, yName: string, f: (x: number, y: number, n: number) => void): void {
    const fx = f32(x, kernel, xName);
    const fy = f32(y, kernel, yName);
    const n = fx.length;
    need(fy, n, kernel, yName, `${n} elements, as ${xName}`);
    arena.reset();
    const px = arena.input(fx, n);
    f(px, px, n);
    arena.output(px, fy, n);
  }

  /** dx = f(u, dy) over u.length elements, in place on the copy of dy. */
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
    f(pu, pg, pg, n);
    arena.output(pg, fd, n);
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

function need(s: Float32Array, n: number, kernel: string, name: string, what: string): void {
  if (s.length < n) {
    throw new RangeError(`wasm backend: ${kernel}: '${name}' holds ${s.length} elements; ${what} needs ${n}`);
  }
}
