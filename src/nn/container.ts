import { Tensor } from "../tensor/tensor.js";
import { concat } from "../ops/concat.js";
import { conv2dMany } from "../ops/conv.js";
import { Conv2d } from "./conv.js";
import { Module } from "./module.js";
import { Sequential } from "./sequential.js";

/**
 * Parallel branches on one input, their outputs joined along the channels
 * (dim 1): the shape of an Inception module, and Lua Torch's `nn.Concat(2)`.
 * Branches are named "0", "1", … as Sequential's layers, so state-dict keys
 * read "3.1.0.weight" for layer 0 of branch 1 of layer 3. Every branch must
 * give the same N, H and W.
 *
 * Branches that open with a convolution over the same window (an Inception
 * module's 1×1 convolutions: the 1×1 branch and the reductions before the
 * 3×3s) have those convolutions run as one, by their weights stacked
 * (conv2dMany): the same outputs, one pass over the input and one ∂ℓ/∂x.
 * A branch opens with a convolution when it is a Conv2d, or a Sequential
 * whose first layer opens with one; only the classes' own forwards count
 * (summary() and other per-instance forwards see every layer run alone).
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
    const outs = this.branchOutputs(x);
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

  /** Each branch's output on x, in the branches' order; leading convolutions over one window run as one. */
  private branchOutputs(x: Tensor): Tensor[] {
    const heads = this.branches.map(leadingConv);
    const windowOf = (c: Conv2d) => `${c.kernelSize}|${c.stride}|${c.padding}`;
    const shared = new Map<string, number[]>(); // window → the branches opening with a convolution over it
    heads.forEach((h, i) => {
      if (h !== null) shared.set(windowOf(h.conv), [...(shared.get(windowOf(h.conv)) ?? []), i]);
    });
    const headOutputs = new Map<number, Tensor>();
    return this.branches.map((branch, i) => {
      const head = heads[i];
      const group = head === null ? undefined : shared.get(windowOf(head.conv));
      if (head === null || group === undefined || group.length < 2) return branch.forward(x);
      if (!headOutputs.has(i)) {
        const convs = group.map((j) => heads[j]!.conv);
        convs.forEach((c) => c.checkInput(x));
        const ys = conv2dMany(x, convs.map((c) => c.weight), convs.map((c) => c.bias), { stride: head.conv.stride, padding: head.conv.padding });
        group.forEach((j, k) => headOutputs.set(j, ys[k]));
      }
      return head.rest(headOutputs.get(i)!);
    });
  }
}

/** The convolution a branch opens with and the rest of the branch after it, or null (see Concat). */
function leadingConv(m: Module): { conv: Conv2d; rest: (y: Tensor) => Tensor } | null {
  if (m instanceof Conv2d && m.constructor === Conv2d && m.forward === Conv2d.prototype.forward) return { conv: m, rest: (y) => y };
  if (m instanceof Sequential && m.constructor === Sequential && m.forward === Sequential.prototype.forward && m.length > 0) {
    const head = leadingConv(m.at(0));
    return head === null ? null : { conv: head.conv, rest: (y) => m.forwardFrom(head.rest(y), 1) };
  }
  return null;
}
