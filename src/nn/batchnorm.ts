import type { DType } from "../backend/storage.js";
import { allocate } from "../tensor/allocation.js";
import { record, Tensor, zeros } from "../tensor/tensor.js";
import { batchNormInference, batchNormTrain, BatchStats, channelLayout, type FusedActivation } from "../ops/batchnorm.js";
import { relu, sigmoid } from "../ops/activation.js";
import { Module } from "./module.js";
import { pyBool, pyFloat } from "./repr.js";

export interface BatchNormOptions {
  /** Added to the variance inside the square root; must be > 0. Default 1e-5. */
  eps?: number;
  /**
   * Weight of the new batch in the running averages (PyTorch's convention):
   * running = (1 − momentum)·running + momentum·batch. Default 0.1. `null`
   * gives the cumulative average over all batches seen (Algorithm 2, step 10).
   * From a Keras-style momentum use `kerasMomentum(0.99)` = 0.01.
   */
  momentum?: number | null;
  /** Learn γ (weight, init 1) and β (bias, init 0). Default true. */
  affine?: boolean;
  /**
   * Keep running statistics for eval mode; without them BN always uses batch
   * statistics. Default true. Settable afterwards as in PyTorch (see
   * `BatchNormBase.trackRunningStats`).
   */
  trackRunningStats?: boolean;
  dtype?: DType;
}

/** Keras/TensorFlow momentum (weight of the old value) to PyTorch's (weight of the new batch). */
export function kerasMomentum(momentum: number): number {
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`kerasMomentum: momentum must be in [0, 1]; got ${momentum}`);
  return 1 - momentum;
}

/**
 * Batch Normalization (Ioffe & Szegedy 2015), the state shared by
 * BatchNorm1d and BatchNorm2d, which differ only in the shapes they accept.
 *
 * Training: Algorithm 1 with the batch's statistics, and the running
 * averages updated with the batch mean and the unbiased batch variance
 * m/(m−1)·σ²_B. Eval: the running statistics (Algorithm 2) and no state
 * changes. `freeze()`: running statistics even in training, no updates, γ and
 * β not trained — for fine-tuning.
 */
export abstract class BatchNormBase extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly affine: boolean;
  /** γ, shape (C), or null without `affine` */
  readonly weight: Tensor | null;
  /** β, shape (C), or null without `affine` */
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  protected readonly batchesTracked: Tensor | null;
  private _momentum: number | null = 0.1;
  private _frozen = false;
  private _trackRunningStats: boolean;
  /**
   * @internal Set by recomputeBatchNormStats while it runs: training-mode
   * forwards compute plain BN statistics of the whole batch and update the
   * running statistics, whatever the variant (ghost, renorm, sync).
   */
  populationPass = false;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures <= 0) {
      throw new Error(`${this.constructor.name}: numFeatures must be a positive integer; got ${numFeatures}`);
    }
    const eps = options.eps ?? 1e-5;
    if (!(eps > 0) || !Number.isFinite(eps)) {
      throw new Error(
        `${this.constructor.name}: eps must be a finite number > 0 (it keeps sqrt(σ² + ε) away from zero); got ${eps}`,
      );
    }
    this.numFeatures = numFeatures;
    this.eps = eps;
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    this.affine = options.affine ?? true;
    this._trackRunningStats = options.trackRunningStats ?? true;
    const dtype = options.dtype ?? "float32";
    this.weight = this.registerParameter("weight", this.affine ? zeros([numFeatures], { dtype }) : null);
    this.bias = this.registerParameter("bias", this.affine ? zeros([numFeatures], { dtype }) : null);
    this.runningMean = this.registerBuffer("running_mean", this.trackRunningStats ? zeros([numFeatures], { dtype }) : null);
    this.runningVar = this.registerBuffer("running_var", this.trackRunningStats ? zeros([numFeatures], { dtype }) : null);
    // PyTorch keeps the counter as an int64 buffer; here a 0-d float64 tensor
    // (exact for counts up to 2^53) so that it travels in the state dict.
    this.batchesTracked = this.registerBuffer(
      "num_batches_tracked",
      this.trackRunningStats ? zeros([], { dtype: "float64" }) : null,
    );
    this.resetParameters();
  }

  /**
   * Whether training updates the running statistics. As in PyTorch it can be
   * changed after construction, and it decides only that: with running
   * statistics allocated (built with trackRunningStats: true), training with
   * it false uses batch statistics and updates nothing, and eval still
   * normalizes with the running statistics; built without them, BN uses
   * batch statistics always and setting it true changes nothing.
   */
  get trackRunningStats(): boolean {
    return this._trackRunningStats;
  }

  set trackRunningStats(value: boolean) {
    this._trackRunningStats = value;
  }

  /** Whether running statistics exist (they do when built with trackRunningStats: true). */
  get hasRunningStats(): boolean {
    return this.runningMean !== null;
  }

  get momentum(): number | null {
    return this._momentum;
  }

  set momentum(value: number | null) {
    if (value !== null && !(value >= 0 && value <= 1)) {
      throw new Error(
        `${this.constructor.name}: momentum must be in [0, 1] (the weight of the new batch) or null (cumulative average); got ${value}. For a Keras-style momentum such as 0.99 use kerasMomentum(0.99) = 0.01.`,
      );
    }
    this._momentum = value;
  }

  override extraRepr(): string {
    const momentum = this.momentum === null ? "None" : pyFloat(this.momentum);
    return `${this.numFeatures}, eps=${pyFloat(this.eps)}, momentum=${momentum}, affine=${pyBool(this.affine)}, track_running_stats=${pyBool(this.trackRunningStats)}`;
  }

  /** Training batches seen since the running statistics were last reset. */
  get numBatchesTracked(): number {
    return this.batchesTracked === null ? 0 : this.batchesTracked.data[0];
  }

  get frozen(): boolean {
    return this._frozen;
  }

  /** A state dict saved before PyTorch had the counter has no `num_batches_tracked`: it then starts at 0, as in PyTorch. */
  protected override defaultsForMissingState(): Record<string, number> {
    return this.trackRunningStats ? { num_batches_tracked: 0 } : {};
  }

  protected override nonNegativeState(): string[] {
    return ["running_var", "num_batches_tracked"];
  }

  /** Running mean 0, running variance 1, counter 0. */
  resetRunningStats(): void {
    if (!this.hasRunningStats) return;
    this.runningMean!.data.fill(0);
    this.runningVar!.data.fill(1);
    this.batchesTracked!.data[0] = 0;
  }

  /** γ = 1, β = 0, and fresh running statistics. */
  resetParameters(): void {
    this.resetRunningStats();
    this.weight?.data.fill(1);
    this.bias?.data.fill(0);
  }

  /**
   * For fine-tuning: normalize with the running statistics even in training
   * mode, never update them, and stop training γ and β.
   */
  freeze(): this {
    if (!this.hasRunningStats) {
      throw new Error(`${this.describe()}: freeze() needs running statistics, but this layer was built with trackRunningStats: false`);
    }
    this._frozen = true;
    if (this.weight) this.weight.requiresGrad = false;
    if (this.bias) this.bias.requiresGrad = false;
    return this;
  }

  unfreeze(): this {
    this._frozen = false;
    if (this.weight) this.weight.requiresGrad = true;
    if (this.bias) this.bias.requiresGrad = true;
    return this;
  }

  /** Which ranks the layer accepts, e.g. "(N, C) or (N, C, L)". */
  protected abstract readonly expectedLayout: string;
  protected abstract acceptsRank(rank: number): boolean;

  protected checkInput(x: Tensor): void {
    if (!this.acceptsRank(x.ndim)) {
      throw new Error(
        `${this.describe()}: expected an input of shape ${this.expectedLayout}; got [${x.shape.join(", ")}] (${x.ndim}-d)`,
      );
    }
    if (x.shape[1] !== this.numFeatures) {
      throw new Error(
        `${this.describe()}: expected ${this.numFeatures} channels on axis 1 of the input ${this.expectedLayout}; got shape [${x.shape.join(", ")}] with ${x.shape[1]}. Set numFeatures to the channel count of the layer before.`,
      );
    }
    const paramDtype = this.runningMean?.dtype ?? this.weight?.dtype;
    if (paramDtype !== undefined && x.dtype !== paramDtype) {
      throw new Error(`${this.describe()}: the input is ${x.dtype} but the layer is ${paramDtype}; convert with .to("${paramDtype}")`);
    }
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    // As PyTorch: batch statistics in training (unless frozen), and always when there are no running statistics.
    const useBatchStats = !this.hasRunningStats || (this.training && !this._frozen);
    if (!useBatchStats) {
      return batchNormInference(x, this.runningMean!.data, this.runningVar!.data, this.weight, this.bias, this.eps);
    }
    const update = this.training && this.trackRunningStats && this.hasRunningStats && !this._frozen;
    if (x.shape[0] === 0) {
      if (update) this.batchesTracked!.data[0] += 1; // as PyTorch, whose module counts the batch before the kernel sees it is empty
      return this.emptyBatch(x);
    }
    if (this.populationPass) {
      this.checkValuesPerChannel(x, x.shape[0]);
      const { y, stats } = batchNormTrain(x, this.weight, this.bias, this.eps);
      this.updateRunningStats(stats);
      return y;
    }
    return this.normalizeBatch(x, update);
  }

  /**
   * relu(this.forward(x)) or sigmoid(this.forward(x)), with the nonlinearity
   * fused into BN's pass when the layer normalizes with the batch's own
   * statistics by Algorithm 1 (training mode, not a variant that overrides
   * normalizeBatch, not a population pass): the same bits forward and
   * backward, one pass over the activations fewer each way and no tensor
   * between the two. Sequential calls it for a BN layer followed by a ReLU
   * or Sigmoid layer (the §4.1 MLP's BN → sigmoid, the Inception table's
   * BN → ReLU).
   */
  forwardActivated(x: Tensor, activation: FusedActivation): Tensor {
    this.checkInput(x);
    // forward's choices: batch statistics (unless frozen or without them), Algorithm 1 unless overridden, the counter's update.
    const useBatchStats = !this.hasRunningStats || (this.training && !this._frozen);
    const plain = this.normalizeBatch === BatchNormBase.prototype.normalizeBatch;
    if (!useBatchStats || !plain || this.populationPass || x.shape[0] === 0) {
      return activation === "relu" ? relu(this.forward(x)) : sigmoid(this.forward(x));
    }
    this.checkValuesPerChannel(x, x.shape[0]);
    const { y, stats } = batchNormTrain(x, this.weight, this.bias, this.eps, { activation });
    if (this.training && this.trackRunningStats && this.hasRunningStats && !this._frozen) this.updateRunningStats(stats);
    return y;
  }

  /**
   * Training-mode normalization with batch statistics, updating the running
   * statistics when `update` is true: Algorithm 1 here; the variants (ghost
   * batches, Batch Renorm, synchronized statistics) override it.
   */
  protected normalizeBatch(x: Tensor, update: boolean): Tensor {
    this.checkValuesPerChannel(x, x.shape[0]);
    const { y, stats } = batchNormTrain(x, this.weight, this.bias, this.eps);
    if (update) this.updateRunningStats(stats);
    return y;
  }

  /** Batch statistics over `examples` examples of x need more than one value per channel. */
  protected checkValuesPerChannel(x: Tensor, examples: number): void {
    const { S } = channelLayout(x);
    if (examples * S <= 1) {
      throw new Error(
        `${this.describe()}: expected more than 1 value per channel when using batch statistics; got input shape [${x.shape.join(", ")}], i.e. ${examples * S} value per channel${examples === x.shape[0] ? "" : ` in each group of ${examples} examples`}, whose variance is undefined. Drop the last incomplete batch (make every batch at least 2 examples), or call .eval() to normalize with the running statistics.`,
      );
    }
  }

  /**
   * An empty batch in training, as PyTorch handles it: an empty output,
   * gradients of zero for γ and β, the running mean and variance untouched
   * (PyTorch's counter of batches still counts it).
   */
  private emptyBatch(x: Tensor): Tensor {
    const y = new Tensor(allocate(x.dtype, 0), x.shape);
    const inputs = [x, this.weight, this.bias].filter((t): t is Tensor => t !== null);
    return record(y, "batch_norm_empty", inputs, () =>
      inputs.map((t) => (t === x ? allocate(x.dtype, 0) : allocate(t.dtype, t.size))),
    );
  }

  /**
   * running ← (1 − f)·running + f·batch with f = momentum, or f = 1/t for the
   * cumulative average of the t batches seen (momentum null). The variance
   * that enters is the unbiased m/(m−1)·σ²_B. Statistics that would store a
   * non-finite value are refused before anything is written.
   */
  protected updateRunningStats(stats: BatchStats): void {
    const unbias = stats.count / (stats.count - 1);
    this.writeRunningStats(stats, (f, runningMean, runningVar, nextMean, nextVar) => {
      for (let c = 0; c < nextMean.length; c++) {
        nextMean[c] = (1 - f) * runningMean[c] + f * stats.mean[c];
        nextVar[c] = (1 - f) * runningVar[c] + f * stats.variance[c] * unbias;
      }
    });
  }

  /** The update weight f (momentum, or 1/t for the cumulative average) and the batch count t after this batch. */
  private nextUpdateWeight(): { f: number; tracked: number } {
    const tracked = this.batchesTracked!.data[0] + 1;
    return { f: this._momentum === null ? 1 / tracked : this._momentum, tracked };
  }

  /** Store the next running statistics, already rounded to the buffers' dtype, unless one is not finite (then throw, with nothing written). */
  private commitRunningStats(stats: BatchStats, nextMean: Float64Array, nextVar: Float64Array, tracked: number): void {
    for (let c = 0; c < nextMean.length; c++) {
      if (!Number.isFinite(nextMean[c]) || !Number.isFinite(nextVar[c])) {
        throw new Error(
          `${this.describe()}: the batch statistics of channel ${c} (mean ${stats.mean[c]}, variance ${stats.variance[c]}) would leave running statistics that are not finite in ${this.runningMean!.dtype}: the input holds NaN, Infinity or values too large to normalize, so the run has likely diverged. The running statistics were left unchanged; lower the learning rate or check the input data.`,
        );
      }
    }
    this.runningMean!.data.set(nextMean);
    this.runningVar!.data.set(nextVar);
    this.batchesTracked!.data[0] = tracked;
  }

  /**
   * Write the next running statistics and count the batch. `next` fills
   * nextMean and nextVar (in double, for every channel, in one loop: this
   * runs every training step of every BN layer) from the current running
   * statistics and f, the update weight (momentum, or 1/t for the cumulative
   * average). The values are rounded to the buffers' dtype here: a finite
   * float32 batch can still have a variance beyond float32's range, so
   * finiteness is checked on what would actually be stored, before anything
   * is written.
   */
  protected writeRunningStats(
    stats: BatchStats,
    next: (f: number, runningMean: ArrayLike<number>, runningVar: ArrayLike<number>, nextMean: Float64Array, nextVar: Float64Array) => void,
  ): void {
    const { f, tracked } = this.nextUpdateWeight();
    const rm = this.runningMean!.data;
    const rv = this.runningVar!.data;
    const C = this.numFeatures;
    const nextMean = new Float64Array(C);
    const nextVar = new Float64Array(C);
    next(f, rm, rv, nextMean, nextVar);
    if (rm instanceof Float32Array) {
      for (let c = 0; c < C; c++) {
        nextMean[c] = Math.fround(nextMean[c]);
        nextVar[c] = Math.fround(nextVar[c]);
      }
    }
    this.commitRunningStats(stats, nextMean, nextVar, tracked);
  }
}

/** BN per activation, for (N, C) or (N, C, L) inputs: statistics over N (and L). */
export class BatchNorm1d extends BatchNormBase {
  protected readonly expectedLayout = "(N, C) or (N, C, L)";
  protected acceptsRank(rank: number): boolean {
    return rank === 2 || rank === 3;
  }
}

/** BN per feature map (§3.2), for (N, C, H, W) inputs: statistics over m' = N·H·W values. */
export class BatchNorm2d extends BatchNormBase {
  protected readonly expectedLayout = "(N, C, H, W)";
  protected acceptsRank(rank: number): boolean {
    return rank === 4;
  }
}

/** BN per feature volume, for (N, C, D, H, W) inputs (video, volumetric images): statistics over N·D·H·W values. */
export class BatchNorm3d extends BatchNormBase {
  protected readonly expectedLayout = "(N, C, D, H, W)";
  protected acceptsRank(rank: number): boolean {
    return rank === 5;
  }
}
