import { Tensor } from "../tensor/tensor.js";
import { localResponseNorm, LocalResponseNormOptions } from "../ops/lrn.js";
import { Module } from "./module.js";
import { pyFloat } from "./repr.js";

/**
 * Local Response Normalization across channels, as PyTorch's
 * `nn.LocalResponseNorm(size, alpha, beta, k)`:
 * y_c = x_c / (k + α/size · Σ_{c' in the window of c} x_{c'}²)^β.
 * Part of the baseline Inception; §4.2.1 removes it from the BN networks.
 */
export class LocalResponseNorm extends Module {
  readonly size: number;
  readonly alpha: number;
  readonly beta: number;
  readonly k: number;

  constructor(size: number, options: LocalResponseNormOptions = {}) {
    super();
    if (!Number.isInteger(size) || size < 1) throw new Error(`LocalResponseNorm: size must be a positive integer; got ${size}`);
    this.size = size;
    this.alpha = options.alpha ?? 1e-4;
    this.beta = options.beta ?? 0.75;
    this.k = options.k ?? 1;
  }

  override extraRepr(): string {
    return `${this.size}, alpha=${pyFloat(this.alpha)}, beta=${pyFloat(this.beta)}, k=${pyFloat(this.k)}`;
  }

  forward(x: Tensor): Tensor {
    return localResponseNorm(x, this.size, { alpha: this.alpha, beta: this.beta, k: this.k });
  }
}
