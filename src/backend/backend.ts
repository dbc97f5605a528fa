import type { Storage } from "../tensor/dtype.js";

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
}
