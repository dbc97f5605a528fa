/** Shape arithmetic shared by tensors and ops. */

/** The number of elements of a tensor of this shape (1 for a 0-d tensor). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: readonly number[], what = "shape"): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new Error(`${what} must hold non-negative integers; got [${shape.join(", ")}]`);
    }
  }
}
