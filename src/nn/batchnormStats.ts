import { noGrad } from "../tensor/autograd.js";
import { Tensor } from "../tensor/tensor.js";
import { BatchNormBase } from "./batchnorm.js";
import { Module } from "./module.js";

/** A mini-batch given as its input tensor, or as a tuple whose first element is the input. */
/** A batch's input: a tensor, a tuple led by it, or an object holding it as `x` (a `DataLoader` batch). */
export type BatchInput = Tensor | readonly [Tensor, ...unknown[]] | { readonly x: Tensor };

/**
 * Algorithm 2, step 10: replace every BN layer's running statistics with
 * exact population statistics of the trained network, E[x] = E_B[μ_B] and
 * Var[x] = E_B[m/(m−1)·σ²_B], averaged over the given training mini-batches.
 *
 * The statistics are reset, then each batch goes forward under noGrad with
 * the BN layers in training mode and momentum null (the cumulative average)
 * and every other layer in eval mode (so Dropout stays off); no optimizer
 * step, no trainable parameter touched. Every module's mode, each BN's
 * momentum, freezing and trackRunningStats are restored afterwards. If
 * anything fails, the previous running statistics are put back.
 *
 * Every BN variant computes plain BN statistics of each whole batch here:
 * ghost BN does not split it, Batch Renorm applies no correction, SyncBN
 * does not synchronize — one population estimate whatever the variant.
 */
export function recomputeBatchNormStats(model: Module, batches: Iterable<BatchInput>): { batches: number } {
  const bns = [...model.modules()].filter((m): m is BatchNormBase => m instanceof BatchNormBase && m.hasRunningStats);
  if (bns.length === 0) return { batches: 0 };
  const modes = new Map<Module, boolean>([...model.modules()].map((m) => [m, m.training]));
  const saved = bns.map((bn) => ({
    bn,
    momentum: bn.momentum,
    frozen: bn.frozen,
    track: bn.trackRunningStats,
    state: [bn.runningMean!.clone(), bn.runningVar!.clone(), bn.numBatchesTracked],
  }));
  let count = 0;
  try {
    noGrad(() => {
      for (const batch of batches) {
        if (count === 0) {
          for (const m of model.modules()) m.training = m instanceof BatchNormBase;
          for (const bn of bns) {
            if (bn.frozen) bn.unfreeze();
            bn.momentum = null;
            bn.trackRunningStats = true;
            bn.populationPass = true;
            bn.resetRunningStats();
          }
        }
        const input = batch instanceof Tensor ? batch : Array.isArray(batch) ? (batch[0] as Tensor) : (batch as { x: Tensor }).x;
        model.forward(input);
        count++;
      }
    });
    if (count === 0) {
      throw new Error("recomputeBatchNormStats: no batches were given; pass at least one training mini-batch (many, for good estimates)");
    }
  } catch (err) {
    for (const { bn, state } of saved) {
      bn.loadStateDict(
        { running_mean: state[0] as Tensor, running_var: state[1] as Tensor, num_batches_tracked: scalar(state[2] as number) },
        { strict: false },
      );
    }
    throw err;
  } finally {
    for (const [m, mode] of modes) m.training = mode;
    for (const { bn, momentum, frozen, track } of saved) {
      bn.momentum = momentum;
      bn.trackRunningStats = track;
      bn.populationPass = false;
      if (frozen) bn.freeze();
    }
  }
  return { batches: count };
}

/**
 * AdaBN (Li et al. 2016; the BN paper's conclusion): adapt a trained network
 * to a new domain by recomputing every BN layer's population statistics on
 * unlabeled batches of that domain, leaving every trainable parameter as it
 * is. The same computation as `recomputeBatchNormStats`, under the name
 * users search for: the model then normalizes the target domain's
 * activations with the target domain's statistics in eval mode.
 */
export function adaptBatchNorm(model: Module, targetBatches: Iterable<BatchInput>): { batches: number } {
  return recomputeBatchNormStats(model, targetBatches);
}

function scalar(v: number): Tensor {
  const t = new Tensor(new Float64Array(1), []);
  t.data[0] = v;
  return t;
}
