import { Tensor } from "../tensor/tensor.js";
import { concat } from "../ops/concat.js";
import { Module } from "./module.js";

/**
 * Parallel branches on one input, their outputs joined along the channels
 * (dim 1): the shape of an Inception module, and Lua Torch's `nn.Concat(2)`.
 * Branches are named "0", "1", … as Sequential's layers, so state-dict keys
 * read "3.1.0.weight" for layer 0 of branch 1 of layer 3. Every branch must
 * give the same N, H and W.
 */
export class Concat extends Module {
  private readonly branches: Module[];

  constructor(...branches: Module[]) {
    super();
    if (branches.length === 0) throw new Error("Concat: needs at least one branch");
    this.branches = branches;
    branches.forEach((m, i) => this.registerModule(String(i), m));
  }

  get length(): number {
    return this.branches.length;
  }

  at(i: number): Module {
    const m = this.branches.at(i);
    if (m === undefined) throw new Error(`Concat.at(${i}): there are ${this.branches.length} branches`);
    return m;
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.branches[Symbol.iterator]();
  }

  forward(x: Tensor): Tensor {
    const outs = this.branches.map((b) => b.forward(x));
    const [N, , H, W] = outs[0].shape;
    outs.forEach((y, i) => {
      if (y.ndim !== outs[0].ndim || y.shape[0] !== N || y.shape[2] !== H || y.shape[3] !== W) {
        throw new Error(
          `${this.describe()}: branch ${i} gives shape [${y.shape.join(", ")}] but branch 0 gives [${outs[0].shape.join(", ")}]; the branches must agree on every dimension but the channels (check their strides and padding)`,
        );
      }
    });
    return concat(outs, 1);
  }
}
