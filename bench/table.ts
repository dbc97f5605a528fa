/** Plain-text tables for the benchmark's output. */

/**
 * A number with `digits` decimals (two significant digits when that would
 * round a nonzero value to 0), or "—" when it was not measured.
 */
export function fmt(v: number | undefined | null, digits = 1): string {
  if (v === undefined || v === null || !Number.isFinite(v)) return "—";
  if (v !== 0 && Math.abs(v) < 0.5 * 10 ** -digits) return v.toPrecision(2);
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/**
 * Rows of cells under a header, columns padded to their widest cell.
 * `align` gives each column's alignment, "l" or "r" (default: the first left, the rest right).
 */
export function table(headers: string[], rows: string[][], align?: string): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const left = (i: number) => (align?.[i] ?? (i === 0 ? "l" : "r")) === "l";
  const line = (cells: string[]) =>
    cells.map((c, i) => (left(i) ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ").trimEnd();
  const rule = widths.map((w) => "─".repeat(w)).join("  ");
  return [line(headers), rule, ...rows.map(line)].join("\n");
}
