import { allocate } from "../tensor/allocation.js";
import { record, Tensor } from "../tensor/tensor.js";

function normalizeDim(dim: number, ndim: number, op: string): number {
  const d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim) throw new Error(`${op}: dim ${dim} is out of range for a ${ndim}-d tensor`);
  return d;
}

/** Σ over all elements (dim undefined, a 0-d result) or over one dimension. */
export function sum(x: Tensor, dim?: number, keepDim = false): Tensor {
  if (dim === undefined) {
    let s = 0;
    for (let i = 0; i < x.size; i++) s += x.data[i];
    const out = new Tensor(allocate(x.dtype, 1), []);
    out.data[0] = s;
    return record(out, "sum", [x], (g) => [allocate(x.dtype, x.size).fill(g[0])]);
  }
  const d = normalizeDim(dim, x.ndim, "sum");
  const outer = x.shape.slice(0, d).reduce((p, v) => p * v, 1);
  const len = x.shape[d];
  const inner = x.shape.slice(d + 1).reduce((p, v) => p * v, 1);
  const shape = keepDim ? x.shape.map((v, i) => (i === d ? 1 : v)) : x.shape.filter((_, i) => i !== d);
  const out = new Tensor(allocate(x.dtype, outer * inner), shape);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let s = 0;
      for (let k = 0; k < len; k++) s += x.data[(o * len + k) * inner + i];
      out.data[o * inner + i] = s;
    }
  return record(out, "sum", [x], (g) => {
    const gx = allocate(x.dtype, x.size);
    for (let o = 0; o < outer; o++)
      for (let k = 0; k < len; k++)
        for (let i = 0; i < inner; i++) gx[(o * len + k) * inner + i] = g[o * inner + i];
    return [gx];
  });
}

/** Arithmetic mean over all elements or over one dimension. */
export function mean(x: Tensor, dim?: number, keepDim = false): Tensor {
  const count = dim === undefined ? x.size : x.shape[normalizeDim(dim, x.ndim, "mean")];
  const s = sum(x, dim, keepDim);
  const out = new Tensor(allocate(x.dtype, s.size), s.shape);
  for (let i = 0; i < s.size; i++) out.data[i] = s.data[i] / count;
  return record(out, "mean", [s], (g) => {
    const gs = allocate(x.dtype, s.size);
    for (let i = 0; i < gs.length; i++) gs[i] = g[i] / count;
    return [gs];
  });
}
