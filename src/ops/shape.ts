import { allocate } from "../tensor/allocation.js";
import { sizeOf } from "../tensor/shape.js";
import { record, Tensor } from "../tensor/tensor.js";

/**
 * The same values under another shape (one dimension may be −1). Tensors are
 * contiguous, so this is a view: the storage is shared, and so is the
 * gradient on the way back.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const inferred = [...shape];
  const free = inferred.indexOf(-1);
  if (free >= 0) {
    const known = inferred.reduce((p, d, i) => (i === free ? p : p * d), 1);
    inferred[free] = known === 0 ? 0 : x.size / known;
  }
  if (sizeOf(inferred) !== x.size || !inferred.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`reshape: cannot view shape [${x.shape.join(", ")}] (${x.size} values) as [${shape.join(", ")}]`);
  }
  const out = new Tensor(x.data, inferred);
  return record(out, "reshape", [x], (g) => [g]);
}

/** Collapse dimensions startDim..endDim into one (PyTorch's flatten). */
export function flatten(x: Tensor, startDim = 1, endDim = -1): Tensor {
  const n = x.ndim;
  const s = startDim < 0 ? startDim + n : startDim;
  const e = endDim < 0 ? endDim + n : endDim;
  if (n === 0) return reshape(x, [1]);
  if (s < 0 || e >= n || s > e) throw new Error(`flatten: dims ${startDim}..${endDim} invalid for shape [${x.shape.join(", ")}]`);
  const shape = [...x.shape.slice(0, s), sizeOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

/** The transpose of a 2-d tensor (a copy: tensors stay contiguous). */
export function transpose(x: Tensor): Tensor {
  if (x.ndim !== 2) throw new Error(`transpose: expected a 2-d tensor; got shape [${x.shape.join(", ")}]`);
  const [r, c] = x.shape;
  const out = new Tensor(allocate(x.dtype, x.size), [c, r]);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out.data[j * r + i] = x.data[i * c + j];
  return record(out, "transpose", [x], (g) => {
    const gx = allocate(x.dtype, x.size);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) gx[i * c + j] = g[j * r + i];
    return [gx];
  });
}
