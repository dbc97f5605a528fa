/**
 * The y ranges of Figure 1's panels, shared by the CLI's plots
 * (figure1Plots.ts) and the browser demo's live charts (web/charts.ts), so
 * both show the same view. No Node API.
 */

/**
 * (a): the paper's 0.7–1, kept unless a network ends below it; then the
 * floor goes down in steps of 0.05 so the lowest final accuracy stays in
 * view. Earlier points below the floor are clipped, as in the paper.
 * `finals`: each network's latest accuracy (non-finite values are ignored).
 */
export function accuracyDomain(finals: readonly (number | undefined)[]): [number, number] {
  const seen = finals.filter((v): v is number => v !== undefined && Number.isFinite(v));
  const lowest = seen.length > 0 ? Math.min(...seen) : 1;
  const floor = Math.max(0, Math.min(0.7, Math.floor((lowest - 0.05) * 20 + 1e-9) / 20));
  return [floor, 1];
}

/** (b) and (c): one range over both panels' values, padded by 6%, so the drift without BN and its absence with BN compare by eye. */
export function sharedDomain(values: readonly number[]): [number, number] | undefined {
  const seen = values.filter((v) => Number.isFinite(v));
  if (seen.length === 0) return undefined;
  let lo = Math.min(...seen);
  let hi = Math.max(...seen);
  if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  }
  const pad = 0.06 * (hi - lo);
  return [lo - pad, hi + pad];
}
