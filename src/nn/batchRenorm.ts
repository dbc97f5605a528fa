import { batchNormTrain, BatchStats } from "../ops/batchnorm.js";
import { Tensor } from "../tensor/tensor.js";
import { BatchNormBase, BatchNormOptions } from "./batchnorm.js";

export interface BatchRenormOptions extends BatchNormOptions {
  /** Largest correction r of the standard deviation: r ∈ [1/rMax, rMax]; ≥ 1. Default 3 (the paper's). */
  rMax?: number;
  /** Largest correction d of the mean, in running standard deviations: d ∈ [−dMax, dMax]; ≥ 0. Default 5 (the paper's). */
  dMax?: number;
  /** Training steps of plain BN first (rMax = 1, dMax = 0). Default 0. */
  warmupSteps?: number;
  /** Step at which the bound on r reaches rMax, rising linearly from 1 after the warm-up. Default: warmupSteps (at once). */
  rMaxReachedAt?: number;
  /** Step at which the bound on d reaches dMax, rising linearly from 0 after the warm-up. Default: warmupSteps (at once). */
  dMaxReachedAt?: number;
}

/**
 * Batch Renormalization (Ioffe 2017, arXiv 1702.03275), Algorithm 1. In
 * training, with the batch's μ_B and σ_B = sqrt(σ²_B + ε) and the moving μ
 * and σ:
 *   r = clip(σ_B/σ, 1/rMax, rMax),  d = clip((μ_B − μ)/σ, −dMax, dMax)
 *   x̂ = (x − μ_B)/σ_B · r + d,  y = γ·x̂ + β
 *   μ ← μ + α(μ_B − μ),  σ ← σ + α(σ_B − σ)        (α = momentum)
 * where r and d are constants for the gradient (stop_gradient). Inference:
 * y = γ·(x − μ)/σ + β. So the network trains on what it will see in
 * inference, up to the clipping, instead of on batch-dependent values.
 *
 * σ is kept as `running_var` = σ² − ε, so the state dict and the inference
 * path are BN's (sqrt(running_var + ε) = σ). The bounds follow the paper's
 * schedule: plain BN (rMax = 1, dMax = 0) for `warmupSteps`, then relaxed
 * linearly to reach rMax at `rMaxReachedAt` and dMax at `dMaxReachedAt`
 * (the paper: 5,000, 40,000 and 25,000 — `BatchRenorm1d.paperSchedule`).
 * The step is `numBatchesTracked`, which travels in the state dict.
 */
export abstract class BatchRenormBase extends BatchNormBase {
  /** The paper's schedule (§4): plain BN for 5k steps, rMax = 3 reached at 40k steps, dMax = 5 at 25k. */
  static readonly paperSchedule = { rMax: 3, dMax: 5, warmupSteps: 5000, rMaxReachedAt: 40000, dMaxReachedAt: 25000 } as const;

  readonly rMax: number;
  readonly dMax: number;
  readonly warmupSteps: number;
  readonly rMaxReachedAt: number;
  readonly dMaxReachedAt: number;

  constructor(numFeatures: number, options: BatchRenormOptions = {}) {
    super(numFeatures, options);
    const name = this.constructor.name;
    if (!this.hasRunningStats) {
      throw new Error(`${name}: Batch Renorm corrects batch statistics towards the running ones, so it needs trackRunningStats: true`);
    }
    const rMax = options.rMax ?? 3;
    const dMax = options.dMax ?? 5;
    if (!(rMax >= 1) || !Number.isFinite(rMax)) throw new Error(`${name}: rMax must be a finite number ≥ 1 (r is clipped to [1/rMax, rMax]); got ${rMax}`);
    if (!(dMax >= 0) || !Number.isFinite(dMax)) throw new Error(`${name}: dMax must be a finite number ≥ 0 (d is clipped to [−dMax, dMax]); got ${dMax}`);
    const warmup = options.warmupSteps ?? 0;
    if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`${name}: warmupSteps must be an integer ≥ 0; got ${warmup}`);
    const reached = (key: "rMaxReachedAt" | "dMaxReachedAt") => {
      const v = options[key] ?? warmup;
      if (!Number.isInteger(v) || v < warmup) throw new Error(`${name}: ${key} must be an integer ≥ warmupSteps (${warmup}); got ${v}`);
      return v;
    };
    this.rMax = rMax;
    this.dMax = dMax;
    this.warmupSteps = warmup;
    this.rMaxReachedAt = reached("rMaxReachedAt");
    this.dMaxReachedAt = reached("dMaxReachedAt");
  }

  /** The bounds on r and d at training step t (the paper's schedule: linear after the warm-up). */
  boundsAt(t: number): { rMax: number; dMax: number } {
    const ramp = (end: number) => (t < this.warmupSteps ? 0 : end <= this.warmupSteps ? 1 : Math.min(1, (t - this.warmupSteps) / (end - this.warmupSteps)));
    return { rMax: 1 + (this.rMax - 1) * ramp(this.rMaxReachedAt), dMax: this.dMax * ramp(this.dMaxReachedAt) };
  }

  protected override normalizeBatch(x: Tensor, update: boolean): Tensor {
    this.checkValuesPerChannel(x, x.shape[0]);
    const { rMax, dMax } = this.boundsAt(this.numBatchesTracked);
    const mu = this.runningMean!.data;
    const rv = this.runningVar!.data;
    const eps = this.eps;
    const renorm = (stats: BatchStats) => {
      const C = stats.mean.length;
      const r = new Float64Array(C);
      const d = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        const sigma = Math.sqrt(rv[c] + eps);
        const sigmaB = Math.sqrt(stats.variance[c] + eps);
        r[c] = Math.min(rMax, Math.max(1 / rMax, sigmaB / sigma));
        d[c] = Math.min(dMax, Math.max(-dMax, (stats.mean[c] - mu[c]) / sigma));
      }
      return { r, d };
    };
    const { y, stats } = batchNormTrain(x, this.weight, this.bias, this.eps, { renorm });
    if (update) this.updateMovingAverages(stats);
    return y;
  }

  /**
   * μ ← μ + α(μ_B − μ), σ ← σ + α(σ_B − σ), with α = momentum or 1/t for
   * the cumulative average (momentum null); σ stored as σ² − ε.
   */
  private updateMovingAverages(stats: BatchStats): void {
    const eps = this.eps;
    this.writeRunningStats(stats, (a, runningMean, runningVar, nextMean, nextVar) => {
      for (let c = 0; c < nextMean.length; c++) {
        const sigma = Math.sqrt(runningVar[c] + eps);
        const nextSigma = sigma + a * (Math.sqrt(stats.variance[c] + eps) - sigma);
        nextMean[c] = runningMean[c] + a * (stats.mean[c] - runningMean[c]);
        nextVar[c] = Math.max(0, nextSigma * nextSigma - eps);
      }
    });
  }
}

/** Batch Renorm per activation, for (N, C) or (N, C, L) inputs. */
export class BatchRenorm1d extends BatchRenormBase {
  protected readonly expectedLayout = "(N, C) or (N, C, L)";
  protected acceptsRank(rank: number): boolean {
    return rank === 2 || rank === 3;
  }
}

/** Batch Renorm per feature map, for (N, C, H, W) inputs. */
export class BatchRenorm2d extends BatchRenormBase {
  protected readonly expectedLayout = "(N, C, H, W)";
  protected acceptsRank(rank: number): boolean {
    return rank === 4;
  }
}
