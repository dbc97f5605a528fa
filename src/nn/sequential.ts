import { Tensor } from "../tensor/tensor.js";
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

  forward(x: Tensor): Tensor {
    let y = x;
    for (const layer of this.layers) y = layer.forward(y);
    return y;
  }
}
