import { backendFor } from "../backend/index.js";
import { allocate, allocateUninitialized } from "../tensor/allocation.js";
import { record, Tensor } from "../tensor/tensor.js";

/** Class indices as an Int32Array, validated against the number of classes. */
export function toTargets(targets: ArrayLike<number> | Tensor, N: number, C: number): Int32Array {
  const values = targets instanceof Tensor ? targets.data : targets;
  if (values.length !== N) {
    throw new Error(`cross_entropy: ${values.length} targets for a batch of ${N} logits rows; pass one class index per row`);
  }
  const out = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const t = values[i];
    if (!Number.isInteger(t) || t < 0 || t >= C) {
      throw new Error(`cross_entropy: target ${i} is ${t}, but class indices must be integers in [0, ${C - 1}]`);
    }
    out[i] = t;
  }
  return out;
}

/**
 * Mean cross-entropy of (N, C) logits against class indices, as one fused
 * log-softmax + NLL op: ℓ = (1/N) Σ_n (log Σ_j e^(z_nj) − z_n,t_n). The
 * backward is (softmax(z) − onehot(t)) / N, computed from saved probabilities.
 */
export function crossEntropy(logits: Tensor, targets: ArrayLike<number> | Tensor): Tensor {
  if (logits.ndim !== 2) {
    throw new Error(`cross_entropy: expected logits of shape [N, C]; got [${logits.shape.join(", ")}]`);
  }
  const [N, C] = logits.shape;
  if (N === 0) throw new Error("cross_entropy: the batch is empty");
  const t = toTargets(targets, N, C);
  const kernels = backendFor(logits.dtype);
  const probs = allocateUninitialized(logits.dtype, N * C); // softmaxCrossEntropy writes every element
  const total = kernels.softmaxCrossEntropy(logits.data, t, N, C, probs);
  const out = new Tensor(allocate(logits.dtype, 1), []);
  out.data[0] = total / N;
  return record(out, "cross_entropy", [logits], (g) => {
    const scale = g[0] / N;
    const gl = allocateUninitialized(logits.dtype, N * C);
    for (let i = 0; i < N * C; i++) gl[i] = probs[i] * scale;
    for (let n = 0; n < N; n++) gl[n * C + t[n]] -= scale;
    return [gl];
  });
}
