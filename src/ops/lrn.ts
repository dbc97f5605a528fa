import { allocate } from "../tensor/allocation.js";
import { record, Tensor } from "../tensor/tensor.js";

export interface LocalResponseNormOptions {
  /** Default 1e-4. */
  alpha?: number;
  /** Default 0.75. */
  beta?: number;
  /** Default 1. */
  k?: number;
}

/**
 * Local Response Normalization across channels (Krizhevsky et al. 2012), the
 * layer §4.2.1 removes from BN-Inception, exactly as PyTorch's
 * `nn.LocalResponseNorm` for x (N, C, ...):
 *   D_c = k + (α/n)·Σ_{c' = c − ⌊n/2⌋}^{c + ⌊(n−1)/2⌋} x_{c'}²,   y_c = x_c / D_c^β
 * with n = `size`, channels outside [0, C) counted as zero, and α divided by
 * n (PyTorch averages the squares over the window).
 *
 * Backward: channel j enters D_c for c ∈ [j − ⌊(n−1)/2⌋, j + ⌊n/2⌋], so
 *   ∂ℓ/∂x_j = g_j / D_j^β − (2αβ/n)·x_j·Σ_{c ∋ j} g_c·y_c / D_c
 * (since ∂y_c/∂D_c = −β·y_c/D_c and ∂D_c/∂x_j = 2(α/n)·x_j). D and D^(−β)
 * are kept from the forward, so the costly power is taken once per element
 * (and for PyTorch's default β = 0.75 as 1/(√D·⁴√D), without Math.pow).
 */
export function localResponseNorm(x: Tensor, size: number, options: LocalResponseNormOptions = {}): Tensor {
  const { alpha = 1e-4, beta = 0.75, k = 1 } = options;
  if (!Number.isInteger(size) || size < 1) throw new Error(`localResponseNorm: size must be a positive integer; got ${size}`);
  if (x.ndim < 3) {
    throw new Error(`localResponseNorm: expected an input of shape (N, C, ...) with at least 3 dimensions, as PyTorch; got [${x.shape.join(", ")}]`);
  }
  const [N, C] = x.shape;
  const S = x.size / (N * C || 1);
  // the window of channel c is [c − before, c + after]
  const before = Math.floor(size / 2);
  const after = Math.floor((size - 1) / 2);
  const xd = x.data;
  const y = new Tensor(allocate(x.dtype, x.size), x.shape);
  const D = allocate(x.dtype, x.size);
  const P = allocate(x.dtype, x.size); // D^(−β)
  const power = beta === 0.75 ? (d: number) => 1 / (Math.sqrt(d) * Math.sqrt(Math.sqrt(d))) : (d: number) => Math.pow(d, -beta);
  const sumSq = new Float64Array(S);
  for (let n = 0; n < N; n++) {
    const base = n * C * S;
    for (let c = 0; c < C; c++) {
      sumSq.fill(0);
      for (let c2 = Math.max(0, c - before); c2 <= Math.min(C - 1, c + after); c2++) {
        const off = base + c2 * S;
        for (let s = 0; s < S; s++) sumSq[s] += xd[off + s] * xd[off + s];
      }
      const off = base + c * S;
      for (let s = 0; s < S; s++) {
        const d = k + (alpha / size) * sumSq[s];
        const p = power(d);
        D[off + s] = d;
        P[off + s] = p;
        y.data[off + s] = xd[off + s] * p;
      }
    }
  }
  return record(y, "local_response_norm", [x], (g) => {
    const coef = (2 * alpha * beta) / size;
    // t_c = g_c·y_c / D_c
    const t = new Float64Array(x.size);
    for (let i = 0; i < t.length; i++) t[i] = (g[i] * y.data[i]) / D[i];
    const gx = allocate(x.dtype, x.size);
    const acc = new Float64Array(S);
    for (let n = 0; n < N; n++) {
      const base = n * C * S;
      for (let j = 0; j < C; j++) {
        acc.fill(0);
        for (let c = Math.max(0, j - after); c <= Math.min(C - 1, j + before); c++) {
          const off = base + c * S;
          for (let s = 0; s < S; s++) acc[s] += t[off + s];
        }
        const off = base + j * S;
        for (let s = 0; s < S; s++) {
          const i = off + s;
          gx[i] = g[i] * P[i] - coef * xd[i] * acc[s];
        }
      }
    }
    return [gx];
  });
}
