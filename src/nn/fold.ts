import { BatchNormBase } from "./batchnorm.js";
import { deepCopy } from "./clone.js";
import { Identity } from "./activation.js";
import { Linear } from "./linear.js";
import { Module } from "./module.js";
import { Sequential } from "./sequential.js";

/**
 * Algorithm 2, step 11: fold each inference-mode BN into the layer before it.
 * BN with fixed statistics is the affine map y = s·x + (β − s·E[x]) with
 * s = γ/sqrt(Var[x] + ε), so a preceding Linear y = W·u + b becomes
 *   W' = diag(s)·W,   b' = s·(b − E[x]) + β
 * (b = 0 when the Linear has no bias). Any sign of γ, and γ = 0, fold the
 * same way. Returns a new model whose output in eval mode equals the
 * original's; the original is left untouched. BN layers that do not follow a
 * Linear inside a Sequential stay as they are.
 */
export function foldBatchNorm<M extends Module>(model: M): M {
  for (const m of model.modules()) {
    if (!(m instanceof BatchNormBase)) continue;
    if (!m.trackRunningStats) {
      throw new Error(
        `foldBatchNorm: ${m.constructor.name} '${m.path}' has no running statistics (trackRunningStats: false), so it always normalizes with batch statistics and cannot be folded into a fixed layer`,
      );
    }
    if (m.training && !m.frozen) {
      throw new Error(
        `foldBatchNorm: ${m.constructor.name} '${m.path}' is in training mode, where it normalizes with batch statistics. Call model.eval() first (after recomputeBatchNormStats for exact population statistics).`,
      );
    }
  }
  const folded = deepCopy(model);
  for (const m of folded.modules()) {
    if (!(m instanceof Sequential)) continue;
    for (let i = 0; i + 1 < m.length; i++) {
      const layer = m.at(i);
      const bn = m.at(i + 1);
      if (layer instanceof Linear && bn instanceof BatchNormBase && bn.numFeatures === layer.outFeatures) {
        m.replace(i, foldLinear(layer, bn));
        m.replace(i + 1, new Identity());
      }
    }
  }
  return folded;
}

function foldLinear(linear: Linear, bn: BatchNormBase): Linear {
  const { inFeatures: inF, outFeatures: outF } = linear;
  const out = new Linear(inF, outF, { bias: true, dtype: linear.weight.dtype });
  out.training = linear.training;
  const W = linear.weight.data;
  const rm = bn.runningMean!.data;
  const rv = bn.runningVar!.data;
  for (let o = 0; o < outF; o++) {
    const gamma = bn.weight === null ? 1 : bn.weight.data[o];
    const beta = bn.bias === null ? 0 : bn.bias.data[o];
    const s = gamma / Math.sqrt(rv[o] + bn.eps);
    for (let i = 0; i < inF; i++) out.weight.data[o * inF + i] = s * W[o * inF + i];
    const b = linear.bias === null ? 0 : linear.bias.data[o];
    out.bias!.data[o] = s * (b - rm[o]) + beta;
  }
  return out;
}
