/**
 * The picture of the Figure 1 sweep (scripts/sweep-figure1.mjs): one point
 * per setting, the baseline's accuracy at 10k steps against the drift ratio
 * BN / baseline, with the corner where the paper's picture would lie shaded.
 * It shows the trade-off the sweep found: settings that let the baseline
 * train early do not keep BN's sigmoid input steadier than the baseline's.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/files.js";
import { renderVegaLite, svgToPng } from "./charts.js";

/** One setting of the sweep as sweep.json stores it. */
export interface SweepPoint {
  initStd: number;
  lr: number;
  momentum: number;
  /** "normal" (N(0, initStd²)) unless set. */
  init?: "normal" | "default";
  /** "scaled" unless set. */
  input?: string;
  baselineAt10k: number;
  baselineFinal: number;
  batchnormFinal: number;
  driftRatio: number;
  paperPicture: boolean;
}

/** The criteria's thresholds (the same as the sweep's). */
export const PAPER_PICTURE = { baselineAt10k: 0.85, driftRatio: 0.5 } as const;

/** The family a setting belongs to in the legend: what it changes besides lr and momentum. */
export function sweepFamily(p: SweepPoint): string {
  if (p.init === "default") return "PyTorch's default init, pixels/255";
  if (p.input === "binary") return "N(0, σ²) init, binary pixels";
  if (p.input === "standardized") return "N(0, σ²) init, standardized pixels";
  return "N(0, σ²) init, pixels/255";
}

/** A short label for the point: σ (where it applies), lr and momentum. */
export function sweepLabel(p: SweepPoint): string {
  const init = p.init === "default" ? "" : `σ ${p.initStd}, `;
  return `${init}lr ${p.lr}${p.momentum > 0 ? `, m ${p.momentum}` : ""}`;
}

export async function sweepSvg(points: readonly SweepPoint[], steps: number): Promise<string> {
  const rows = points.map((p) => ({
    x: 100 * p.baselineAt10k,
    y: p.driftRatio,
    family: sweepFamily(p),
    label: sweepLabel(p),
    bnHigher: p.batchnormFinal > p.baselineFinal ? "BN ends higher" : "BN ends lower",
  }));
  const yMax = Math.max(2, ...rows.map((r) => r.y)) * 1.05;
  const families = [...new Set(rows.map((r) => r.family))];
  const vl = {
    title: {
      text: "Figure 1 as the paper draws it? No setting reaches the shaded corner",
      subtitle: [
        `One seed, ${steps.toLocaleString("en-US")} steps per network. Shaded: the paper's picture (baseline ≥ ${100 * PAPER_PICTURE.baselineAt10k}% at 10k,`,
        `BN's sigmoid input drifting < ${PAPER_PICTURE.driftRatio}× the baseline's); hollow: BN ends below the baseline.`,
      ],
    },
    width: 520,
    height: 320,
    layer: [
      {
        data: { values: [{ x0: 100 * PAPER_PICTURE.baselineAt10k, x1: 100, y0: 0, y1: PAPER_PICTURE.driftRatio }] },
        mark: { type: "rect", color: "#2ca02c", opacity: 0.15 },
        encoding: {
          x: { field: "x0", type: "quantitative" },
          x2: { field: "x1" },
          y: { field: "y0", type: "quantitative" },
          y2: { field: "y1" },
        },
      },
      {
        data: { values: [{ y: 1 }] },
        mark: { type: "rule", strokeDash: [2, 3], color: "#555" },
        encoding: { y: { field: "y", type: "quantitative" } },
      },
      {
        data: { values: rows },
        mark: { type: "point", size: 70, strokeWidth: 2, opacity: 1 },
        encoding: {
          x: { field: "x", type: "quantitative", title: "baseline's test accuracy at step 10,000 (%)", scale: { domain: [0, 100] } },
          y: { field: "y", type: "quantitative", title: "sigmoid-input drift: BN / baseline", scale: { domain: [0, yMax] } },
          color: { field: "family", type: "nominal", sort: families, legend: { orient: "bottom", title: null, columns: 2, labelLimit: 400 } },
          shape: { field: "family", type: "nominal", sort: families },
          fill: {
            condition: { test: "datum.bnHigher === 'BN ends higher'", field: "family", type: "nominal", sort: families },
            value: "white",
          },
        },
      },
      {
        data: { values: rows },
        mark: { type: "text", align: "left", dx: 7, dy: -5, fontSize: 9, color: "#333" },
        encoding: {
          x: { field: "x", type: "quantitative" },
          y: { field: "y", type: "quantitative" },
          text: { field: "label" },
        },
      },
    ],
  };
  return renderVegaLite(vl);
}

/** Writes `<dir>/<name>.svg` and `<dir>/<name>.png`. */
export async function writeSweepPlot(points: readonly SweepPoint[], steps: number, dir: string, name = "figure1-sweep"): Promise<void> {
  const svg = await sweepSvg(points, steps);
  writeFileAtomic(join(dir, `${name}.svg`), svg);
  writeFileAtomic(join(dir, `${name}.png`), svgToPng(svg));
}
