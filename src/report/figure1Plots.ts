/**
 * The paper's Figure 1 (§4.1) drawn from the `figure1.json` an MNIST run
 * writes: (a) test accuracy of the network without and with BN against
 * training steps, (b, c) the 15th/50th/85th percentiles of one sigmoid input
 * of the last hidden layer over training, without and with BN.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { accuracyDomain, sharedDomain } from "./figure1Ranges.js";
import { lineChartSvg, panelsSvg, stepsFormat, svgToPng, type LineChartSpec, type Series } from "./charts.js";

/** One training run of one network with one seed, as stored in figure1.json. */
export interface Figure1Run {
  network: "baseline" | "batchnorm";
  seed: number;
  /** Training steps at which the evaluations below were taken. */
  steps: number[];
  /** Accuracy on the test set, a fraction in [0, 1], at each step. */
  testAccuracy: number[];
  trainLoss: number[];
  /** Percentiles over the test set of the probed sigmoid input, at each step. */
  sigmoidInput: { p15: number[]; p50: number[]; p85: number[] };
}

/** The whole figure1.json: run settings, every run, and the time it all took. */
export interface Figure1Result {
  config: object;
  runs: Figure1Run[];
  wallSeconds: number;
}

const NETWORKS = {
  // The paper draws the network without BN dashed and the BN network solid.
  baseline: { label: "Without BN", color: "#D55E00", dash: true },
  batchnorm: { label: "With BN", color: "#0072B2", dash: false },
} as const;

const PANEL_WIDTH = 350;
const PANEL_HEIGHT = 230;

/**
 * Mean over seeds with a min–max band, at the steps every seed evaluated
 * (runs cut short or evaluated on another schedule would otherwise mix
 * different numbers of seeds into one point).
 */
function accuracySeries(runs: Figure1Run[], network: Figure1Run["network"]): Series | null {
  const mine = runs.filter((r) => r.network === network);
  if (mine.length === 0) return null;
  const perStep = new Map<number, number[]>();
  for (const run of mine) {
    run.steps.forEach((step, i) => {
      const acc = run.testAccuracy[i];
      if (acc === undefined) return;
      const list = perStep.get(step) ?? [];
      list.push(acc);
      perStep.set(step, list);
    });
  }
  const steps = [...perStep.keys()].filter((s) => perStep.get(s)!.length === mine.length).sort((a, b) => a - b);
  const at = (s: number): number[] => perStep.get(s)!;
  const { label, color, dash } = NETWORKS[network];
  return {
    name: label,
    x: steps,
    y: steps.map((s) => at(s).reduce((a, b) => a + b, 0) / at(s).length),
    lower: steps.map((s) => Math.min(...at(s))),
    upper: steps.map((s) => Math.max(...at(s))),
    color,
    dash,
  };
}

/** States on the figure what the line and band of (a) are made of. */
function seedNote(runs: Figure1Run[]): string {
  const counts = new Set((["baseline", "batchnorm"] as const).map((n) => runs.filter((r) => r.network === n).length).filter((c) => c > 0));
  if (counts.size !== 1) return "mean over seeds, band: min–max";
  const n = [...counts][0]!;
  if (n > 1) return `mean of ${n} seeds, band: min–max`;
  const seeds = new Set(runs.map((r) => r.seed));
  return seeds.size === 1 ? `seed ${runs[0]!.seed}` : "one seed per network";
}

/**
 * Says on the chart what the y axis cuts off, as the paper's 0.7–1 axis
 * does without saying: for each series with points below the floor, the
 * last step at which it is below.
 */
function clipNote(series: Series[], floor: number): string | null {
  if (floor <= 0) return null;
  const below = series
    .map((s) => {
      const last = s.x.filter((_, i) => s.y[i]! < floor).at(-1);
      const name = s.name.charAt(0).toLowerCase() + s.name.slice(1);
      return last === undefined ? null : `${name} below until step ${last.toLocaleString("en-US")}`;
    })
    .filter((t): t is string => t !== null);
  return below.length === 0 ? null : `cut at ${floor.toFixed(2)}: ${below.join(", ")}`;
}

function accuracyChart(runs: Figure1Run[]): LineChartSpec {
  const series = (["baseline", "batchnorm"] as const)
    .map((n) => accuracySeries(runs, n))
    .filter((s): s is Series => s !== null);
  const yDomain = accuracyDomain(series.map((x) => x.y[x.y.length - 1]));
  const clipped = clipNote(series, yDomain[0]);
  return {
    title: "(a) Test accuracy",
    subtitle: clipped === null ? seedNote(runs) : [seedNote(runs), clipped],
    xLabel: "Training steps",
    yLabel: "Test accuracy",
    series,
    yDomain,
    xFormat: stepsFormat(maxStep(runs)),
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
  };
}

function maxStep(runs: Figure1Run[]): number {
  return Math.max(0, ...runs.flatMap((r) => r.steps));
}

/** The paper shows one typical run; seed 0 if present, else the lowest seed. */
function typicalRun(runs: Figure1Run[], network: Figure1Run["network"]): Figure1Run | undefined {
  return runs.filter((r) => r.network === network).sort((a, b) => a.seed - b.seed)[0];
}

// Colours of their own: blue and vermillion mean "with BN" and "without BN"
// in (a), so no percentile may wear them.
const PERCENTILES = [
  { key: "p85", name: "85th percentile", color: "#CC79A7" },
  { key: "p50", name: "50th percentile", color: "#000000" },
  { key: "p15", name: "15th percentile", color: "#009E73" },
] as const;

function percentileSeries(run: Figure1Run | undefined): Series[] {
  if (!run) return [];
  return PERCENTILES.map(({ key, name, color }) => ({ name, x: run.steps, y: run.sigmoidInput[key], color }));
}

function percentileCharts(runs: Figure1Run[]): [LineChartSpec, LineChartSpec] {
  const base = typicalRun(runs, "baseline");
  const bn = typicalRun(runs, "batchnorm");
  const baseSeries = percentileSeries(base);
  const bnSeries = percentileSeries(bn);
  const yDomain = sharedDomain([...baseSeries, ...bnSeries].flatMap((x) => x.y));
  const chart = (title: string, series: Series[]): LineChartSpec => ({
    title,
    xLabel: "Training steps",
    yLabel: "Sigmoid input, last hidden layer",
    series,
    yDomain,
    xFormat: stepsFormat(maxStep(runs)),
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
  });
  const seed = (r: Figure1Run | undefined): string => (r ? `, seed ${r.seed}` : " (no run)");
  return [chart(`(b) Without BN${seed(base)}`, baseSeries), chart(`(c) With BN${seed(bn)}`, bnSeries)];
}

async function writeSvgAndPng(outDir: string, stem: string, svg: string): Promise<string[]> {
  const svgPath = join(outDir, `${stem}.svg`);
  const pngPath = join(outDir, `${stem}.png`);
  await writeFile(svgPath, svg);
  await writeFile(pngPath, svgToPng(svg));
  return [svgPath, pngPath];
}

/**
 * Write figure1a, figure1b, figure1c and the three-panel figure1, each as SVG
 * and PNG, into `outDir` (created if missing). Returns the written paths.
 */
export async function writeFigure1Plots(result: Figure1Result, outDir: string): Promise<string[]> {
  if (result.runs.length === 0) {
    throw new Error("writeFigure1Plots: figure1 result has no runs; run the figure1 experiment first.");
  }
  await mkdir(outDir, { recursive: true });
  const a = accuracyChart(result.runs);
  const [b, c] = percentileCharts(result.runs);
  const written: string[] = [];
  written.push(...(await writeSvgAndPng(outDir, "figure1a", await lineChartSvg(a))));
  written.push(...(await writeSvgAndPng(outDir, "figure1b", await lineChartSvg(b))));
  written.push(...(await writeSvgAndPng(outDir, "figure1c", await lineChartSvg(c))));
  const title = "Figure 1: MNIST, 3×100 sigmoid MLP, without and with Batch Normalization";
  written.push(...(await writeSvgAndPng(outDir, "figure1", await panelsSvg([a, b, c], title))));
  return written;
}
