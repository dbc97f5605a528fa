import { backendFor } from "../backend/index.js";
import { allocateUninitialized } from "../tensor/allocation.js";
import type { Storage } from "../backend/storage.js";
import { record, Tensor } from "../tensor/tensor.js";

/**
 * Join tensors along `dim` (default 1, the channels of NCHW: how an
 * Inception module merges its branches), as `torch.cat`. All other
 * dimensions and the dtype must agree; dim may be negative.
 *
 * Viewing each tensor as (outer, len_k·inner), with outer the product of the
 * dimensions before `dim` and inner of those after, the output row o is the
 * rows o of the inputs laid end to end. The backward cuts the gradient back
 * into those pieces.
 */
export function concat(tensors: readonly Tensor[], dim = 1): Tensor {
  if (tensors.length === 0) throw new Error("concat: needs at least one tensor");
  const first = tensors[0];
  const ndim = first.ndim;
  const d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim) throw new Error(`concat: dim ${dim} is out of range for ${ndim}-d tensors`);
  for (const [k, t] of tensors.entries()) {
    if (t.dtype !== first.dtype) {
      throw new Error(`concat: tensor ${k} is ${t.dtype} but tensor 0 is ${first.dtype}; convert with .to("${first.dtype}")`);
    }
    if (t.ndim !== ndim || t.shape.some((v, i) => i !== d && v !== first.shape[i])) {
      throw new Error(
        `concat: tensor ${k} has shape [${t.shape.join(", ")}] but tensor 0 has [${first.shape.join(", ")}]; they may differ only in dim ${d}`,
      );
    }
  }
  const outer = first.shape.slice(0, d).reduce((p, v) => p * v, 1);
  const inner = first.shape.slice(d + 1).reduce((p, v) => p * v, 1);
  const pieces = tensors.map((t) => t.shape[d] * inner);
  const row = pieces.reduce((p, v) => p + v, 0);
  const length = tensors.reduce((p, t) => p + t.shape[d], 0);
  const out = new Tensor(allocateUninitialized(first.dtype, outer * row), first.shape.map((v, i) => (i === d ? length : v)));

  // offsets[k]: where tensor k's piece starts within an output row
  const offsets = pieces.map((_, k) => pieces.slice(0, k).reduce((p, v) => p + v, 0));
  // One backend call per tensor (rows of its piece into their place), not a copy per row.
  const kernels = backendFor(first.dtype);
  tensors.forEach((t, k) => kernels.copyRows(out.data.subarray(offsets[k]), t.data, outer, pieces[k], row, pieces[k]));
  return record(out, "concat", [...tensors], (g) =>
    tensors.map((t, k): Storage | null => {
      if (!t.requiresGrad) return null;
      const gt = allocateUninitialized(t.dtype, t.size);
      kernels.copyRows(gt, g.subarray(offsets[k]), outer, pieces[k], pieces[k], row);
      return gt;
    }),
  );
}
