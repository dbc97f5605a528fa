import { backendFor, type FusedActivation } from "../backend/index.js";
import { allocate, allocateUninitialized, storageFrom } from "../tensor/allocation.js";
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
 * Combines per-channel statistics across the workers of a data-parallel run
 * (SyncBatchNorm), so that every worker normalizes with the statistics of the
 * whole batch. Both calls are collective: every worker makes them in the same
 * order, and every worker gets the same (bit-identical) result.
 */
export interface BatchStatsSync {
  /**
   * The whole batch's count, mean and biased variance from this worker's
   * (Chan's parallel merge of count, mean and M2 = count·variance).
   */
  combineMoments(count: number, mean: Float64Array, variance: Float64Array): BatchStats;
  /** Σ over workers of the backward's two per-channel sums, written in place. */
  sumGradSums(sumDy: Float64Array, sumDyXmu: Float64Array): void;
}

/**
 * Batch Renormalization's correction (Ioffe 2017): from the batch statistics
 * (μ_B, σ_B = sqrt(σ²_B + ε)) the per-channel r and d of
 * x̂ = (x − μ_B)/σ_B · r + d. They enter the backward as constants.
 */
export type RenormCorrection = (stats: BatchStats) => { r: Float64Array; d: Float64Array };

export interface BatchNormTrainOptions {
  /** Combine the statistics across data-parallel workers (SyncBatchNorm). */
  sync?: BatchStatsSync;
  /** Batch Renormalization's r and d (BatchRenorm1d/2d). */
  renorm?: RenormCorrection;
  /**
   * A nonlinearity applied to the output, fused: y = max(0, BN(x)) or
   * σ(BN(x)) in the same pass, and the backward applies its derivative from y
   * (ReLU's mask, σ's y·(1 − y)) as it reads ∂ℓ/∂y (no tensor in between, one
   * pass fewer each way). The same bits as relu() or sigmoid() of the
   * unfused output, forward and backward.
   */
  activation?: FusedActivation;
}

export type { FusedActivation };

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
 *
 * With `sync`, μ, σ² and m are the whole data-parallel batch's, and the two
 * sums in ∂ℓ/∂x are summed over workers (∂ℓ/∂γ, ∂ℓ/∂β stay this worker's
 * share: the gradient all-reduce adds them up). With `renorm`, the normalized
 * value is x̂·r + d (Batch Renormalization) with r, d held constant:
 *   y = γ·r·x̂ + (β + γ·d),  ∂ℓ/∂γ = Σ g·(r·x̂ + d),  ∂ℓ/∂x = r·(BN's ∂ℓ/∂x).
 * With `activation`, y = f(BN(x)) and g above is ∂ℓ/∂y·f′, read from y: for
 * ReLU ∂ℓ/∂y where y > 0, 0 elsewhere; for the sigmoid ∂ℓ/∂y·y·(1 − y).
 */
export function batchNormTrain(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  options: BatchNormTrainOptions = {},
): { y: Tensor; stats: BatchStats } {
  const { y, stats } = normalizeInGroups(x, weight, bias, eps, 1, options);
  return { y, stats: stats[0] };
}

/**
 * Ghost Batch Normalization (Hoffer et al. 2017): the batch of N examples is
 * cut into N/virtualBatchSize consecutive virtual batches, and each is
 * normalized with its own statistics (Algorithm 1 per virtual batch; the
 * backward likewise per virtual batch). Returns the statistics of each.
 */
export function ghostBatchNormTrain(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  virtualBatchSize: number,
): { y: Tensor; stats: BatchStats[] } {
  const N = x.shape[0];
  if (!Number.isInteger(virtualBatchSize) || virtualBatchSize <= 0 || N % virtualBatchSize !== 0) {
    throw new Error(
      `ghostBatchNormTrain: the virtual batch size must be a positive integer that divides the batch; got ${virtualBatchSize} for a batch of ${N}. Make the batch size a multiple of the virtual batch size.`,
    );
  }
  return normalizeInGroups(x, weight, bias, eps, N / virtualBatchSize, {});
}

/** Per group of consecutive examples: its statistics and the per-channel affine map that normalizes it. */
interface GroupNorm {
  stats: BatchStats;
  invStd: Float64Array;
  /** k = γ·r/sqrt(σ² + ε): the forward's scale and the backward's factor */
  scale: Float64Array;
  r: Float64Array | null;
  d: Float64Array | null;
}

/**
 * BN in training mode over `groups` consecutive, equal groups of examples
 * (1 for BN, N/virtualBatchSize for ghost BN). Each group of x is a
 * contiguous (n, C, S) block, handed to the kernels as a view.
 */
function normalizeInGroups(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  groups: number,
  options: BatchNormTrainOptions,
): { y: Tensor; stats: BatchStats[] } {
  const { N, C, S } = channelLayout(x);
  const n = N / groups;
  const block = n * C * S;
  const kernels = backendFor(x.dtype);
  const view = (s: Storage, g: number) => (groups === 1 ? s : s.subarray(g * block, (g + 1) * block));
  const y = new Tensor(allocateUninitialized(x.dtype, x.size), x.shape); // channelAffine writes every element
  const act = options.activation;
  const norms: GroupNorm[] = [];
  for (let g = 0; g < groups; g++) {
    let stats: BatchStats = { mean: new Float64Array(C), variance: new Float64Array(C), count: n * S };
    kernels.channelMoments(view(x.data, g), n, C, S, stats.mean, stats.variance);
    if (options.sync) stats = options.sync.combineMoments(stats.count, stats.mean, stats.variance);
    const correction = options.renorm ? options.renorm(stats) : null;
    const { invStd, scale, shift } = affineOf(stats.variance, weight, bias, eps, correction);
    if (act !== undefined) kernels.channelAffineActivated(view(x.data, g), view(y.data, g), n, C, S, stats.mean, scale, shift, act);
    else kernels.channelAffine(view(x.data, g), view(y.data, g), n, C, S, stats.mean, scale, shift);
    norms.push({ stats, invStd, scale, r: correction?.r ?? null, d: correction?.d ?? null });
  }

  const inputs = [x, weight, bias].filter((t): t is Tensor => t !== null);
  record(y, act === undefined ? "batch_norm" : `batch_norm_${act}`, inputs, (grad) => {
    const dx = x.requiresGrad ? allocateUninitialized(x.dtype, x.size) : null; // channelGradInput writes every element
    const dw = weight !== null ? new Float64Array(C) : null;
    const db = bias !== null ? new Float64Array(C) : null;
    for (let g = 0; g < groups; g++) {
      const { stats, invStd, scale, r, d } = norms[g];
      const sumDy = new Float64Array(C);
      const sumDyXmu = new Float64Array(C);
      // With a nonlinearity fused, ∂ℓ/∂(BN's output) is grad·f′ (from y), applied as the kernels read grad.
      if (act !== undefined) kernels.channelGradSumsActivated(view(x.data, g), view(grad, g), view(y.data, g), n, C, S, stats.mean, sumDy, sumDyXmu, act);
      else kernels.channelGradSums(view(x.data, g), view(grad, g), n, C, S, stats.mean, sumDy, sumDyXmu);
      // ∂ℓ/∂γ = Σ g·(r·x̂ + d) and ∂ℓ/∂β = Σ g over this worker's values (before any sync).
      for (let c = 0; c < C; c++) {
        if (dw) dw[c] += (r ? r[c] : 1) * invStd[c] * sumDyXmu[c] + (d ? d[c] * sumDy[c] : 0);
        if (db) db[c] += sumDy[c];
      }
      if (dx === null) continue;
      if (options.sync) options.sync.sumGradSums(sumDy, sumDyXmu);
      const m = stats.count;
      const a = new Float64Array(C);
      const b = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        a[c] = sumDy[c] / m;
        b[c] = (invStd[c] * invStd[c] * sumDyXmu[c]) / m;
      }
      if (act !== undefined) kernels.channelGradInputActivated(view(x.data, g), view(grad, g), view(y.data, g), view(dx, g), n, C, S, stats.mean, a, b, scale, act);
      else kernels.channelGradInput(view(x.data, g), view(grad, g), view(dx, g), n, C, S, stats.mean, a, b, scale);
    }
    const grads: (Storage | null)[] = [dx];
    if (weight !== null) grads.push(storageFrom(weight.dtype, dw!));
    if (bias !== null) grads.push(storageFrom(bias.dtype, db!));
    return grads;
  });
  return { y, stats: norms.map((g) => g.stats) };
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
 * γ/sqrt(σ² + ε) and the shift β (γ = 1, β = 0 without affine); with a
 * Batch Renorm correction, the scale γ·r/sqrt(σ² + ε) and the shift β + γ·d.
 */
function affineOf(
  variance: ArrayLike<number>,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
  correction: { r: Float64Array; d: Float64Array } | null = null,
): { invStd: Float64Array; scale: Float64Array; shift: Float64Array } {
  const C = variance.length;
  const invStd = new Float64Array(C);
  const scale = new Float64Array(C);
  const shift = new Float64Array(C);
  const w = weight === null ? null : weight.data;
  const b = bias === null ? null : bias.data;
  for (let c = 0; c < C; c++) {
    const gamma = w === null ? 1 : w[c];
    invStd[c] = 1 / Math.sqrt(variance[c] + eps);
    // Batch Renorm: γ·(x̂·r + d) + β = (x − μ)·γ·r/sqrt(σ² + ε) + (β + γ·d)
    scale[c] = gamma * (correction ? correction.r[c] : 1) * invStd[c];
    shift[c] = (b === null ? 0 : b[c]) + (correction ? gamma * correction.d[c] : 0);
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
    const dw = allocateUninitialized(weight.dtype, invStd.length);
    for (let c = 0; c < dw.length; c++) dw[c] = invStd[c] * sumDyXmu[c];
    out.push(dw);
  }
  if (bias !== null) {
    const db = allocateUninitialized(bias.dtype, sumDy.length);
    db.set(sumDy);
    out.push(db);
  }
  return out;
}
