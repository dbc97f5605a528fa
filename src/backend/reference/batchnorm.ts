import type { Storage } from "../storage.js";
import type { FusedActivation } from "../backend.js";
import { relu, reluBackward, sigmoid, sigmoidBackward } from "./elementwise.js";

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

// BN followed by ReLU or the sigmoid: the same kernels with the nonlinearity's
// forward applied to the output and its backward (ReLU: dy where y > 0, else
// 0; sigmoid: dy·y·(1 − y), as elementwise.ts) to dy as it is read. Written
// as the composition, so that each is bit for bit relu/sigmoid(channelAffine(…))
// and BN's backward of reluBackward's / sigmoidBackward's gradient.

/** y = f((x − center_c)·scale_c + shift_c), f = relu (NaN → 0) or sigmoid. */
export function channelAffineActivated(
  x: Storage,
  y: Storage,
  N: number,
  C: number,
  S: number,
  center: Float64Array,
  scale: Float64Array,
  shift: Float64Array,
  activation: FusedActivation,
): void {
  channelAffine(x, y, N, C, S, center, scale, shift);
  const out = y.subarray(0, N * C * S);
  if (activation === "relu") relu(out, out);
  else sigmoid(out, out);
}

/** The nonlinearity's backward given its output y: dy where y > 0 (ReLU: y > 0 exactly where its input is), or dy·y·(1 − y). */
function activationGrad(dy: Storage, y: Storage, size: number, activation: FusedActivation): Storage {
  const g = dy instanceof Float32Array ? new Float32Array(size) : new Float64Array(size);
  (activation === "relu" ? reluBackward : sigmoidBackward)(y.subarray(0, size), dy.subarray(0, size), g);
  return g;
}

/** channelGradSums of the nonlinearity's backward of dy. */
export function channelGradSumsActivated(
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
): void {
  channelGradSums(x, activationGrad(dy, y, N * C * S, activation), N, C, S, mean, sumDy, sumDyXmu);
}

/** channelGradInput of the nonlinearity's backward of dy. */
export function channelGradInputActivated(
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
): void {
  channelGradInput(x, activationGrad(dy, y, N * C * S, activation), dx, N, C, S, mean, a, b, k);
}
