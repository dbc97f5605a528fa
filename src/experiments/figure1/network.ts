import { nn } from "../../index.js";
import { Generator } from "../../tensor/random.js";
import type { Figure1Config, Figure1Norm, NetworkKind } from "./config.js";

/**
 * The §4.1 network: 784 → hidden sigmoid layers → 10 logits. The BN network
 * puts BN before each hidden sigmoid and drops those layers' biases (β takes
 * their place, §3.2). Weights ~ N(0, initStd²), biases 0 (with `config.init`
 * "default": PyTorch's nn.Linear initialization as constructed). `config.activation`
 * "relu" swaps the sigmoids for ReLUs (the browser demo's control).
 *
 * Returns the model and the index of the layer whose output is the input of
 * the last hidden nonlinearity (the probed activation).
 */
export function buildFigure1Network(
  kind: NetworkKind,
  config: Figure1Config,
  generator: Generator,
): { model: nn.Sequential; probeLayer: number } {
  const layers: nn.Module[] = [];
  let width = 784;
  let probeLayer = -1;
  for (const h of config.hidden) {
    const linear = new nn.Linear(width, h, { bias: kind === "baseline", generator });
    if (config.init !== "default") {
      nn.init.normal(linear.weight, { std: config.initStd, generator });
      if (linear.bias) nn.init.zeros(linear.bias);
    }
    layers.push(linear);
    if (kind === "batchnorm") layers.push(normLayer(h, config.norm, config.bnMomentum));
    probeLayer = layers.length - 1;
    layers.push(config.activation === "relu" ? new nn.ReLU() : new nn.Sigmoid());
    width = h;
  }
  const head = new nn.Linear(width, 10, { generator });
  if (config.init !== "default") {
    nn.init.normal(head.weight, { std: config.initStd, generator });
    nn.init.zeros(head.bias!);
  }
  layers.push(head);
  return { model: new nn.Sequential(...layers), probeLayer };
}

/** The BN network's normalization of `features` units: BatchNorm1d, or config.norm's ghost BN or Batch Renorm. */
function normLayer(features: number, norm: Figure1Norm | undefined, momentum: number | undefined): nn.Module {
  if (norm === undefined) return new nn.BatchNorm1d(features, { momentum });
  if (norm.kind === "ghost") return new nn.GhostBatchNorm1d(features, { virtualBatchSize: norm.virtualBatchSize, momentum });
  const { kind: _kind, ...schedule } = norm;
  return new nn.BatchRenorm1d(features, { ...schedule, momentum });
}
