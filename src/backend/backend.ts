import type { Storage, StorageAllocator } from "./storage.js";

/** The nonlinearities the BN kernels can apply to their output in the same pass. */
export type FusedActivation = "relu" | "sigmoid";

/**
 * A kh×kw window sliding by (sh, sw) over an H×W plane padded by (ph, pw) on
 * each side: OH×OW positions, OH = ⌊(H + 2ph − kh)/sh⌋ + 1 (likewise OW).
 * Window (oh, ow) covers input rows oh·sh − ph .. oh·sh − ph + kh − 1 and
 * columns ow·sw − pw .. ow·sw − pw + kw − 1.
 */
export interface Window2d {
  readonly H: number;
  readonly W: number;
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly ph: number;
  readonly pw: number;
  readonly OH: number;
  readonly OW: number;
}

/** Whether the Winograd kernels take this window: 3×3, stride 1, padding ≤ 2 (so that the input gradient's padding 2 − p is ≥ 0). */
export function isWinogradWindow(g: Window2d): boolean {
  return g.kh === 3 && g.kw === 3 && g.sh === 1 && g.sw === 1 && g.ph <= 2 && g.pw <= 2;
}

/**
 * The window of the input gradient of a stride-1 convolution (only: a
 * stride s > 1 is not a convolution of the gradient): a convolution
 * over the OH×OW gradient, padded by kh − 1 − ph (kw − 1 − pw), whose
 * positions are the H×W inputs.
 */
export function transposedWindow(g: Window2d): Window2d {
  return { H: g.OH, W: g.OW, kh: g.kh, kw: g.kw, sh: 1, sw: 1, ph: g.kh - 1 - g.ph, pw: g.kw - 1 - g.pw, OH: g.H, OW: g.W };
}

/**
 * Average-pooling windows given as tables, for windows that need not be
 * regular (adaptive pooling) and divisors that need not be the window size
 * (countIncludePad). Output row oh averages input rows
 * rows[3·oh] .. rows[3·oh + 1] − 1 and output column ow input columns
 * cols[3·ow] .. cols[3·ow + 1] − 1; the sum is divided by
 * rows[3·oh + 2]·cols[3·ow + 2]. Windows are non-empty and inside the plane.
 */
export interface PoolWindows {
  readonly H: number;
  readonly W: number;
  readonly OH: number;
  readonly OW: number;
  /** 3·OH entries: start, end, divisor per output row. */
  readonly rows: Int32Array;
  /** 3·OW entries: start, end, divisor per output column. */
  readonly cols: Int32Array;
}

/**
 * The kernels under the tensor ops. Each works on raw contiguous row-major
 * storage, knows no modes and allocates nothing: the op layer allocates
 * outputs and decides what to compute. The reference backend implements every
 * kernel for float32 and float64; a fast backend may implement float32 only
 * and is never handed float64 storage.
 *
 * Shapes: "(N, C, S)" means the layout of an NCHW or NCL tensor with the
 * spatial extent S = H·W (or L, or 1 for (N, C)), i.e. element (n, c, s) sits
 * at index (n·C + c)·S + s.
 */
export interface Backend {
  readonly name: string;
  /**
   * Where scoped float32 storage should be allocated while this backend is
   * selected, when the backend computes in memory of its own (see
   * tensor/storageAllocator.ts); absent: on the JavaScript heap.
   */
  readonly storage?: StorageAllocator;

  /**
   * General matrix multiply: C = alpha·op(A)·op(B) + beta·C, where op(A) is
   * M×K (A stored K×M when transA), op(B) is K×N (B stored N×K when transB),
   * C is M×N. beta = 0 overwrites C (any NaN in C is ignored).
   */
  gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    a: Storage,
    b: Storage,
    beta: number,
    c: Storage,
  ): void;

  /** y[r, j] = x[r, j] + bias[j] for an (rows, cols) matrix; y may alias x. */
  addRowVector(x: Storage, bias: Storage, y: Storage, rows: number, cols: number): void;

  /** out[j] = Σ_r g[r, j] for an (rows, cols) matrix (accumulated in double). */
  sumRows(g: Storage, rows: number, cols: number, out: Storage): void;

  /**
   * Per-channel mean and biased variance of x viewed as (N, C, S), by two
   * passes (mean first, then Σ(x−μ)²) with double-precision accumulation.
   */
  channelMoments(x: Storage, N: number, C: number, S: number, mean: Float64Array, variance: Float64Array): void;

  /** y = (x − center[c])·scale[c] + shift[c] over (N, C, S): BN forward as one pass. */
  channelAffine(
    x: Storage,
    y: Storage,
    N: number,
    C: number,
    S: number,
    center: Float64Array,
    scale: Float64Array,
    shift: Float64Array,
  ): void;

  /**
   * f(channelAffine's y) for f = ReLU (max(0, ·), NaN → 0) or the sigmoid,
   * bit for bit relu(channelAffine(x)) or sigmoid(channelAffine(x)): the
   * forward of BN followed by that nonlinearity in one pass.
   */
  channelAffineActivated(
    x: Storage,
    y: Storage,
    N: number,
    C: number,
    S: number,
    center: Float64Array,
    scale: Float64Array,
    shift: Float64Array,
    activation: FusedActivation,
  ): void;

  /**
   * The two reductions of the BN backward, per channel, in one loop:
   * sumDy[c] = Σ dy, sumDyXmu[c] = Σ dy·(x − mean[c]).
   */
  channelGradSums(
    x: Storage,
    dy: Storage,
    N: number,
    C: number,
    S: number,
    mean: Float64Array,
    sumDy: Float64Array,
    sumDyXmu: Float64Array,
  ): void;

  /**
   * channelGradSums of dy' = f′ applied to dy from y, the output of
   * channelAffineActivated: (y > 0 ? dy : 0) for ReLU, dy·y·(1 − y) for the
   * sigmoid (reluBackward's and sigmoidBackward's formulas) — the
   * nonlinearity's backward applied as dy is read.
   */
  channelGradSumsActivated(
    x: Storage,
    dy: Storage,
    y: Storage,
    N: number,
    C: number,
    S: number,
    mean: Float64Array,
    sumDy: Float64Array,
    sumDyXmu: Float64Array,
    activation: FusedActivation,
  ): void;

  /**
   * The elementwise pass of the BN backward:
   * dx = (dy − a[c] − (x − mean[c])·b[c])·k[c].
   */
  channelGradInput(
    x: Storage,
    dy: Storage,
    dx: Storage,
    N: number,
    C: number,
    S: number,
    mean: Float64Array,
    a: Float64Array,
    b: Float64Array,
    k: Float64Array,
  ): void;

  /** channelGradInput of dy' = f′ applied to dy from y (as channelGradSumsActivated). */
  channelGradInputActivated(
    x: Storage,
    dy: Storage,
    y: Storage,
    dx: Storage,
    N: number,
    C: number,
    S: number,
    mean: Float64Array,
    a: Float64Array,
    b: Float64Array,
    k: Float64Array,
    activation: FusedActivation,
  ): void;

  /**
   * im2col of one image: x (C, H, W) → cols (C·kh·kw, OH·OW), row (c, i, j)
   * and column (oh, ow) holding x[c, oh·sh − ph + i, ow·sw − pw + j], or 0
   * where that lies in the padding. The convolution is then W(O, C·kh·kw)·cols.
   */
  im2col(x: Storage, C: number, g: Window2d, cols: Storage): void;

  /**
   * col2im, the adjoint of im2col: dx[c, oh·sh − ph + i, ow·sw − pw + j] +=
   * cols[(c, i, j), (oh, ow)] for every entry outside the padding. dx (C, H, W)
   * is accumulated into, not overwritten.
   */
  col2im(cols: Storage, C: number, g: Window2d, dx: Storage): void;

  /**
   * 2-d convolution (cross-correlation) of x (N, C, H, W) with weight
   * (O, C, kh, kw), plus bias (O) unless null, into y (N, O, OH, OW):
   *   y[n, o, oh, ow] = b[o] + Σ_{c,i,j} W[o, c, i, j]·x[n, c, oh·sh − ph + i, ow·sw − pw + j].
   * y is overwritten.
   */
  conv2dForward(x: Storage, weight: Storage, bias: Storage | null, y: Storage, N: number, C: number, O: number, g: Window2d): void;

  /**
   * The gradients of conv2dForward from gy = ∂ℓ/∂y (N, O, OH, OW), each
   * computed only when its output is not null, and overwritten:
   *   gx = ∂ℓ/∂x (N, C, H, W)   (needs weight; x may be null when gw is null)
   *   gw = ∂ℓ/∂W (O, C, kh, kw) = Σ_n gy[n]·im2col(x[n])ᵀ   (needs x)
   *   gb = ∂ℓ/∂b (O) = Σ_{n, oh, ow} gy, accumulated in double.
   */
  conv2dBackward(
    x: Storage | null,
    weight: Storage,
    gy: Storage,
    gx: Storage | null,
    gw: Storage | null,
    gb: Storage | null,
    N: number,
    C: number,
    O: number,
    g: Window2d,
  ): void;

  /**
   * conv2dForward by Winograd F(2×2, 3×3) (Lavin & Gray 2016), for a window
   * that {@link isWinogradWindow} accepts (3×3, stride 1, padding ≤ 2): 16
   * multiply-adds per input channel for each 2×2 block of outputs instead of
   * 36. The same result up to float32 rounding of the transforms (tests
   * state the bound); y is overwritten.
   */
  conv2dWinogradForward(x: Storage, weight: Storage, bias: Storage | null, y: Storage, N: number, C: number, O: number, g: Window2d): void;

  /**
   * gx = ∂ℓ/∂x (N, C, H, W) of conv2dForward from gy (N, O, OH, OW), for a
   * window that {@link isWinogradWindow} accepts: the convolution of gy with
   * the kernel rotated by 180° and its channel axes swapped, padding 2 − p,
   * by Winograd F(2×2, 3×3). gx is overwritten.
   */
  conv2dWinogradBackwardInput(weight: Storage, gy: Storage, gx: Storage, N: number, C: number, O: number, g: Window2d): void;

  /**
   * gw = ∂ℓ/∂W (O, C, 3, 3) of conv2dForward from x and gy, for a window that
   * {@link isWinogradWindow} accepts, by the transpose of Winograd
   * F(2×2, 3×3): ∂U = Σ_tiles (A ∂y Aᵀ) ⊙ (Bᵀ d B) per (o, c), gw = Gᵀ ∂U G.
   * gw is overwritten.
   */
  conv2dWinogradBackwardWeight(x: Storage, gy: Storage, gw: Storage, N: number, C: number, O: number, g: Window2d): void;

  /**
   * Max pooling over `planes` (H, W) planes of x into y (planes, OH, OW),
   * padding never chosen. The window is scanned row by row and a value
   * replaces the running maximum when strictly greater or NaN (PyTorch's
   * rule: ties go to the first maximum, a NaN propagates). argmax gets the
   * index within its plane (ih·W + iw) of each chosen value.
   */
  maxPool2dForward(x: Storage, y: Storage, argmax: Int32Array, planes: number, g: Window2d): void;

  /** gx (planes, H, W) = 0, then gx[p, argmax[p, o]] += gy[p, o] for every output o: gx is overwritten. */
  maxPool2dBackward(gy: Storage, argmax: Int32Array, gx: Storage, planes: number, g: Window2d): void;

  /** Average pooling over `planes` planes: y[p, oh, ow] = Σ_window x / divisor (see PoolWindows). */
  avgPool2dForward(x: Storage, y: Storage, planes: number, w: PoolWindows): void;

  /** The adjoint: gx = 0, then each input in window (oh, ow) receives gy[p, oh, ow] / divisor. gx is overwritten. */
  avgPool2dBackward(gy: Storage, gx: Storage, planes: number, w: PoolWindows): void;

  /** y = 1 / (1 + e^(−x)), computed without overflow for large |x|. */
  sigmoid(x: Storage, y: Storage): void;
  /** dx = dy·y·(1 − y), from the forward output y. */
  sigmoidBackward(y: Storage, dy: Storage, dx: Storage): void;
  relu(x: Storage, y: Storage): void;
  /** dx = dy where x > 0, else 0. */
  reluBackward(x: Storage, dy: Storage, dx: Storage): void;

  /**
   * Row-wise log-softmax cross-entropy of (N, C) logits against class indices.
   * Writes the softmax probabilities to `probs` (for the backward) and returns
   * the summed loss Σ_n −log p[n, t_n].
   */
  softmaxCrossEntropy(logits: Storage, targets: Int32Array, N: number, C: number, probs: Storage): number;

  /** dst[i] += src[i] for every i < dst.length (gradient accumulation). */
  addInPlace(dst: Storage, src: Storage): void;

  /** dst[i] = value for every i < dst.length (zeroing gradients and recycled buffers). */
  fill(dst: Storage, value: number): void;

  /** dst[i] = src[i] for every i < dst.length; src is at least as long and does not overlap dst (an optimizer's commit). */
  copy(dst: Storage, src: Storage): void;

  /**
   * For r < rows: dst[r·dstStride + j] = src[r·srcStride + j], j < len (the
   * blocks do not overlap): concat's rows into place and its gradient's back out.
   */
  copyRows(dst: Storage, src: Storage, rows: number, len: number, dstStride: number, srcStride: number): void;

  /** How many elements of x are NaN or ±∞ (the optimizer's divergence check). */
  countNonFinite(x: Storage): number;

  /**
   * One SGD step for one parameter, with PyTorch's semantics:
   * d = g + wd·p; buf = μ·buf + (1 − dampening)·d (buf = d on the first step);
   * d = nesterov ? d + μ·buf : buf; p −= lr·d. `velocity` is null without momentum.
   */
  sgdStep(
    param: Storage,
    grad: Storage,
    velocity: Storage | null,
    firstStep: boolean,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
  ): void;

  /**
   * sgdStep's update computed into newParam (and newVelocity) instead of in
   * place, and checked in the same pass: returns how many elements i have
   * grad[i], newParam[i] or newVelocity[i] NaN or ±∞. param, grad and
   * velocity are only read, so an optimizer can commit the step only when
   * every parameter's count is 0. newVelocity is null without momentum;
   * velocity is null on the first step (not read) and without momentum.
   */
  sgdStepChecked(
    param: Storage,
    grad: Storage,
    velocity: Storage | null,
    newParam: Storage,
    newVelocity: Storage | null,
    firstStep: boolean,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
  ): number;
}
