import type { DType } from "../backend/storage.js";
import { Generator } from "../tensor/random.js";
import { Tensor, zeros } from "../tensor/tensor.js";
import { conv2d, Size2, toPair } from "../ops/conv.js";
import { kaimingUniform, uniform } from "./init.js";
import { Module } from "./module.js";
import { pyTuple } from "./repr.js";

export interface Conv2dOptions {
  /** Step of the window, one number or [h, w]. Default 1. */
  stride?: Size2;
  /** Zeros added on each side, one number or [h, w]. Default 0. */
  padding?: Size2;
  /** Learn a per-channel bias. Default true; drop it before BN (§3.2: β subsumes it). */
  bias?: boolean;
  dtype?: DType;
  generator?: Generator;
}

/**
 * 2-d convolution over (N, C, H, W) inputs, shaped like PyTorch's
 * `nn.Conv2d`: weight (out, in, kh, kw), bias (out). Initialized as PyTorch
 * does by default: W and b from U(−1/sqrt(fan_in), 1/sqrt(fan_in)) with
 * fan_in = in·kh·kw.
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inChannels: number, outChannels: number, kernelSize: Size2, options: Conv2dOptions = {}) {
    super();
    for (const [name, v] of [["inChannels", inChannels], ["outChannels", outChannels]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`Conv2d: ${name} must be a positive integer; got ${v}`);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = toPair(kernelSize, "Conv2d: kernelSize", 1);
    this.stride = toPair(options.stride ?? 1, "Conv2d: stride", 1);
    this.padding = toPair(options.padding ?? 0, "Conv2d: padding", 0);
    const dtype = options.dtype ?? "float32";
    this.weight = this.registerParameter("weight", zeros([outChannels, inChannels, ...this.kernelSize], { dtype }))!;
    this.bias = this.registerParameter("bias", options.bias === false ? null : zeros([outChannels], { dtype }));
    this.resetParameters(options.generator);
  }

  /** PyTorch's default initialization (kaiming_uniform with a = √5, and the bias from U(±1/sqrt(fan_in))). */
  resetParameters(generator?: Generator): void {
    kaimingUniform(this.weight, { gain: Math.sqrt(1 / 3), generator });
    if (this.bias !== null) {
      const bound = 1 / Math.sqrt(this.inChannels * this.kernelSize[0] * this.kernelSize[1]);
      uniform(this.bias, { low: -bound, high: bound, generator });
    }
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${pyTuple(this.kernelSize)}, stride=${pyTuple(this.stride)}`;
    if (this.padding[0] !== 0 || this.padding[1] !== 0) s += `, padding=${pyTuple(this.padding)}`;
    if (this.bias === null) s += ", bias=False";
    return s;
  }

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }

  /** Throws, saying what to change, unless x is an input this layer takes. */
  checkInput(x: Tensor): void {
    if (x.ndim !== 4 || x.shape[1] !== this.inChannels) {
      throw new Error(
        `${this.describe()}: expected an input of shape (N, ${this.inChannels}, H, W); got [${x.shape.join(", ")}]. Set inChannels to the channel count of the layer before.`,
      );
    }
    if (x.dtype !== this.weight.dtype) {
      throw new Error(`${this.describe()}: the input is ${x.dtype} but the layer is ${this.weight.dtype}; convert with .to("${this.weight.dtype}")`);
    }
  }
}
