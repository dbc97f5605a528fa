/** NumPy/PyTorch broadcasting of two shapes (trailing dimensions aligned). */
export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes [${a.join(", ")}] and [${b.join(", ")}] cannot be broadcast together (dimension ${i}: ${da} vs ${db})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/**
 * For each flat index of `outShape`, the flat index into a tensor of `shape`
 * broadcast to it (stride 0 along broadcast dimensions).
 */
export function broadcastIndex(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = outShape.length;
  const strides = new Array<number>(n).fill(0);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const j = n - shape.length + i;
    strides[j] = shape[i] === 1 ? 0 : stride;
    stride *= shape[i];
  }
  let total = 1;
  for (const d of outShape) total *= d;
  const index = new Int32Array(total);
  const counter = new Array<number>(n).fill(0);
  let offset = 0;
  for (let k = 0; k < total; k++) {
    index[k] = offset;
    for (let d = n - 1; d >= 0; d--) {
      counter[d]++;
      offset += strides[d];
      if (counter[d] < outShape[d]) break;
      offset -= strides[d] * counter[d];
      counter[d] = 0;
    }
  }
  return index;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
