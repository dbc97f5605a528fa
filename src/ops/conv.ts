import { backendFor, type Backend, type Window2d } from "../backend/index.js";
import { isWinogradWindow, transposedWindow } from "../backend/backend.js";
import type { Storage } from "../backend/storage.js";
import { allocateUninitialized, stagedStorage, storageFrom } from "../tensor/allocation.js";
import { record, recordMany, Tensor } from "../tensor/tensor.js";

/** A spatial size given once for both dimensions, or as [h, w]. */
export type Size2 = number | readonly [number, number];

/** `v` as [h, w], each an integer ≥ `min`; `what` names it in the error ("Conv2d: stride"). */
export function toPair(v: Size2, what: string, min: number): [number, number] {
  const p: [number, number] = typeof v === "number" ? [v, v] : [v[0], v[1]];
  if ((typeof v !== "number" && v.length !== 2) || !p.every((d) => Number.isInteger(d) && d >= min)) {
    throw new Error(`${what} must be an integer ≥ ${min} or a pair [h, w] of them; got ${JSON.stringify(v)}`);
  }
  return p;
}

/**
 * The number of positions of a window of `kernel` sliding by `stride` over
 * `size` values padded by `padding` on both sides: ⌊(size + 2·padding − kernel)/stride⌋ + 1.
 */
export function windowCount(size: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((size + 2 * padding - kernel) / stride) + 1;
}

/** Where a 2-d window visits an (H, W) plane (the backend's Window2d). */
export type WindowGeometry = Window2d;

/** The window geometry over an NCHW input, with an error a person can act on when the window does not fit. */
export function windowGeometry(
  op: string,
  x: Tensor,
  kernel: [number, number],
  stride: [number, number],
  padding: [number, number],
): WindowGeometry {
  const [, , H, W] = x.shape;
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [ph, pw] = padding;
  const OH = windowCount(H, kh, sh, ph);
  const OW = windowCount(W, kw, sw, pw);
  if (OH < 1 || OW < 1) {
    throw new Error(
      `${op}: a ${kh}×${kw} window does not fit the ${H}×${W} input padded by [${ph}, ${pw}] (the output would be ${OH}×${OW}). Use a larger input, more padding or a smaller kernel.`,
    );
  }
  return { H, W, kh, kw, sh, sw, ph, pw, OH, OW };
}

export interface Conv2dOptions {
  /** Step of the window, one number or [h, w]. Default 1. */
  stride?: Size2;
  /** Zeros added on each side, one number or [h, w]. Default 0. */
  padding?: Size2;
}

/**
 * 2-d convolution (cross-correlation, as in PyTorch) of x (N, C, H, W) with
 * weight (O, C, kh, kw) and an optional bias (O):
 *   y[n, o, oh, ow] = b[o] + Σ_{c,i,j} W[o, c, i, j]·x[n, c, oh·sh − ph + i, ow·sw − pw + j]
 * with zeros outside the input; y is (N, O, OH, OW), OH = ⌊(H + 2ph − kh)/sh⌋ + 1.
 *
 * The work is one backend kernel each way (Backend.conv2dForward and
 * conv2dBackward), im2col + GEMM one image at a time: cols = im2col(x[n]) is
 * (C·kh·kw, L) with L = OH·OW, and y[n] = W·cols is a single GEMM written
 * straight into the output; a 1×1 convolution with stride 1 and no padding
 * skips im2col (x[n] viewed as (C, H·W) already is the column matrix).
 * Backward, with G[n] = ∂ℓ/∂y[n] viewed as (O, L):
 *   ∂ℓ/∂W = Σ_n G[n]·cols[n]ᵀ,   ∂ℓ/∂x[n] = col2im(Wᵀ·G[n]),   ∂ℓ/∂b[o] = Σ_{n,l} G[n, o, l]
 * with the columns rebuilt rather than kept from the forward (im2col costs
 * 1/O of the GEMM; keeping them would cost kh·kw times the input's memory).
 *
 * Per image rather than one GEMM over the batch: a batched im2col with inner
 * dimension N·L was no faster, neither on the reference backend (1.22 s vs
 * 1.11 s per image, float32 forward + backward at N 64, 32→32 channels,
 * 16×16, 3×3) nor with the wasm GEMM (per-image GEMMs of 64×49×576 and
 * 32×256×288 ran as fast as or faster than the batched 64×3136×576 and
 * 32×16384×288), and it needs an (O, N, L) → (N, O, L) permutation and a
 * column buffer N times larger. The wasm backend runs the whole loop inside
 * the module (columns built and multiplied in linear memory, each operand
 * copied in and out once per call); im2col in JavaScript with one wasm GEMM
 * call per image, the column matrix copied into wasm memory each time, took
 * 2–3 times as long (forward 48 vs 25 ms, forward + backward 147 vs 50 ms
 * at that layer). Those products are small (the Inception table's layers
 * have 2–66 channels on 4×4 to 14×14 images), so the wasm kernels skip
 * GEMM's packing of B: the weight is packed once per call and the
 * microkernel reads the columns (or the image, for 1×1) in place, and ∂ℓ/∂W
 * sums dot products along the rows of G[n] and cols[n] over the batch.
 *
 * On the wasm backend a 3×3 stride-1 convolution (forward, and ∂ℓ/∂x, itself
 * a 3×3 stride-1 convolution of G with the rotated kernel) runs by Winograd
 * F(2×2, 3×3) instead where `useWinograd` says it was measured faster: 16
 * multiply-adds per input channel for each 2×2 block of outputs instead of
 * 36; and ∂ℓ/∂W by the same algorithm transposed (useWinogradWeight):
 * ∂U = Σ_tiles (A G Aᵀ) ⊙ (Bᵀ x B), 16 products over every tile of the batch.
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv2dOptions = {}): Tensor {
  const [O] = checkConv("conv2d", x, weight, bias);
  const g = convWindow("conv2d", x, weight, options);
  const N = x.shape[0];
  const kernels = backendFor(x.dtype);
  const xs = stagedStorage(x.data); // read by the forward and by ∂ℓ/∂W
  const y = new Tensor(allocateUninitialized(x.dtype, N * O * g.OH * g.OW), [N, O, g.OH, g.OW]);
  convForward(kernels, xs, weight.data, bias === null ? null : bias.data, y.data, N, O, g);
  const inputs = bias === null ? [x, weight] : [x, weight, bias];
  return record(y, "conv2d", inputs, (gy) => {
    const gx = x.requiresGrad ? allocateUninitialized(x.dtype, x.size) : null;
    const gw = weight.requiresGrad ? allocateUninitialized(x.dtype, weight.size) : null;
    const gb = bias !== null && bias.requiresGrad ? allocateUninitialized(x.dtype, O) : null;
    convBackward(kernels, xs, weight.data, gy, gx, gw, gb, N, O, g);
    return [gx, gw, gb];
  });
}

/**
 * Several convolutions of one input, each with its own weight (O_k, C, kh, kw)
 * and optional bias, all over the same window: `conv2d(x, weights[k],
 * biases[k], options)` for every k, computed as one convolution by the
 * weights stacked along the output channels (the leading 1×1 convolutions
 * of an Inception module's branches, which nn.Concat runs this way). One
 * pass over x and one product with a taller weight instead of one per
 * branch, and backward one ∂ℓ/∂x summed inside the product
 * (∂ℓ/∂x = Σ_k W_kᵀ·G_k = [W_1; …; W_K]ᵀ·[G_1; …; G_K]) instead of K of
 * them added together afterwards. Each output's forward values are the bits
 * of its own conv2d (every output element is the same dot product); ∂ℓ/∂x
 * is summed in another order, so it may differ in the last bits.
 */
export function conv2dMany(x: Tensor, weights: readonly Tensor[], biases: readonly (Tensor | null)[], options: Conv2dOptions = {}): Tensor[] {
  if (weights.length === 0 || biases.length !== weights.length) {
    throw new Error(`conv2dMany: needs one bias (or null) per weight and at least one weight; got ${weights.length} weights and ${biases.length} biases`);
  }
  const outs = weights.map((w, k) => checkConv(`conv2dMany (weight ${k})`, x, w, biases[k])[0]);
  const [, C, kh, kw] = weights[0].shape;
  weights.forEach((w, k) => {
    if (w.shape[2] !== kh || w.shape[3] !== kw) {
      throw new Error(`conv2dMany: weight ${k} has a ${w.shape[2]}×${w.shape[3]} kernel but weight 0 a ${kh}×${kw} one; the weights must share the window`);
    }
  });
  const g = convWindow("conv2dMany", x, weights[0], options);
  const N = x.shape[0];
  const L = g.OH * g.OW;
  const K = C * kh * kw;
  const O = outs.reduce((a, b) => a + b, 0);
  const first = outs.map((_, k) => outs.slice(0, k).reduce((a, b) => a + b, 0)); // first stacked channel of output k
  const dtype = x.dtype;
  const kernels = backendFor(dtype);
  const stacked = allocateUninitialized(dtype, O * K);
  weights.forEach((w, k) => stacked.set(w.data, first[k] * K));
  let stackedBias: Storage | null = null;
  if (biases.some((b) => b !== null)) {
    stackedBias = allocateUninitialized(dtype, O);
    biases.forEach((b, k) => (b === null ? stackedBias!.fill(0, first[k], first[k] + outs[k]) : stackedBias!.set(b.data, first[k])));
  }
  const xs = stagedStorage(x.data); // read by the forward and by ∂ℓ/∂W
  const y = allocateUninitialized(dtype, N * O * L);
  convForward(kernels, xs, stacked, stackedBias, y, N, O, g);
  // Output k is the rows first[k] … first[k] + O_k − 1 of each image of y.
  const ys = outs.map((Ok, k) => {
    const yk = new Tensor(allocateUninitialized(dtype, N * Ok * L), [N, Ok, g.OH, g.OW]);
    kernels.copyRows(yk.data, y.subarray(first[k] * L), N, Ok * L, Ok * L, O * L);
    return yk;
  });
  const params = weights.map((w, k) => [w, biases[k]] as const);
  const inputs = [x, ...params.flatMap(([w, b]) => (b === null ? [w] : [w, b]))];
  return recordMany(ys, "conv2d", inputs, (gys) => {
    // G = the outputs' gradients stacked as y was, zeros for an output the loss does not reach.
    const gy = allocateUninitialized(dtype, N * O * L);
    gys.forEach((gk, k) => {
      const rows = gy.subarray(first[k] * L);
      if (gk !== null) kernels.copyRows(rows, gk, N, outs[k] * L, O * L, outs[k] * L);
      else for (let n = 0; n < N; n++) rows.fill(0, n * O * L, (n * O + outs[k]) * L);
    });
    const gx = x.requiresGrad ? allocateUninitialized(dtype, x.size) : null;
    const wantW = weights.some((w) => w.requiresGrad);
    const wantB = biases.some((b) => b !== null && b.requiresGrad);
    const gw = wantW ? allocateUninitialized(dtype, O * K) : null;
    const gb = wantB ? allocateUninitialized(dtype, O) : null;
    convBackward(kernels, xs, stacked, gy, gx, gw, gb, N, O, g);
    const grads: (Storage | null)[] = [gx];
    params.forEach(([w, b], k) => {
      grads.push(gw !== null && w.requiresGrad ? storageFrom(dtype, gw.subarray(first[k] * K, (first[k] + outs[k]) * K)) : null);
      if (b !== null) grads.push(gb !== null && b.requiresGrad ? storageFrom(dtype, gb.subarray(first[k], first[k] + outs[k])) : null);
    });
    return grads;
  });
}

/** The checks of a convolution's operands, with errors a person can act on; returns [O, C, kh, kw]. */
function checkConv(op: string, x: Tensor, weight: Tensor, bias: Tensor | null): readonly number[] {
  if (weight.ndim !== 4) {
    throw new Error(`${op}: the weight must be 4-d (out_channels, in_channels, kh, kw); got [${weight.shape.join(", ")}]`);
  }
  const [O, C] = weight.shape;
  if (x.ndim !== 4 || x.shape[1] !== C) {
    throw new Error(
      `${op}: expected an input of shape (N, ${C}, H, W) for a weight of shape [${weight.shape.join(", ")}]; got [${x.shape.join(", ")}]`,
    );
  }
  if (x.dtype !== weight.dtype || (bias !== null && bias.dtype !== weight.dtype)) {
    throw new Error(
      `${op}: the input is ${x.dtype}, the weight ${weight.dtype}${bias === null ? "" : `, the bias ${bias.dtype}`}; convert the input with .to("${weight.dtype}")`,
    );
  }
  if (bias !== null && (bias.ndim !== 1 || bias.shape[0] !== O)) {
    throw new Error(`${op}: the bias must have shape [${O}] (one value per output channel); got [${bias.shape.join(", ")}]`);
  }
  return weight.shape;
}

function convWindow(op: string, x: Tensor, weight: Tensor, options: Conv2dOptions): WindowGeometry {
  return windowGeometry(
    op,
    x,
    [weight.shape[2], weight.shape[3]],
    toPair(options.stride ?? 1, `${op}: stride`, 1),
    toPair(options.padding ?? 0, `${op}: padding`, 0),
  );
}

/** y = the convolution of x (N, C, H, W) by w (O, C, kh, kw) (+ b) over g: Winograd where useWinograd says, else im2col + GEMM. */
function convForward(kernels: Backend, x: Storage, w: Storage, b: Storage | null, y: Storage, N: number, O: number, g: Window2d): void {
  const C = x.length / (N * g.H * g.W);
  if (useWinograd(kernels, C, O, g)) kernels.conv2dWinogradForward(x, w, b, y, N, C, O, g);
  else kernels.conv2dForward(x, w, b, y, N, C, O, g);
}

/** The gradients of convForward from gy, each overwritten whole (null: not wanted). */
function convBackward(
  kernels: Backend,
  x: Storage,
  w: Storage,
  gy: Storage,
  gx: Storage | null,
  gw: Storage | null,
  gb: Storage | null,
  N: number,
  O: number,
  g: Window2d,
): void {
  const C = x.length / (N * g.H * g.W);
  // ∂ℓ/∂x is itself a 3×3 stride-1 convolution (of gy, O → C channels, over the transposed window).
  const winogradGx = gx !== null && isWinogradWindow(g) && useWinograd(kernels, O, C, transposedWindow(g));
  const winogradGw = gw !== null && useWinogradWeight(kernels, C, O, g);
  if (winogradGx) kernels.conv2dWinogradBackwardInput(w, gy, gx, N, C, O, g);
  if (winogradGw) kernels.conv2dWinogradBackwardWeight(x, gy, gw, N, C, O, g);
  const [restGx, restGw] = [winogradGx ? null : gx, winogradGw ? null : gw];
  if (restGx !== null || restGw !== null || gb !== null) kernels.conv2dBackward(x, w, gy, restGx, restGw, gb, N, C, O, g);
}

/**
 * Whether a convolution of C → O channels over window g (for ∂ℓ/∂x: O → C
 * over the transposed window) runs by Winograd F(2×2, 3×3) rather than
 * im2col + GEMM: on the wasm backend (the reference backend stays the
 * im2col oracle), for 3×3 stride-1 windows, except where bench/winograd.mjs
 * measured it slower (N 64, one thread, relaxed SIMD, 2026-12-02, load ≈ 25):
 * a single input channel (1→8 on 16×16: 0.86× forward, 0.77× ∂x — the
 * transforms outweigh one channel's products), and many channels on a
 * ≤ 4-wide output, where half of each 4-tile row of tiles is padding
 * (128→128 on 4×4: 0.86× forward). Everywhere else it measured 1.1–2.7×
 * faster, the Inception table's small layers (4→6 on 14×14 … 14→14 on 4×4)
 * 1.2–2.4× and the bench's 32→32 on 16×16 2.5×.
 */
export function useWinograd(kernels: Backend, C: number, O: number, g: Window2d): boolean {
  return kernels.name !== "reference" && isWinogradWindow(g) && C >= 2 && (g.OW > 4 || C * O < 128 * 128);
}

/**
 * Whether ∂ℓ/∂W of a convolution of C → O channels over window g runs by
 * the transposed Winograd F(2×2, 3×3) (see useWinograd) rather than
 * im2col + GEMM: where bench/winograd.mjs measured it faster, outputs wider
 * than 4 (N 64, one thread, relaxed SIMD, load ≈ 17: 1.2–1.8× on the
 * Inception table's 14×14 and 7×7 layers, 1.25× for 16→16 and 32→32 on
 * 8×8, 1.5–1.9× for 32→32 on 16×16). On 4×4 outputs half of each row of
 * tiles is padding and it measured slower (14→14: 0.83×, 12→20: 0.59×,
 * 128→128: 0.34×).
 */
export function useWinogradWeight(kernels: Backend, C: number, O: number, g: Window2d): boolean {
  return kernels.name !== "reference" && isWinogradWindow(g) && g.OW > 4;
}
