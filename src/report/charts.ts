/**
 * Line charts for the report: vega-lite specs compiled to vega and rendered
 * headless in Node (no browser, no canvas) to SVG, and SVG rasterised to PNG
 * by resvg. Every figure of the report goes through these three functions, so
 * they share one paper-like look: white background, axis titles, a legend,
 * thin lines, no decoration.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { writeFileAtomic } from "../io/files.js";
import type * as VegaModule from "vega";
import type * as VegaLiteModule from "vega-lite";
import type * as ResvgModule from "@resvg/resvg-js";
import { CHART_PACKAGES, requirePackages } from "../io/optionalPackages.js";

/** One line of a chart: y against x, optionally with a spread band around it. */
export interface Series {
  /** Legend label; must be unique within a chart. */
  name: string;
  x: number[];
  y: number[];
  /** Lower edge of a translucent band drawn behind the line (e.g. min over seeds). */
  lower?: number[];
  /** Upper edge of the band; given together with `lower`. */
  upper?: number[];
  /** Any CSS colour; a palette colour is chosen when absent. */
  color?: string;
  /** Draw the line dashed instead of solid. */
  dash?: boolean;
}

/** A horizontal reference line across the whole plot, e.g. a baseline's best accuracy. */
export interface HorizontalRule {
  y: number;
  /** Text written just above the right end of the rule. */
  label?: string;
}

/**
 * A d3-format for a training-steps axis: SI prefixes ("50k", "3M") once steps
 * reach 10,000, where they read like the paper's axes; plain integers below,
 * where SI would write "0.2k".
 */
export function stepsFormat(maxStep: number): string {
  // "~f" rather than a bare ",": vega adds its own precision to the format,
  // and without a type it then falls back to exponents ("4e+2").
  return maxStep >= 10_000 ? "~s" : ",~f";
}

/**
 * Round tick values from `lo` to `hi`: multiples of 1, 2 or 5 × 10^k, the
 * smallest such step that makes at most `maxIntervals` intervals — 0, 10k,
 * 20k … 50k for 50,000 steps; 0, 1,000 … 6,000 for 6,000. Vega's own ticks
 * on a domain that is not "nice" can come out as 5k, 15k … 45k.
 */
export function roundTicks(lo: number, hi: number, maxIntervals = 6): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi <= lo) return Number.isFinite(lo) ? [lo] : [];
  const span = hi - lo;
  let step = Math.pow(10, Math.floor(Math.log10(span / maxIntervals)));
  for (const m of [1, 2, 5, 10]) {
    if (span / (m * step) <= maxIntervals + 1e-9) {
      step *= m;
      break;
    }
  }
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * step; t += step) ticks.push(Math.round(t / step) * step || 0); // || 0: never "-0"
  return ticks;
}

/** A dot on one series' curve, in that series' colour, e.g. where it reaches a target. */
export interface Marker {
  /** The series (by name) whose colour the dot takes. */
  series: string;
  x: number;
  y: number;
}

/** Everything needed to draw one line chart. */
export interface LineChartSpec {
  title: string;
  /** Smaller line(s) under the title, e.g. how the band was computed (an array: one line each). */
  subtitle?: string | string[];
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fixed y range; data outside it is clipped at the plot edge. */
  yDomain?: [number, number];
  /** Plot-area width in px (default 420). */
  width?: number;
  /** Plot-area height in px (default 280). */
  height?: number;
  /** d3-format string for x tick labels, e.g. "~s" to write 50000 as 50k. */
  xFormat?: string;
  /** Dotted horizontal reference lines. */
  rules?: HorizontalRule[];
  /** Dots on the curves (filled, in their series' colour, white-edged). */
  markers?: Marker[];
}

// Colour-blind-safe (Okabe–Ito), dark enough to read as thin lines on white.
const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
const DASH = [6, 4];
const MAX_BOTTOM_LEGEND = 3;
const DEFAULT_WIDTH = 420;
const DEFAULT_HEIGHT = 280;
const SOLID = [1, 0];

// The font list starts with DejaVu Sans because resvg resolves it on this
// machine (see svgToPng); browsers opening the SVG fall back to their sans-serif.
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

/**
 * Advance widths of DejaVu Sans (the font the PNG is drawn with), in em, for
 * the printable ASCII characters U+0020…U+007E, read from DejaVuSans.ttf's
 * hmtx table (units per em 2048).
 */
const DEJAVU_ASCII_EM = [
  0.318, 0.401, 0.46, 0.838, 0.636, 0.95, 0.78, 0.275, 0.39, 0.39, 0.5, 0.838, 0.318, 0.361, 0.318, 0.337,
  0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.337, 0.337, 0.838, 0.838, 0.838, 0.531,
  1.0, 0.684, 0.686, 0.698, 0.77, 0.632, 0.575, 0.775, 0.752, 0.295, 0.295, 0.656, 0.557, 0.863, 0.748, 0.787,
  0.603, 0.787, 0.695, 0.635, 0.611, 0.732, 0.684, 0.989, 0.685, 0.611, 0.685, 0.39, 0.337, 0.39, 0.838, 0.5,
  0.5, 0.613, 0.635, 0.55, 0.635, 0.615, 0.352, 0.635, 0.634, 0.278, 0.278, 0.579, 0.278, 0.974, 0.634, 0.612,
  0.635, 0.635, 0.411, 0.521, 0.392, 0.634, 0.592, 0.818, 0.592, 0.592, 0.525, 0.636, 0.337, 0.636, 0.838,
];
// Beyond ASCII the math signs (− × ± ≈) are 0.838 em and dashes 0.5–1 em; 0.7
// keeps the layout close for those without a second table.
const NON_ASCII_EM = 0.7;
// DejaVu Sans Bold runs about 10% wider than the regular face.
const BOLD_FACTOR = 1.1;

/** Width in px of `text` set in DejaVu Sans at the item's font size and weight. */
function dejavuWidth(item: { fontSize?: number; fontWeight?: string | number }, text: unknown): number {
  const size = item.fontSize != null ? Number(item.fontSize) || 0 : 11;
  const line = text == null ? "" : String(text).trim();
  let em = 0;
  for (const ch of line) {
    const code = ch.codePointAt(0)!;
    em += code >= 0x20 && code <= 0x7e ? DEJAVU_ASCII_EM[code - 0x20]! : NON_ASCII_EM;
  }
  const w = item.fontWeight;
  const bold = w === "bold" || w === "bolder" || (typeof w === "number" && w >= 600);
  return em * size * (bold ? BOLD_FACTOR : 1);
}

// Without a canvas, vega guesses every character at 0.8 em, about 40% too
// wide for DejaVu Sans: legends then spread out and panels drift apart.
// Vega reads `textMetrics.width` for all layout (the hook vl-convert uses for
// the same purpose), so measuring with the real font's widths fixes spacing.

// vega, vega-lite and resvg are optional peer dependencies (only the CLI
// draws charts): they are loaded on first use, with one message naming every
// missing one.
let chartLibraries: Promise<{ vega: typeof VegaModule; vegaLite: typeof VegaLiteModule }> | null = null;

/**
 * Loads the chart libraries (once), or throws a message saying which are
 * missing and how to install them. The commands call it before training, so
 * a missing package is reported at the start, not after the run.
 */
export function loadChartLibraries(): Promise<{ vega: typeof VegaModule; vegaLite: typeof VegaLiteModule }> {
  if (chartLibraries === null) {
    requirePackages(CHART_PACKAGES, "Drawing the charts");
    chartLibraries = Promise.all([import("vega"), import("vega-lite")]).then(([vega, vegaLite]) => {
      (vega as unknown as { textMetrics: { width: typeof dejavuWidth } }).textMetrics.width = dejavuWidth;
      return { vega, vegaLite };
    });
  }
  return chartLibraries;
}

const CONFIG = {
  background: "white",
  font: FONT,
  padding: 8,
  view: { stroke: "#888", strokeWidth: 0.8 },
  title: { fontSize: 14, fontWeight: "normal", anchor: "start", offset: 10, subtitleFontSize: 12 },
  axis: {
    labelFontSize: 11,
    titleFontSize: 12,
    titleFontWeight: "normal",
    titlePadding: 8,
    domainColor: "#444",
    tickColor: "#444",
    labelColor: "#222",
    titleColor: "#222",
    gridColor: "#eeeeee",
    labelOverlap: true,
    // Labels closer than this are thinned out, so "45k" never touches "50k".
    labelSeparation: 6,
  },
  legend: {
    title: null,
    labelFontSize: 11,
    symbolStrokeWidth: 2,
    symbolSize: 250,
    columnPadding: 12,
    rowPadding: 4,
    labelLimit: 260,
  },
  line: { strokeWidth: 1.8 },
} as const;

/** A long-form table row, the shape vega-lite wants: one row per (series, x). */
interface Row {
  series: string;
  x: number;
  y: number | null;
  lower?: number | null;
  upper?: number | null;
}

// Vega treats null as missing, so non-finite values become gaps, not zeros.
function finiteOrNull(v: number | undefined): number | null {
  return v !== undefined && Number.isFinite(v) ? v : null;
}

function checkSeries(s: Series, chart: string): void {
  const n = s.x.length;
  const mismatch = (what: string, len: number): Error =>
    new Error(
      `chart "${chart}", series "${s.name}": ${what} has ${len} values but x has ${n}; ` +
        `give one value per x.`,
    );
  if (s.y.length !== n) throw mismatch("y", s.y.length);
  if ((s.lower === undefined) !== (s.upper === undefined)) {
    throw new Error(
      `chart "${chart}", series "${s.name}": a band needs both lower and upper, got only ` +
        `${s.lower === undefined ? "upper" : "lower"}.`,
    );
  }
  if (s.lower && s.lower.length !== n) throw mismatch("lower", s.lower.length);
  if (s.upper && s.upper.length !== n) throw mismatch("upper", s.upper.length);
}

function rowsOf(spec: LineChartSpec): Row[] {
  const names = new Set<string>();
  const rows: Row[] = [];
  for (const s of spec.series) {
    checkSeries(s, spec.title);
    // The legend and the colour scale are keyed by name: two series with one
    // name would silently merge into one zig-zag line.
    if (names.has(s.name)) {
      throw new Error(`chart "${spec.title}": two series are named "${s.name}"; names must be unique.`);
    }
    names.add(s.name);
    for (let i = 0; i < s.x.length; i++) {
      const row: Row = { series: s.name, x: s.x[i]!, y: finiteOrNull(s.y[i]) };
      if (s.lower && s.upper) {
        row.lower = finiteOrNull(s.lower[i]);
        row.upper = finiteOrNull(s.upper[i]);
      }
      rows.push(row);
    }
  }
  return rows;
}

/**
 * The vega-lite layer for one chart, without top-level config, so it can be
 * used alone or as one panel of a concatenation.
 */
function chartLayer(spec: LineChartSpec): Record<string, unknown> {
  const width = spec.width ?? DEFAULT_WIDTH;
  const names = spec.series.map((s) => s.name);
  const colors = spec.series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]!);
  const dashes = spec.series.map((s) => (s.dash ? DASH : SOLID));
  // A few series fit in one row below the plot, where the legend never covers
  // a curve and side-by-side panels keep their plot areas aligned; more would
  // make the row wider than the plot, so they get a column on the right.
  const legend =
    spec.series.length <= MAX_BOTTOM_LEGEND
      ? { orient: "bottom", direction: "horizontal" }
      : { orient: "right", direction: "vertical" };
  // Colour and dash share field, title and legend, so vega-lite merges them
  // into one legend whose symbols show both the colour and the dash.
  const color = { field: "series", type: "nominal", title: null, sort: names, scale: { domain: names, range: colors }, legend };
  const strokeDash = { field: "series", type: "nominal", title: null, sort: names, scale: { domain: names, range: dashes }, legend };
  const yScale: Record<string, unknown> = { zero: false };
  if (spec.yDomain) {
    yScale.domain = spec.yDomain;
    yScale.nice = false;
  }
  const xAxis: Record<string, unknown> = {};
  if (spec.xFormat) {
    xAxis.format = spec.xFormat;
    // Vega picks one SI prefix for the whole axis, which writes 0 as "0k".
    if (spec.xFormat.endsWith("s")) xAxis.labelExpr = "datum.value === 0 ? '0' : datum.label";
  }
  const xs = spec.series.flatMap((s) => s.x).filter((v) => Number.isFinite(v));
  if (xs.length > 0) {
    xAxis.values = roundTicks(Math.min(...xs), Math.max(...xs));
    xAxis.labelOverlap = false; // the round values are few enough to all be written
  }
  const x = { field: "x", type: "quantitative", title: spec.xLabel, scale: { zero: false, nice: false }, axis: xAxis };
  const y = { field: "y", type: "quantitative", title: spec.yLabel, scale: yScale };
  // `clip` keeps a line that leaves a fixed y range from being drawn over the axes.
  const layers: Record<string, unknown>[] = [];
  // One layer per band with a constant fill: a band encoded through a colour
  // or fill scale joins the legend, and hiding that legend (legend: null)
  // hides the lines' merged legend too.
  spec.series.forEach((s, i) => {
    if (!s.lower || !s.upper) return;
    layers.push({
      transform: [{ filter: { field: "series", equal: s.name } }, { filter: "isValid(datum.lower) && isValid(datum.upper)" }],
      mark: { type: "area", opacity: 0.18, clip: true, color: colors[i] },
      encoding: {
        x,
        y: { field: "lower", type: "quantitative", title: spec.yLabel, scale: yScale },
        y2: { field: "upper" },
      },
    });
  });
  layers.push({
    mark: { type: "line", clip: true },
    encoding: { x, y, color, strokeDash },
  });
  if (spec.markers && spec.markers.length > 0) {
    const colorOf = new Map(names.map((n, i) => [n, colors[i]!]));
    for (const m of spec.markers) {
      if (!colorOf.has(m.series)) throw new Error(`chart "${spec.title}": a marker names series "${m.series}", which the chart does not have.`);
    }
    layers.push({
      data: { values: spec.markers.map((m) => ({ x: m.x, y: m.y, fill: colorOf.get(m.series) })) },
      mark: { type: "point", filled: true, size: 60, stroke: "white", strokeWidth: 1, opacity: 1, clip: true },
      encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" }, fill: { field: "fill", type: "nominal", scale: null, legend: null } },
    });
  }
  for (const rule of spec.rules ?? []) {
    const ruleData = { values: [{ y: rule.y, label: rule.label ?? "" }] };
    layers.push({
      data: ruleData,
      mark: { type: "rule", strokeDash: [2, 3], color: "#555", strokeWidth: 1.2, clip: true },
      encoding: { y: { field: "y", type: "quantitative" } },
    });
    if (rule.label) {
      layers.push({
        data: ruleData,
        mark: { type: "text", align: "right", baseline: "bottom", dy: -3, fontSize: 10, color: "#444", clip: true },
        encoding: {
          x: { value: width },
          y: { field: "y", type: "quantitative" },
          text: { field: "label" },
        },
      });
    }
  }
  return {
    title: spec.subtitle === undefined ? spec.title : { text: spec.title, subtitle: spec.subtitle },
    width,
    height: spec.height ?? DEFAULT_HEIGHT,
    data: { values: rowsOf(spec) },
    layer: layers,
  };
}

/** Render a vega-lite spec to SVG with the report's shared look (CONFIG) and font metrics. */
export async function renderVegaLite(vl: Record<string, unknown>): Promise<string> {
  const { vega, vegaLite } = await loadChartLibraries();
  const { spec } = vegaLite.compile({ ...vl, config: CONFIG } as VegaLiteModule.TopLevelSpec);
  // renderer "none": no DOM or canvas; toSVG builds the markup from the
  // scenegraph, laid out with the DejaVu widths installed above.
  const view = new vega.View(vega.parse(spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Render one line chart to a standalone SVG document. */
export async function lineChartSvg(spec: LineChartSpec): Promise<string> {
  return renderVegaLite(chartLayer(spec));
}

/** Several charts side by side in one SVG (vega-lite hconcat) */
export async function panelsSvg(panels: LineChartSpec[], title?: string): Promise<string> {
  const vl: Record<string, unknown> = {
    hconcat: panels.map(chartLayer),
    spacing: 24,
    // Each panel keeps its own series, colours and legend; by default a
    // concatenation would pool all series names into one colour scale.
    resolve: {
      scale: { color: "independent", strokeDash: "independent" },
      legend: { color: "independent", strokeDash: "independent" },
    },
  };
  if (title !== undefined) vl.title = { text: title, fontSize: 15, anchor: "middle" };
  return renderVegaLite(vl);
}

/**
 * Rasterise an SVG to PNG at twice its nominal size (sharp on high-density
 * screens and in print).
 */
export function svgToPng(svg: string): Uint8Array {
  // DejaVu Sans is installed here (fc-list). On a machine without it resvg
  // takes the first system font; with no fonts at all it skips the text and
  // still renders the marks, so the PNG is always produced.
  requirePackages(CHART_PACKAGES, "Drawing the charts");
  const { Resvg } = createRequire(import.meta.url)("@resvg/resvg-js") as typeof ResvgModule;
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans", sansSerifFamily: "DejaVu Sans" },
    fitTo: { mode: "zoom", value: 2 },
  });
  return new Uint8Array(resvg.render().asPng());
}

/** Write `<dir>/<name>.svg` and its PNG (svgToPng), each atomically; returns both paths. */
export function writeSvgAndPng(svg: string, dir: string, name: string): string[] {
  const files = [join(dir, `${name}.svg`), join(dir, `${name}.png`)];
  writeFileAtomic(files[0], svg);
  writeFileAtomic(files[1], svgToPng(svg));
  return files;
}
