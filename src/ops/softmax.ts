import { allocate, allocateUninitialized } from "../tensor/allocation.js";
import { record, Tensor } from "../tensor/tensor.js";

/** (outer, len, inner) of `x` around dimension `dim` (negative counts from the end). */
function around(x: Tensor, dim: number, op: string): { d: number; outer: number; len: number; inner: number } {
  if (x.ndim === 0) throw new Error(`${op}: needs a tensor of at least 1 dimension; got a 0-d tensor (a single number)`);
  if (!Number.isInteger(dim)) throw new Error(`${op}: dim must be a whole number; got ${dim}`);
  const d = dim < 0 ? dim + x.ndim : dim;
  if (d < 0 || d >= x.ndim) {
    throw new Error(`${op}: dim ${dim} is out of range for shape [${x.shape.join(", ")}] (valid: ${-x.ndim} … ${x.ndim - 1})`);
  }
  const outer = x.shape.slice(0, d).reduce((p, v) => p * v, 1);
  const inner = x.shape.slice(d + 1).reduce((p, v) => p * v, 1);
  return { d, outer, len: x.shape[d], inner };
}

/** m = max_k x_k over one run along the dim, and Σ_k e^(x_k − m) (in double, never overflowing). */
function maxAndSumExp(xs: ArrayLike<number>, base: number, len: number, stride: number): { max: number; sumExp: number } {
  let max = -Infinity;
  for (let k = 0; k < len; k++) max = Math.max(max, xs[base + k * stride]);
  let sumExp = 0;
  for (let k = 0; k < len; k++) sumExp += Math.exp(xs[base + k * stride] - max);
  return { max, sumExp };
}

/**
 * log-softmax along `dim`: y_i = x_i − m − log Σ_j e^(x_j − m), with m the
 * maximum along `dim` (so no exponential overflows; sums in double).
 * Backward: dx_i = g_i − e^(y_i) · Σ_j g_j.
 */
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  const { outer, len, inner } = around(x, dim, "logSoftmax");
  const xs = x.data;
  const y = new Tensor(allocateUninitialized(x.dtype, x.size), x.shape);
  const ys = y.data;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * len * inner + i;
      const { max, sumExp } = maxAndSumExp(xs, base, len, inner);
      const shift = max + Math.log(sumExp);
      for (let k = 0; k < len; k++) ys[base + k * inner] = xs[base + k * inner] - shift;
    }
  return record(y, "log_softmax", [x], (g) => {
    const dx = allocate(x.dtype, x.size);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        let s = 0;
        for (let k = 0; k < len; k++) s += g[base + k * inner];
        for (let k = 0; k < len; k++) dx[base + k * inner] = g[base + k * inner] - Math.exp(ys[base + k * inner]) * s;
      }
    return [dx];
  });
}

/**
 * softmax along `dim`: y_i = e^(x_i − m) / Σ_j e^(x_j − m), m the maximum
 * along `dim`. Backward: dx_i = y_i · (g_i − Σ_j g_j·y_j).
 */
export function softmax(x: Tensor, dim = -1): Tensor {
  const { outer, len, inner } = around(x, dim, "softmax");
  const xs = x.data;
  const y = new Tensor(allocateUninitialized(x.dtype, x.size), x.shape);
  const ys = y.data;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * len * inner + i;
      const { max, sumExp } = maxAndSumExp(xs, base, len, inner);
      for (let k = 0; k < len; k++) ys[base + k * inner] = Math.exp(xs[base + k * inner] - max) / sumExp;
    }
  return record(y, "softmax", [x], (g) => {
    const dx = allocate(x.dtype, x.size);
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        let s = 0;
        for (let k = 0; k < len; k++) s += g[base + k * inner] * ys[base + k * inner];
        for (let k = 0; k < len; k++) dx[base + k * inner] = ys[base + k * inner] * (g[base + k * inner] - s);
      }
    return [dx];
  });
}

/**
 * Index of the largest value along `dim` (the first one on ties, as
 * PyTorch), or over all elements of the flattened tensor when `dim` is
 * omitted. The result carries no gradient; its values are whole numbers in
 * a float64 tensor (exact for any index), of the input's shape without
 * `dim` (or with it as 1 under `keepDim`). A NaN counts as the maximum, as
 * in PyTorch. `.data` gives the indices as an array.
 */
export function argmax(x: Tensor, dim?: number, keepDim = false): Tensor {
  if (dim === undefined) {
    if (x.size === 0) throw new Error("argmax: the tensor is empty, so it has no largest element");
    const out = new Tensor(allocate("float64", 1), keepDim ? x.shape.map(() => 1) : []);
    out.data[0] = argmaxRun(x.data, 0, x.size, 1);
    return out;
  }
  const { d, outer, len, inner } = around(x, dim, "argmax");
  if (len === 0) throw new Error(`argmax: dimension ${dim} of shape [${x.shape.join(", ")}] is empty, so it has no largest element`);
  const shape = keepDim ? x.shape.map((v, i) => (i === d ? 1 : v)) : x.shape.filter((_, i) => i !== d);
  const out = new Tensor(allocate("float64", outer * inner), shape);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) out.data[o * inner + i] = argmaxRun(x.data, o * len * inner + i, len, inner);
  return out;
}

function argmaxRun(xs: ArrayLike<number>, base: number, len: number, stride: number): number {
  let best = 0;
  let bestValue = xs[base];
  if (Number.isNaN(bestValue)) return 0;
  for (let k = 1; k < len; k++) {
    const v = xs[base + k * stride];
    if (Number.isNaN(v)) return k;
    if (v > bestValue) {
      best = k;
      bestValue = v;
    }
  }
  return best;
}
