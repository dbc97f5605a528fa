import { ghostBatchNormTrain } from "../ops/batchnorm.js";
import { Tensor } from "../tensor/tensor.js";
import { BatchNormBase, BatchNormOptions } from "./batchnorm.js";

export interface GhostBatchNormOptions extends BatchNormOptions {
  /** Examples per virtual batch; must divide every training batch. */
  virtualBatchSize: number;
}

/**
 * Ghost Batch Normalization (Hoffer, Hubara & Soudry 2017, "Train longer,
 * generalize better", Algorithm 1): in training, a batch of N examples is
 * cut into N/virtualBatchSize consecutive virtual batches, each normalized
 * with its own mean and variance, and the running statistics are updated
 * once per virtual batch, in order. Large-batch training so keeps the noise
 * (and the regularization) of BN's small-batch statistics. Eval mode is BN's:
 * the running statistics. The virtual batch size must divide the batch.
 */
export abstract class GhostBatchNormBase extends BatchNormBase {
  readonly virtualBatchSize: number;

  constructor(numFeatures: number, options: GhostBatchNormOptions) {
    super(numFeatures, options);
    const v = options?.virtualBatchSize;
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(
        `${this.constructor.name}: virtualBatchSize must be a positive integer (examples per virtual batch); got ${v}. Example: new nn.${this.constructor.name}(${numFeatures}, { virtualBatchSize: 32 })`,
      );
    }
    this.virtualBatchSize = v;
  }

  protected override normalizeBatch(x: Tensor, update: boolean): Tensor {
    const N = x.shape[0];
    if (N % this.virtualBatchSize !== 0) {
      throw new Error(
        `${this.describe()}: the virtual batch size ${this.virtualBatchSize} does not divide the batch of ${N} examples; make the batch size a multiple of ${this.virtualBatchSize} (or drop the last incomplete batch).`,
      );
    }
    this.checkValuesPerChannel(x, this.virtualBatchSize);
    const { y, stats } = ghostBatchNormTrain(x, this.weight, this.bias, this.eps, this.virtualBatchSize);
    if (update) for (const s of stats) this.updateRunningStats(s);
    return y;
  }
}

/** Ghost BN per activation, for (N, C) or (N, C, L) inputs. */
export class GhostBatchNorm1d extends GhostBatchNormBase {
  protected readonly expectedLayout = "(N, C) or (N, C, L)";
  protected acceptsRank(rank: number): boolean {
    return rank === 2 || rank === 3;
  }
}

/** Ghost BN per feature map, for (N, C, H, W) inputs. */
export class GhostBatchNorm2d extends GhostBatchNormBase {
  protected readonly expectedLayout = "(N, C, H, W)";
  protected acceptsRank(rank: number): boolean {
    return rank === 4;
  }
}
