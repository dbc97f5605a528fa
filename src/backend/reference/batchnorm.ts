import type { Storage } from "../storage.js";
import { sigmoid, sigmoidBackward } from "./elementwise.js";

// Batch-normalization kernels over x viewed as (N, C, S); see backend.ts.
// Every reduction accumulates in double precision (JavaScript numbers).

/**
 * μ_c = (1/m) Σ x, σ²_c = (1/m) Σ (x − μ_c)² with m = N·S: two passes, so a
 * large mean does not cancel the variance as E[x²] − E[x]² would.
 */
export function channelMoments(
  x: Storage,
  N: number,
  C: number,
  S: number,
  mean: Float64Array,
  variance: Float64Array,
): void {
  const m = N * S;
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let s = 0; s < S; s++) sum += x[base + s];
    }
    const mu = sum / m;
    let sq = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let s = 0; s < S; s++) {
        const d = x[base + s] - mu;
        sq += d * d;
      }
    }
    mean[c] = mu;
    variance[c] = sq / m;
  }
}

/** y = (x − center_c)·scale_c + shift_c: the forward of training and eval BN alike. */
export function channelAffine(
  x: Storage,
  y: Storage,
  N: number,
  C: number,
  S: number,
  center: Float64Array,
  scale: Float64Array,
  shift: Float64Array,
): void {
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const base = (n * C + c) * S;
      const mu = center[c];
      const a = scale[c];
      const b = shift[c];
      for (let s = 0; s < S; s++) y[base + s] = (x[base + s] - mu) * a + b;
    }
  }
}

/** Σ dy and Σ dy·(x − μ) per channel, in one loop over the data. */
export function channelGradSums(
  x: Storage,
  dy: Storage,
  N: number,
  C: number,
  S: number,
  mean: Float64Array,
  sumDy: Float64Array,
  sumDyXmu: Float64Array,
): void {
  for (let c = 0; c < C; c++) {
    const mu = mean[c];
    let sg = 0;
    let sgx = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let s = 0; s < S; s++) {
        const g = dy[base + s];
        sg += g;
        sgx += g * (x[base + s] - mu);
      }
    }
    sumDy[c] = sg;
    sumDyXmu[c] = sgx;
  }
}

/** dx = (dy − a_c − (x − μ_c)·b_c)·k_c: the one elementwise pass of the BN backward. */
export function channelGradInput(
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
): void {
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const base = (n * C + c) * S;
      const mu = mean[c];
      const ac = a[c];
      const bc = b[c];
      const kc = k[c];
      for (let s = 0; s < S; s++) dx[base + s] = (dy[base + s] - ac - (x[base + s] - mu) * bc) * kc;
    }
  }
}

// BN followed by ReLU: the same kernels with ReLU's forward applied to the
// output and its backward (dy where y > 0, else 0, as elementwise.ts) to dy
// as it is read. Written as the composition, so that each is bit for bit
// relu(channelAffine(…)) and BN's backward of reluBackward's gradient.

/** y = max(0, (x − center_c)·scale_c + shift_c) (NaN → 0, as relu). */
export function channelAffineRelu(
  x: Storage,
  y: Storage,
  N: number,
  C: number,
  S: number,
  center: Float64Array,
  scale: Float64Array,
  shift: Float64Array,
): void {
  channelAffine(x, y, N, C, S, center, scale, shift);
  for (let i = 0; i < N * C * S; i++) y[i] = y[i] > 0 ? y[i] : 0;
}

/** dy where y > 0, else 0: ReLU's backward given its output. */
function reluGrad(dy: Storage, y: Storage, size: number): Storage {
  const g = dy instanceof Float32Array ? new Float32Array(size) : new Float64Array(size);
  for (let i = 0; i < size; i++) g[i] = y[i] > 0 ? dy[i] : 0;
  return g;
}

/** channelGradSums of (y > 0 ? dy : 0). */
export function channelGradSumsRelu(
  x: Storage,
  dy: Storage,
  y: Storage,
  N: number,
  C: number,
  S: number,
  mean: Float64Array,
  sumDy: Float64Array,
  sumDyXmu: Float64Array,
): void {
  channelGradSums(x, reluGrad(dy, y, N * C * S), N, C, S, mean, sumDy, sumDyXmu);
}

/** channelGradInput of (y > 0 ? dy : 0). */
export function channelGradInputRelu(
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
): void {
  channelGradInput(x, reluGrad(dy, y, N * C * S), dx, N, C, S, mean, a, b, k);
}

// BN followed by a sigmoid, likewise the composition: sigmoid(channelAffine(…))
// and BN's backward of sigmoidBackward's gradient dy·y·(1 − y).

/** y = σ((x − center_c)·scale_c + shift_c), as sigmoid. */
export function channelAffineSigmoid(
  x: Storage,
  y: Storage,
  N: number,
  C: number,
  S: number,
  center: Float64Array,
  scale: Float64Array,
  shift: Float64Array,
): void {
  channelAffine(x, y, N, C, S, center, scale, shift);
  const out = y.subarray(0, N * C * S);
  sigmoid(out, out);
}

/** dy·y·(1 − y): the sigmoid's backward given its output. */
function sigmoidGrad(dy: Storage, y: Storage, size: number): Storage {
  const g = dy instanceof Float32Array ? new Float32Array(size) : new Float64Array(size);
  sigmoidBackward(y.subarray(0, size), dy.subarray(0, size), g);
  return g;
}

/** channelGradSums of dy·y·(1 − y). */
export function channelGradSumsSigmoid(
  x: Storage,
  dy: Storage,
  y: Storage,
  N: number,
  C: number,
  S: number,
  mean: Float64Array,
  sumDy: Float64Array,
  sumDyXmu: Float64Array,
): void {
  channelGradSums(x, sigmoidGrad(dy, y, N * C * S), N, C, S, mean, sumDy, sumDyXmu);
}

/** channelGradInput of dy·y·(1 − y). */
export function channelGradInputSigmoid(
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
): void {
  channelGradInput(x, sigmoidGrad(dy, y, N * C * S), dx, N, C, S, mean, a, b, k);
}
