import { Tensor } from "../tensor/tensor.js";
import { ReLU, Sigmoid } from "./activation.js";
import { BatchNormBase } from "./batchnorm.js";
import type { FusedActivation } from "../ops/batchnorm.js";
import { Module } from "./module.js";

/** Modules applied in order; children are named "0", "1", … as in PyTorch. */
export class Sequential extends Module {
  private readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }

  get length(): number {
    return this.layers.length;
  }

  at(i: number): Module {
    const m = this.layers.at(i);
    if (m === undefined) throw new Error(`Sequential.at(${i}): there are ${this.layers.length} layers`);
    return m;
  }

  /** Put `m` in place of layer i (as PyTorch's `seq[i] = m`). */
  replace(i: number, m: Module): void {
    if (i < 0 || i >= this.layers.length) throw new Error(`Sequential.replace(${i}): there are ${this.layers.length} layers`);
    this.layers[i] = m;
    this.registerModule(String(i), m);
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.layers[Symbol.iterator]();
  }

  /**
   * Each layer in turn; a BN layer followed by a ReLU or Sigmoid layer runs
   * as one (BatchNormBase.forwardActivated: the same bits, one pass fewer
   * each way), unless either layer's forward is not its class's own (a
   * subclass's, or one set on the instance, as summary() does to see every
   * layer's output).
   */
  forward(x: Tensor): Tensor {
    return this.forwardFrom(x, 0);
  }

  /** The layers from `start` on (as forward does), applied to x: what the whole runs after layer start − 1. */
  forwardFrom(x: Tensor, start: number): Tensor {
    let y = x;
    const layers = this.layers;
    for (let i = start; i < layers.length; i++) {
      const layer = layers[i];
      const fused = layer instanceof BatchNormBase && i + 1 < layers.length ? fusedActivation(layer, layers[i + 1]) : null;
      if (fused !== null) {
        y = (layer as BatchNormBase).forwardActivated(y, fused);
        i++;
      } else {
        y = layer.forward(y);
      }
    }
    return y;
  }
}

/** The nonlinearity BN layer `bn` and the layer after it run as: a plain ReLU or Sigmoid, both forwards the classes' own; else null. */
function fusedActivation(bn: BatchNormBase, next: Module): FusedActivation | null {
  if (bn.forward !== BatchNormBase.prototype.forward) return null;
  const ctor: unknown = next.constructor;
  const forward: unknown = next.forward;
  if (ctor === ReLU && forward === ReLU.prototype.forward) return "relu";
  if (ctor === Sigmoid && forward === Sigmoid.prototype.forward) return "sigmoid";
  return null;
}
