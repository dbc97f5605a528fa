/**
 * Figure 1's three panels and the BN panel's histogram, drawn live with
 * uPlot (a ~50 kB canvas chart that redraws a streamed series in well under
 * a millisecond). The look follows the CLI's PNGs (src/report/figure1Plots.ts
 * and charts.ts): white ground, thin lines, the baseline dashed in
 * vermillion and the BN network solid in blue (Okabe–Ito colours), the
 * percentiles 85/50/15 in reddish purple/black/green (never the networks'
 * colours), one y range shared by (b) and (c).
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export { accuracyDomain, sharedDomain } from "../src/report/figure1Ranges.js";

export const COLORS = {
  baseline: "#D55E00",
  batchnorm: "#0072B2",
  p85: "#CC79A7",
  p50: "#000000",
  p15: "#009E73",
} as const;
const DASH = [6, 4];
const FONT = "12px DejaVu Sans, Helvetica, Arial, sans-serif";
const LABEL_FONT = "bold 12px DejaVu Sans, Helvetica, Arial, sans-serif";
const GRID = "#e6e6e6";
const HEIGHT = 230;

const stepsValue = (_u: uPlot, v: number | null) => (v === null ? "—" : Math.round(v).toLocaleString("en-US"));
const fixed = (digits: number) => (_u: uPlot, v: number | null) => (v === null || !Number.isFinite(v) ? "—" : v.toFixed(digits));

function axes(xLabel: string, yLabel: string): uPlot.Axis[] {
  const axis = { font: FONT, labelFont: LABEL_FONT, stroke: "#333", grid: { stroke: GRID, width: 1 }, ticks: { stroke: "#999", width: 1 } };
  return [
    { ...axis, label: xLabel, values: (_u, ticks) => ticks.map((t) => (t >= 10_000 ? `${t / 1000}k` : t.toLocaleString("en-US"))) },
    { ...axis, label: yLabel, size: 56 },
  ];
}

/** A chart that resizes with its container (laptop to phone width) and takes its data whole on each update. */
export class LiveChart {
  readonly plot: uPlot;
  private readonly observer: ResizeObserver;

  constructor(container: HTMLElement, options: Omit<uPlot.Options, "width" | "height">) {
    const width = Math.max(240, container.clientWidth);
    this.plot = new uPlot({ ...options, width, height: HEIGHT }, options.series.map(() => []) as unknown as uPlot.AlignedData, container);
    this.observer = new ResizeObserver(() => {
      const w = Math.max(240, container.clientWidth);
      if (Math.abs(w - this.plot.width) > 1) this.plot.setSize({ width: w, height: HEIGHT });
    });
    this.observer.observe(container);
  }

  update(data: (number | null)[][]): void {
    this.plot.setData(data as uPlot.AlignedData);
  }
}

export function accuracyChart(container: HTMLElement, range: () => [number, number]): LiveChart {
  return new LiveChart(container, {
    title: "(a) Test accuracy",
    scales: { x: { time: false }, y: { range: () => range() } },
    axes: axes("Training steps", "Test accuracy"),
    series: [
      { label: "Step", value: stepsValue },
      { label: "Without BN", stroke: COLORS.baseline, width: 1.5, dash: DASH, value: fixed(4), points: { show: false } },
      { label: "With BN", stroke: COLORS.batchnorm, width: 1.5, value: fixed(4), points: { show: false } },
    ],
  });
}

export function percentileChart(container: HTMLElement, title: string, range: () => [number, number]): LiveChart {
  const line = (label: string, stroke: string): uPlot.Series => ({ label, stroke, width: 1.5, value: fixed(3), points: { show: false } });
  return new LiveChart(container, {
    title,
    scales: { x: { time: false }, y: { range: () => range() } },
    axes: axes("Training steps", "Input of a layer-3 unit"),
    series: [
      { label: "Step", value: stepsValue },
      line("85th percentile", COLORS.p85),
      line("50th percentile", COLORS.p50),
      line("15th percentile", COLORS.p15),
    ],
  });
}

/** Two overlaid step histograms on shared bins: without BN (vermillion) and with BN (blue). */
export function histogramChart(container: HTMLElement, xLabel: string): LiveChart {
  const stepped = uPlot.paths.stepped!({ align: 1 });
  return new LiveChart(container, {
    scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(0.01, max * 1.05)] } },
    axes: axes(xLabel, "Fraction of values"),
    series: [
      { label: "Bin from", value: fixed(2) },
      { label: "Without BN", stroke: COLORS.baseline, fill: "rgba(213, 94, 0, 0.15)", width: 1.5, paths: stepped, value: fixed(3), points: { show: false } },
      { label: "With BN", stroke: COLORS.batchnorm, fill: "rgba(0, 114, 178, 0.15)", width: 1.5, paths: stepped, value: fixed(3), points: { show: false } },
    ],
  });
}

/**
 * Histograms of `sets` on `bins` shared bins spanning their 0.5th–99.5th
 * percentile range (so one outlier does not squash the rest): bin left
 * edges, then each set's fraction of values per bin.
 */
export function sharedHistogram(sets: (Float32Array | null)[], bins: number): (number | null)[][] {
  const present = sets.filter((s): s is Float32Array => s !== null && s.length > 0);
  if (present.length === 0) return [[], ...sets.map(() => [])];
  const all = Float32Array.from(present.flatMap((s) => Array.from(s))).sort();
  const at = (q: number) => all[Math.min(all.length - 1, Math.floor(q * all.length))];
  let lo = at(0.005);
  let hi = at(0.995);
  if (!(hi > lo)) {
    lo -= 0.5;
    hi += 0.5;
  }
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + i * width);
  const counts = sets.map((s) => {
    if (s === null || s.length === 0) return edges.map(() => null);
    const c = new Array<number>(bins + 1).fill(0);
    for (const v of s) {
      if (!Number.isFinite(v)) continue;
      const b = Math.min(bins - 1, Math.max(0, Math.floor((v - lo) / width)));
      c[b] += 1 / s.length;
    }
    c[bins] = c[bins - 1]; // the stepped path's last step needs a closing value
    return c;
  });
  return [edges, ...counts];
}
