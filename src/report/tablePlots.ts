/**
 * The paper's Figure 2 (§4.2): validation accuracy of Inception and its
 * batch-normalized variants against training steps, drawn from the rows of
 * the Inception table, with a dotted line at Inception's best accuracy so the
 * step where each variant first matches it can be read off.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { lineChartSvg, stepsFormat, svgToPng, type HorizontalRule, type LineChartSpec, type Marker } from "./charts.js";

/** One row of the Inception table: a network and its validation curve. */
export interface TableRowCurve {
  name: string;
  steps: number[];
  /** Validation accuracy, a fraction in [0, 1], at each of `steps`. */
  validationAccuracy: number[];
}

/** The part of the Inception table result that Figure 2 needs. */
export interface InceptionTable {
  rows: TableRowCurve[];
}

/**
 * The row the dotted rule belongs to: the one named exactly "Inception" (the
 * baseline every variant is measured against), else the first whose name
 * starts with "Inception". Variants such as "Inception, base lr 0.003" only
 * qualify when no plain baseline exists.
 */
function inceptionRow(rows: TableRowCurve[]): TableRowCurve | undefined {
  return rows.find((r) => r.name === "Inception") ?? rows.find((r) => r.name.startsWith("Inception"));
}

function maxRule(row: TableRowCurve | undefined): HorizontalRule[] {
  const finite = (row?.validationAccuracy ?? []).filter((v) => Number.isFinite(v));
  if (!row || finite.length === 0) return [];
  const best = Math.max(...finite);
  return [{ y: best, label: `${row.name} max: ${(100 * best).toFixed(1)}%` }];
}

/**
 * The paper's Figure 2 marks where each network reaches Inception's best
 * accuracy: a dot at the first evaluation where each row's validation
 * accuracy is at least the Inception row's maximum (rows that never get
 * there have none).
 */
function reachMarkers(rows: TableRowCurve[], inception: TableRowCurve | undefined): Marker[] {
  const finite = (inception?.validationAccuracy ?? []).filter((v) => Number.isFinite(v));
  if (finite.length === 0) return [];
  const best = Math.max(...finite);
  const markers: Marker[] = [];
  for (const r of rows) {
    const i = r.validationAccuracy.findIndex((v) => v >= best);
    if (i >= 0) markers.push({ series: r.name, x: r.steps[i]!, y: r.validationAccuracy[i]! });
  }
  return markers;
}

/**
 * From 0, so a row stuck at chance (10% on ten classes) stays visible above
 * the x axis instead of lying on it, up to the best accuracy rounded up to 10%.
 */
function accuracyDomain(rows: TableRowCurve[]): [number, number] {
  const values = rows.flatMap((r) => r.validationAccuracy).filter((v) => Number.isFinite(v));
  const best = values.length > 0 ? Math.max(...values) : 1;
  return [0, Math.min(1, Math.max(0.1, Math.ceil(best * 10 + 1e-9) / 10))];
}

/**
 * Write figure2.svg and figure2.png into `outDir` (created if missing): one
 * validation-accuracy line per table row and a dotted rule at the Inception
 * row's maximum. Returns the written paths.
 */
export async function writeFigure2Plot(table: InceptionTable, outDir: string): Promise<string[]> {
  if (table.rows.length === 0) {
    throw new Error("writeFigure2Plot: the table has no rows; run the Inception table experiment first.");
  }
  await mkdir(outDir, { recursive: true });
  const inception = inceptionRow(table.rows);
  const markers = reachMarkers(table.rows, inception);
  const spec: LineChartSpec = {
    title: "Figure 2, in miniature on CIFAR-10: validation accuracy of Inception and its BN variants",
    subtitle:
      markers.length > 0
        ? `single center crop on the validation split; dots: where each row first reaches ${inception!.name}'s best`
        : "single center crop on the validation split",
    xLabel: "Training steps",
    yLabel: "Validation accuracy",
    series: table.rows.map((r) => ({ name: r.name, x: r.steps, y: r.validationAccuracy })),
    rules: maxRule(inception),
    markers,
    yDomain: accuracyDomain(table.rows),
    xFormat: stepsFormat(Math.max(0, ...table.rows.flatMap((r) => r.steps))),
    width: 520,
    height: 320,
  };
  const svg = await lineChartSvg(spec);
  const svgPath = join(outDir, "figure2.svg");
  const pngPath = join(outDir, "figure2.png");
  await writeFile(svgPath, svg);
  await writeFile(pngPath, svgToPng(svg));
  return [svgPath, pngPath];
}
