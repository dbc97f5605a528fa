import { Generator } from "../tensor/random.js";
import { BatchNorm2d, BatchNormBase } from "./batchnorm.js";
import { deepCopy } from "./clone.js";
import { Conv2d } from "./conv.js";
import { Identity } from "./activation.js";
import { Linear } from "./linear.js";
import { Module } from "./module.js";
import { Sequential } from "./sequential.js";

/**
 * Algorithm 2, step 11: fold each inference-mode BN into the layer before it.
 * BN with fixed statistics is the affine map y = s·x + (β − s·E[x]) with
 * s = γ/sqrt(Var[x] + ε), so a preceding Linear y = W·u + b becomes
 *   W' = diag(s)·W,   b' = s·(b − E[x]) + β
 * (b = 0 when the Linear has no bias). A Conv2d followed by a BatchNorm2d
 * (§3.2: one s per feature map) folds the same way, filter by filter:
 *   W'[o, :, :, :] = s_o·W[o, :, :, :],   b'_o = s_o·(b_o − E[x]_o) + β_o.
 * Any sign of γ, and γ = 0, fold the same way. Returns a new model whose
 * output in eval mode equals the original's; the original is left untouched.
 * BN layers that do not follow a Linear or Conv2d inside a Sequential stay as
 * they are.
 */
export function foldBatchNorm<M extends Module>(model: M): M {
  for (const m of model.modules()) {
    if (!(m instanceof BatchNormBase)) continue;
    if (!m.hasRunningStats) {
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
      } else if (layer instanceof Conv2d && bn instanceof BatchNorm2d && bn.numFeatures === layer.outChannels) {
        m.replace(i, foldConv2d(layer, bn));
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

function foldConv2d(conv: Conv2d, bn: BatchNormBase): Conv2d {
  const { inChannels, outChannels, kernelSize, stride, padding } = conv;
  // Every value is overwritten below; the throwaway generator keeps the
  // initialization from drawing on the global one.
  const out = new Conv2d(inChannels, outChannels, kernelSize, {
    stride,
    padding,
    bias: true,
    dtype: conv.weight.dtype,
    generator: new Generator(0),
  });
  out.training = conv.training;
  const W = conv.weight.data;
  const filter = W.length / outChannels; // in·kh·kw values per output channel
  const rm = bn.runningMean!.data;
  const rv = bn.runningVar!.data;
  for (let o = 0; o < outChannels; o++) {
    const gamma = bn.weight === null ? 1 : bn.weight.data[o];
    const beta = bn.bias === null ? 0 : bn.bias.data[o];
    const s = gamma / Math.sqrt(rv[o] + bn.eps);
    for (let i = o * filter; i < (o + 1) * filter; i++) out.weight.data[i] = s * W[i];
    const b = conv.bias === null ? 0 : conv.bias.data[o];
    out.bias!.data[o] = s * (b - rm[o]) + beta;
  }
  return out;
}
