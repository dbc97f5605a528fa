/**
 * The q-th percentiles (0–100) of `values`, by linear interpolation between
 * closest ranks (NumPy's default): position q/100·(n − 1) in sorted order.
 */
export function percentiles(values: ArrayLike<number>, qs: readonly number[]): number[] {
  const n = values.length;
  if (n === 0) throw new Error("percentiles: no values");
  const sorted = Float64Array.from(values).sort();
  return qs.map((q) => {
    if (!(q >= 0 && q <= 100)) throw new Error(`percentiles: q must be in [0, 100]; got ${q}`);
    const pos = (q / 100) * (n - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, n - 1);
    return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
  });
}
