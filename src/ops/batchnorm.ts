import { backendFor } from "../backend/index.js";
import { allocate, allocateUninitialized } from "../tensor/allocation.js";
import type { Storage } from "../backend/storage.js";
import { record, Tensor } from "../tensor/tensor.js";

/** x viewed as (N, C, S): S = L for (N, C, L), H·W for (N, C, H, W), 1 for (N, C). */
export function channelLayout(x: Tensor): { N: number; C: number; S: number } {
  const [N, C, ...rest] = x.shape;
  return { N, C, S: rest.reduce((p, d) => p * d, 1) };
}

/** The statistics of one mini-batch, per channel, in double precision. */
export interface BatchStats {
  mean: Float64Array;
  /** biased: (1/m) Σ (x − μ)², the variance that normalizes (Algorithm 1) */
  variance: Float64Array;
  /** m = N·S, the number of values per channel */
  count: number;
}

/**
 * Algorithm 1 over a mini-batch, per channel c with m = N·S values:
 *   μ = (1/m) Σ x,  σ² = (1/m) Σ (x − μ)²,  x̂ = (x − μ)/sqrt(σ² + ε),  y = γ·x̂ + β
 * computed as one pass y = (x − μ)·(γ/sqrt(σ² + ε)) + β.
 *
 * The backward is the fused form of the paper's chain rule, with g = ∂ℓ/∂y:
 *   ∂ℓ/∂β = Σ g,  ∂ℓ/∂γ = Σ g·x̂ = (1/sqrt(σ²+ε))·Σ g·(x − μ)
 *   ∂ℓ/∂x = γ/sqrt(σ²+ε) · (g − Σg/m − (x − μ)·Σ g·(x − μ)/(m·(σ²+ε)))
 * i.e. two reductions (Σg and Σg·(x − μ)) and one elementwise pass. Only the
 * input, μ and 1/sqrt(σ²+ε) are kept from the forward.
 */
export function batchNormTrain(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): { y: Tensor; stats: BatchStats } {
  const { N, C, S } = channelLayout(x);
  const m = N * S;
  const kernels = backendFor(x.dtype);
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  kernels.channelMoments(x.data, N, C, S, mean, variance);
  const { invStd, scale, shift } = affineOf(variance, weight, bias, eps);
  const y = new Tensor(allocateUninitialized(x.dtype, x.size), x.shape); // channelAffine writes every element
  kernels.channelAffine(x.data, y.data, N, C, S, mean, scale, shift);

  const inputs = [x, weight, bias].filter((t): t is Tensor => t !== null);
  record(y, "batch_norm", inputs, (g) => {
    const sumDy = new Float64Array(C);
    const sumDyXmu = new Float64Array(C);
    kernels.channelGradSums(x.data, g, N, C, S, mean, sumDy, sumDyXmu);
    const grads: (Storage | null)[] = [];
    if (x.requiresGrad) {
      const a = new Float64Array(C);
      const b = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        a[c] = sumDy[c] / m;
        b[c] = (invStd[c] * invStd[c] * sumDyXmu[c]) / m;
      }
      const dx = allocateUninitialized(x.dtype, x.size); // channelGradInput writes every element
      kernels.channelGradInput(x.data, g, dx, N, C, S, mean, a, b, scale);
      grads.push(dx);
    } else grads.push(null);
    return [...grads, ...affineGrads(weight, bias, invStd, sumDy, sumDyXmu)];
  });
  return { y, stats: { mean, variance, count: m } };
}

/**
 * BN with fixed statistics (Algorithm 2, step 11): y = γ·(x − E[x])/sqrt(Var[x] + ε) + β,
 * a per-channel affine map. Its backward: ∂ℓ/∂x = g·γ/sqrt(Var+ε),
 * ∂ℓ/∂γ = Σ g·x̂, ∂ℓ/∂β = Σ g.
 */
export function batchNormInference(
  x: Tensor,
  runningMean: Storage,
  runningVar: Storage,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Tensor {
  const { N, C, S } = channelLayout(x);
  const kernels = backendFor(x.dtype);
  const mean = Float64Array.from(runningMean);
  const { invStd, scale, shift } = affineOf(runningVar, weight, bias, eps);
  const y = new Tensor(allocateUninitialized(x.dtype, x.size), x.shape); // channelAffine writes every element
  kernels.channelAffine(x.data, y.data, N, C, S, mean, scale, shift);
  const inputs = [x, weight, bias].filter((t): t is Tensor => t !== null);
  return record(y, "batch_norm_inference", inputs, (g) => {
    const grads: (Storage | null)[] = [];
    const needSums = weight !== null || bias !== null;
    const sumDy = new Float64Array(C);
    const sumDyXmu = new Float64Array(C);
    if (needSums) kernels.channelGradSums(x.data, g, N, C, S, mean, sumDy, sumDyXmu);
    if (x.requiresGrad) {
      const dx = allocateUninitialized(x.dtype, x.size); // channelGradInput writes every element
      const zero = new Float64Array(C);
      kernels.channelGradInput(x.data, g, dx, N, C, S, mean, zero, zero, scale);
      grads.push(dx);
    } else grads.push(null);
    return [...grads, ...affineGrads(weight, bias, invStd, sumDy, sumDyXmu)];
  });
}

/**
 * BN as a per-channel affine map of (x − μ): 1/sqrt(σ² + ε), the scale
 * γ/sqrt(σ² + ε) and the shift β (γ = 1, β = 0 without affine).
 */
function affineOf(
  variance: ArrayLike<number>,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): { invStd: Float64Array; scale: Float64Array; shift: Float64Array } {
  const C = variance.length;
  const invStd = new Float64Array(C);
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    invStd[c] = 1 / Math.sqrt(variance[c] + eps);
    scale[c] = (weight === null ? 1 : weight.data[c]) * invStd[c];
    shift[c] = bias === null ? 0 : bias.data[c];
  }
  return { invStd, scale, shift };
}

/** ∂ℓ/∂γ = (1/sqrt(σ² + ε))·Σ g·(x − μ) and ∂ℓ/∂β = Σ g, for the affine parameters present. */
function affineGrads(
  weight: Tensor | null,
  bias: Tensor | null,
  invStd: Float64Array,
  sumDy: Float64Array,
  sumDyXmu: Float64Array,
): Storage[] {
  const out: Storage[] = [];
  if (weight !== null) {
    const dw = allocate(weight.dtype, invStd.length);
    for (let c = 0; c < dw.length; c++) dw[c] = invStd[c] * sumDyXmu[c];
    out.push(dw);
  }
  if (bias !== null) {
    const db = allocate(bias.dtype, sumDy.length);
    db.set(sumDy);
    out.push(db);
  }
  return out;
}
