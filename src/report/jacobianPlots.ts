/**
 * The picture of `covshift jacobian`: singular values of the layer Jacobians
 * over training, without BN, with BN, and of the BN transform alone; per
 * Jacobian the median as a line and the 15th–85th percentiles as a band, on
 * a log₁₀ axis with σ = 1 (the value §3.3 conjectures) marked.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { JacobianResult, JacobianRun, DistributionSeries } from "../experiments/jacobian/result.js";
import { LineChartSpec, panelsSvg, Series, stepsFormat, svgToPng } from "./charts.js";

const COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];
const log10 = (v: number) => Math.log10(Math.max(v, 1e-12));

function series(name: string, steps: number[], s: DistributionSeries, color: string, dash = false): Series {
  return { name, x: steps, y: s.median.map(log10), lower: s.p15.map(log10), upper: s.p85.map(log10), color, dash };
}

function runSeries(run: JacobianRun): Series[] {
  const out = run.layers.map((l, i) =>
    series(l.layer === 1 ? "layer 1 (from pixels)" : `layer ${l.layer}`, run.steps, l.singularValues, COLORS[i % COLORS.length]),
  );
  out.push(series("hidden stack", run.steps, run.stack.singularValues, "#000000", true));
  return out;
}

export function jacobianCharts(result: JacobianResult): LineChartSpec[] {
  const base = result.runs.find((r) => r.network === "baseline");
  const bn = result.runs.find((r) => r.network === "batchnorm");
  const panels: { title: string; series: Series[] }[] = [];
  if (base) panels.push({ title: "(a) Without BN", series: runSeries(base) });
  if (bn) {
    panels.push({ title: "(b) With BN", series: runSeries(bn) });
    panels.push({
      title: "(c) BN transform alone",
      series: bn.bnTransform.map((l, i) => series(`BN ${l.layer}`, bn.steps, l.singularValues, COLORS[i % COLORS.length])),
    });
  }
  const all = panels.flatMap((p) => p.series.flatMap((s) => [...s.y, ...(s.lower ?? []), ...(s.upper ?? [])]));
  const lo = Math.floor(Math.min(0, ...all) * 2) / 2;
  const hi = Math.ceil(Math.max(0, ...all) * 2) / 2;
  const maxStep = Math.max(0, ...result.runs.flatMap((r) => r.steps));
  return panels.map((p) => ({
    title: p.title,
    subtitle: "median; band: 15th–85th percentile",
    xLabel: "Training steps",
    yLabel: "log₁₀ singular value",
    series: p.series,
    yDomain: [lo, hi],
    xFormat: stepsFormat(maxStep),
    rules: [{ y: 0, label: "σ = 1" }],
    width: 300,
    height: 240,
  }));
}

/** Write jacobian.svg and jacobian.png into outDir; returns their paths. */
export async function writeJacobianPlots(result: JacobianResult, outDir: string): Promise<string[]> {
  if (result.runs.length === 0) throw new Error("writeJacobianPlots: the result has no runs; run covshift jacobian first.");
  await mkdir(outDir, { recursive: true });
  const c = result.config;
  const svg = await panelsSvg(
    jacobianCharts(result),
    `Singular values of the layer Jacobians (§3.3), MNIST ${c.hidden.join("×")} sigmoid MLP, ${c.images} test images, seed ${c.seed}`,
  );
  const svgPath = join(outDir, "jacobian.svg");
  const pngPath = join(outDir, "jacobian.png");
  await writeFile(svgPath, svg);
  await writeFile(pngPath, svgToPng(svg));
  return [svgPath, pngPath];
}
