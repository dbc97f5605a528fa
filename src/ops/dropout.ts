import { allocate } from "../tensor/allocation.js";
import { defaultGenerator, Generator } from "../tensor/random.js";
import { record, Tensor } from "../tensor/tensor.js";

export interface DropoutOptions {
  /** Drop only in training; false makes dropout the identity. Default true. */
  training?: boolean;
  /** Source of the mask; default the global generator seeded by `manualSeed`. */
  generator?: Generator;
}

/** Check that p is a drop probability dropout can use. */
export function checkDropProbability(p: number, who: string): void {
  if (!(p >= 0 && p < 1)) {
    throw new Error(
      `${who}: the drop probability p must be in [0, 1); got ${p}. p = 0 keeps everything; p = 1 would zero the output and leave nothing to rescale.`,
    );
  }
}

/**
 * Inverted dropout (Srivastava et al. 2014), as `torch.nn.functional.dropout`:
 * in training each value is kept with probability 1 − p and scaled by
 * 1/(1 − p), else zeroed, so E[y] = x and evaluation needs no rescaling.
 * Out of training, or with p = 0, it is the identity and returns x itself.
 *
 * The mask draws one uniform u per element, in storage order, from the
 * generator, and keeps the element when u ≥ p: the same seed gives the same
 * mask. Backward: ∂ℓ/∂x = ∂ℓ/∂y·mask/(1 − p).
 */
export function dropout(x: Tensor, p = 0.5, options: DropoutOptions = {}): Tensor {
  checkDropProbability(p, "dropout");
  const training = options.training ?? true;
  if (!training || p === 0) return x;
  const generator = options.generator ?? defaultGenerator;
  const scale = 1 / (1 - p);
  const keep = new Uint8Array(x.size);
  const y = new Tensor(allocate(x.dtype, x.size), x.shape);
  for (let i = 0; i < x.size; i++) {
    if (generator.uniform() >= p) {
      keep[i] = 1;
      y.data[i] = x.data[i] * scale;
    }
  }
  return record(y, "dropout", [x], (g) => {
    const gx = allocate(x.dtype, x.size);
    for (let i = 0; i < gx.length; i++) if (keep[i] === 1) gx[i] = g[i] * scale;
    return [gx];
  });
}
