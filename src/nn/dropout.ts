import { Generator } from "../tensor/random.js";
import { Tensor } from "../tensor/tensor.js";
import { checkDropProbability, dropout } from "../ops/dropout.js";
import { Module } from "./module.js";
import { pyFloat } from "./repr.js";

export interface DropoutOptions {
  /** Source of the masks; default the global generator seeded by `manualSeed`. */
  generator?: Generator;
}

/**
 * Inverted dropout, as PyTorch's `nn.Dropout`: in training mode each value
 * is zeroed with probability p and the rest are scaled by 1/(1 − p); in eval
 * mode the identity. §4.2.1 removes it from BN-Inception (§3.4: BN
 * regularizes on its own); the baseline Inception keeps it.
 */
export class Dropout extends Module {
  readonly p: number;
  /** The explicit generator, or null for the global one (looked up at each call, so `manualSeed` reaches copies too). */
  readonly generator: Generator | null;

  constructor(p = 0.5, options: DropoutOptions = {}) {
    super();
    checkDropProbability(p, "Dropout");
    this.p = p;
    this.generator = options.generator ?? null;
  }

  override extraRepr(): string {
    return `p=${pyFloat(this.p)}, inplace=False`;
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, generator: this.generator ?? undefined });
  }
}
