import { batchNormTrain, BatchStats, BatchStatsSync } from "../ops/batchnorm.js";
import { Tensor } from "../tensor/tensor.js";
import { BatchNormBase, BatchNormOptions } from "./batchnorm.js";
import { Module } from "./module.js";

/**
 * The collectives SyncBatchNorm needs from a data-parallel group (the
 * `ProcessGroup` of covshift's parallel module implements them). Every
 * member calls them in the same order, and every member gets the same bits.
 */
export interface CollectiveGroup {
  /** This member's index, 0 … size − 1. */
  readonly rank: number;
  readonly size: number;
  /** Every member's `values` (all of one length), indexed by rank. */
  allGather(values: Float64Array): Float64Array[];
  /** values ← Σ over members of values, in place, summed in rank order. */
  allReduceSum(values: Float64Array): void;
}

export interface SyncBatchNormOptions extends BatchNormOptions {
  /** The data-parallel group whose batch shards make up the batch; null (default) until DataParallel sets it: plain BN. */
  processGroup?: CollectiveGroup | null;
}

/**
 * BN whose training statistics are those of the whole data-parallel batch
 * (PyTorch's `nn.SyncBatchNorm`). Each worker holds a shard of the batch;
 * the forward merges every worker's count, mean and M2 = Σ(x − μ)² by Chan's
 * parallel formula, in rank order (so every worker gets the same bits):
 *   n = n_a + n_b,  δ = μ_b − μ_a,  μ = μ_a + δ·n_b/n,  M2 = M2_a + M2_b + δ²·n_a·n_b/n
 * and normalizes its shard with μ and σ² = M2/n. The backward sums Σdy and
 * Σdy·(x − μ) over workers before the elementwise pass, so N workers on
 * shards of B/N give the forward, the gradients and the running statistics
 * of one process on batch B (up to float32 reduction order). ∂ℓ/∂γ and
 * ∂ℓ/∂β stay per worker; the gradient all-reduce of DataParallel sums them.
 *
 * Without a group (or a group of one) it is BatchNorm over its own input.
 * Accepts (N, C, …) inputs of any rank ≥ 2, like PyTorch's.
 */
export class SyncBatchNorm extends BatchNormBase {
  processGroup: CollectiveGroup | null;
  protected readonly expectedLayout = "(N, C, …)";

  constructor(numFeatures: number, options: SyncBatchNormOptions = {}) {
    super(numFeatures, options);
    this.processGroup = options.processGroup ?? null;
  }

  protected acceptsRank(rank: number): boolean {
    return rank >= 2;
  }

  protected override normalizeBatch(x: Tensor, update: boolean): Tensor {
    const group = this.processGroup;
    if (group === null || group.size === 1) return super.normalizeBatch(x, update);
    const sync = statsSync(group, this.describe());
    const { y, stats } = batchNormTrain(x, this.weight, this.bias, this.eps, { sync });
    if (update) this.updateRunningStats(stats);
    return y;
  }

  /** Batch statistics need more than one value per channel in the whole batch, which is checked after the merge. */
  protected override checkValuesPerChannel(x: Tensor, examples: number): void {
    if (this.processGroup === null || this.processGroup.size === 1) super.checkValuesPerChannel(x, examples);
  }
}

/** SyncBatchNorm's two collectives over a group. */
function statsSync(group: CollectiveGroup, layer: string): BatchStatsSync {
  return {
    combineMoments(count, mean, variance) {
      const C = mean.length;
      const mine = new Float64Array(1 + 2 * C);
      mine[0] = count;
      for (let c = 0; c < C; c++) {
        mine[1 + c] = mean[c];
        mine[1 + C + c] = variance[c] * count; // M2
      }
      const all = group.allGather(mine);
      const merged: BatchStats = { mean: new Float64Array(C), variance: new Float64Array(C), count: 0 };
      const m2 = new Float64Array(C);
      for (const part of all) {
        const nb = part[0];
        if (nb === 0) continue;
        const na = merged.count;
        const n = na + nb;
        for (let c = 0; c < C; c++) {
          const delta = part[1 + c] - merged.mean[c];
          merged.mean[c] += (delta * nb) / n;
          m2[c] += part[1 + C + c] + (delta * delta * na * nb) / n;
        }
        merged.count = n;
      }
      if (merged.count <= 1) {
        throw new Error(
          `${layer}: expected more than 1 value per channel in the whole synchronized batch; got ${merged.count}. Use larger batches.`,
        );
      }
      for (let c = 0; c < C; c++) merged.variance[c] = m2[c] / merged.count;
      return merged;
    },
    sumGradSums(sumDy, sumDyXmu) {
      const C = sumDy.length;
      const both = new Float64Array(2 * C);
      both.set(sumDy);
      both.set(sumDyXmu, C);
      group.allReduceSum(both);
      sumDy.set(both.subarray(0, C));
      sumDyXmu.set(both.subarray(C));
    },
  };
}

/**
 * PyTorch's `convert_sync_batchnorm`: every BatchNorm1d/2d/3d in `model`
 * (plain BN; not the ghost or renorm variants, whose statistics mean
 * something else) replaced by a SyncBatchNorm with the same settings,
 * parameters, running statistics and trainability. Returns the model
 * (converted in place), or the new layer when `model` itself is a BN layer.
 * References to a converted layer held anywhere in the module tree
 * (children, fields, arrays and maps of modules) are updated.
 */
export function convertSyncBatchNorm(model: Module, processGroup: CollectiveGroup | null = null): Module {
  const replaced = new Map<Module, SyncBatchNorm>();
  const paths: [string, SyncBatchNorm][] = [];
  for (const [path, m] of model.namedModules()) {
    if (!isPlainBatchNorm(m)) continue;
    if (!replaced.has(m)) replaced.set(m, toSync(m, processGroup));
    paths.push([path, replaced.get(m)!]);
  }
  if (replaced.has(model)) return replaced.get(model)!;
  for (const m of model.modules()) {
    for (const key of Reflect.ownKeys(m)) {
      const value = (m as unknown as Record<string | symbol, unknown>)[key];
      if (value instanceof Module && replaced.has(value)) {
        (m as unknown as Record<string | symbol, unknown>)[key] = replaced.get(value);
      } else if (Array.isArray(value)) {
        value.forEach((v, i) => {
          if (v instanceof Module && replaced.has(v)) value[i] = replaced.get(v);
        });
      } else if (value instanceof Map) {
        for (const [k, v] of value) if (v instanceof Module && replaced.has(v)) value.set(k, replaced.get(v));
      }
    }
  }
  for (const [path, sync] of paths) adopt(model, path, sync);
  return model;
}

function isPlainBatchNorm(m: Module): m is BatchNormBase {
  const name = m.constructor.name;
  return m instanceof BatchNormBase && (name === "BatchNorm1d" || name === "BatchNorm2d" || name === "BatchNorm3d");
}

function toSync(bn: BatchNormBase, processGroup: CollectiveGroup | null): SyncBatchNorm {
  const dtype = bn.weight?.dtype ?? bn.runningMean?.dtype ?? "float32";
  const sync = new SyncBatchNorm(bn.numFeatures, {
    eps: bn.eps,
    momentum: bn.momentum,
    affine: bn.affine,
    trackRunningStats: bn.hasRunningStats,
    dtype,
    processGroup,
  });
  sync.trackRunningStats = bn.trackRunningStats;
  sync.loadStateDict(bn.stateDict());
  if (bn.weight) sync.weight!.requiresGrad = bn.weight.requiresGrad;
  if (bn.bias) sync.bias!.requiresGrad = bn.bias.requiresGrad;
  if (bn.frozen) sync.freeze();
  sync.training = bn.training;
  return sync;
}

/** Give the replacement the parent link of the layer it replaces (its path in error messages). */
function adopt(root: Module, path: string, replacement: Module): void {
  const parts = path.split(".");
  let parent: Module = root;
  for (const p of parts.slice(0, -1)) parent = [...parent.namedChildren()].find(([n]) => n === p)![1];
  (parent as unknown as { registerModule(name: string, m: Module): Module }).registerModule(parts.at(-1)!, replacement);
}
