import { Tensor } from "../tensor/tensor.js";
import { concat } from "../ops/concat.js";
import { conv2dMany } from "../ops/conv.js";
import { Conv2d } from "./conv.js";
import { Module } from "./module.js";
import { AvgPool2d } from "./pool.js";
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
 *
 * An average pool followed by a 1×1 convolution that does not widen the
 * channels (Inception's pooling branch, avg-pool → projection) runs the
 * other way round — the convolution first, with the others, then the pool
 * on its fewer channels. Both are linear, the convolution acts on each
 * position alone and the pool on each channel alone, so
 * pool(W·x + b) = W·pool(x) + b exactly in real arithmetic (the bias too,
 * unless padded positions count in the divisor); in float32 the two orders
 * round differently, by a few units in the last place. For the pooling
 * branches of the Inception table it saves pooling 16–66 channels to pool
 * 2–8 and one convolution call per module.
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
  if (m instanceof Conv2d && ownForward(m, Conv2d)) return { conv: m, rest: (y) => y };
  if (m instanceof Sequential && ownForward(m, Sequential) && m.length > 0) {
    const first = m.at(0);
    if (first instanceof AvgPool2d && ownForward(first, AvgPool2d) && m.length > 1) {
      // avg-pool → 1×1 convolution: the convolution first (see Concat).
      const head = leadingConv(m.at(1));
      if (head === null || !commutesWithPool(first, head.conv)) return null;
      return { conv: head.conv, rest: (y) => m.forwardFrom(head.rest(first.forward(y)), 2) };
    }
    const head = leadingConv(first);
    return head === null ? null : { conv: head.conv, rest: (y) => m.forwardFrom(head.rest(y), 1) };
  }
  return null;
}

/** Whether m's forward is its class's own (not a subclass's, nor one set on the instance). */
function ownForward(m: Module, cls: { prototype: Module }): boolean {
  return m.constructor === cls && m.forward === cls.prototype.forward;
}

/**
 * Whether conv(pool(x)) = pool(conv(x)) and the swap saves work: a 1×1
 * convolution without stride or padding that does not widen the channels,
 * and a bias (if any) that the pool keeps as it is — every window's divisor
 * its count of real positions (countIncludePad false, or no padding).
 */
function commutesWithPool(pool: AvgPool2d, conv: Conv2d): boolean {
  const pointwise = [...conv.kernelSize, ...conv.stride].every((v) => v === 1) && conv.padding.every((v) => v === 0);
  const keepsBias = conv.bias === null || !pool.countIncludePad || pool.padding.every((v) => v === 0);
  return pointwise && keepsBias && conv.outChannels <= conv.inChannels;
}
