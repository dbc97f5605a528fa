import type { DType } from "../backend/storage.js";
import { Generator } from "../tensor/random.js";
import { Tensor, zeros } from "../tensor/tensor.js";
import { linear } from "../ops/matmul.js";
import { kaimingUniform, uniform } from "./init.js";
import { Module } from "./module.js";
import { pyBool } from "./repr.js";

export interface LinearOptions {
  bias?: boolean;
  dtype?: DType;
  generator?: Generator;
}

/**
 * y = x·Wᵀ + b. Initialized as PyTorch does by default: W and b from
 * U(−1/sqrt(in), 1/sqrt(in)).
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    for (const [name, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new Error(`Linear: ${name} must be a positive integer; got ${v}`);
    }
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const dtype = options.dtype ?? "float32";
    this.weight = this.registerParameter("weight", zeros([outFeatures, inFeatures], { dtype }))!;
    this.bias = this.registerParameter("bias", options.bias === false ? null : zeros([outFeatures], { dtype }));
    this.resetParameters(options.generator);
  }

  /** PyTorch's default initialization (kaiming_uniform with a = √5). */
  resetParameters(generator?: Generator): void {
    kaimingUniform(this.weight, { gain: Math.sqrt(1 / 3), generator });
    if (this.bias !== null) {
      const bound = 1 / Math.sqrt(this.inFeatures);
      uniform(this.bias, { low: -bound, high: bound, generator });
    }
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${pyBool(this.bias !== null)}`;
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
