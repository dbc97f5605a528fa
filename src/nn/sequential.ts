import { Tensor } from "../tensor/tensor.js";
import { abandonActivationGroup, closeActivationGroup, inActivationGroup, openActivationGroup } from "../tensor/activationGroup.js";
import { Flatten, Identity, ReLU, Sigmoid, Tanh } from "./activation.js";
import { BatchNorm1d, BatchNorm2d, BatchNormBase } from "./batchnorm.js";
import { Conv2d } from "./conv.js";
import { Linear } from "./linear.js";
import { AvgPool2d, MaxPool2d } from "./pool.js";
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

  /**
   * The layers from `start` on (as forward does), applied to x: what the
   * whole runs after layer start − 1. Outside scope(), where every layer
   * from some point to the end is of covshift's own classes that keep no
   * activation, the activations between those layers are held by nothing but
   * the graph (no user's layer sees them, nor anything made from them): they
   * live in the backend's memory and are recycled after the backward pass
   * (see tensor/activationGroup.ts).
   */
  forwardFrom(x: Tensor, start: number): Tensor {
    let y = x;
    const layers = this.layers;
    let suffix = layers.length; // the first layer of the longest run of such layers that ends the Sequential
    while (suffix > start && keepsNoActivation(layers[suffix - 1])) suffix--;
    const group = layers.length - Math.max(suffix, start) > 1 ? openActivationGroup() : null;
    try {
      for (let i = start; i < layers.length; i++) {
        const layer = layers[i];
        const fused = layer instanceof BatchNormBase && i + 1 < layers.length ? fusedActivation(layer, layers[i + 1]) : null;
        const last = fused !== null ? i + 1 : i; // the layer whose output this step returns
        const intermediate = group !== null && i >= suffix && last + 1 < layers.length;
        const input = y;
        y = inActivationGroup(intermediate ? group : null, () => (fused !== null ? (layer as BatchNormBase).forwardActivated(input, fused) : layer.forward(input)));
        i = last;
      }
    } catch (err) {
      abandonActivationGroup(group);
      throw err;
    }
    closeActivationGroup(group, y);
    return y;
  }
}

/** Layer classes whose forward keeps neither its input nor its output (nor anything made from them) past the call, beyond the graph. */
const KEEP_NO_ACTIVATION: readonly (abstract new (...args: never[]) => Module)[] = [
  Linear, Conv2d, BatchNorm1d, BatchNorm2d, ReLU, Sigmoid, Tanh, Identity, Flatten, MaxPool2d, AvgPool2d,
];

/** Whether `m` is an instance of exactly one of those classes, running its class's own forward (not a subclass's, not one set on the instance). */
function keepsNoActivation(m: Module): boolean {
  const ctor = m.constructor as abstract new (...args: never[]) => Module;
  return KEEP_NO_ACTIVATION.includes(ctor) && m.forward === ctor.prototype.forward && !(m as { forwardActivated?: unknown }).hasOwnProperty("forwardActivated");
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
