/**
 * The picture of `covshift batchsize`: final test accuracy against the
 * examples per BN normalization (log₂ axis), one line per kind of
 * normalization (vega-lite, rendered headless with charts.ts's libraries).
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/files.js";
import { loadChartLibraries, svgToPng } from "./charts.js";

export interface BatchsizePlotInput {
  examples: number;
  config: { batchSizes: number[] };
  runs: { variant: string; batchSize: number; testAccuracy: number; workers?: number; virtualBatchSize?: number }[];
}

const LABELS: Record<string, string> = {
  bn: "BN (running averages)",
  "bn-population": "BN, population statistics",
  ghost: "ghost BN",
  renorm: "Batch Renorm",
  "syncbn-workers": "60 over workers, SyncBN",
  "bn-workers": "60 over workers, BN per shard",
};
const ORDER = Object.keys(LABELS);
const COLORS = ["#0072B2", "#56B4E9", "#009E73", "#D55E00", "#000000", "#CC79A7"];

export async function batchsizeSvg(r: BatchsizePlotInput): Promise<string> {
  const present = ORDER.filter((v) => r.runs.some((x) => x.variant === v));
  // Ghost BN whose virtual batch is the whole batch is plain BN: drawn only where it differs.
  const drawn = r.runs.filter((x) => !(x.variant === "ghost" && x.virtualBatchSize === x.batchSize));
  const rows = drawn.map((x) => ({ series: LABELS[x.variant] ?? x.variant, batch: x.batchSize, accuracy: 100 * x.testAccuracy }));
  const all = [...new Set(r.runs.map((x) => x.batchSize))].sort((a, b) => a - b);
  const sizes = [...r.config.batchSizes].sort((a, b) => a - b);
  const accs = rows.map((x) => x.accuracy);
  const low = Math.max(0, Math.floor(Math.min(...accs) / 5) * 5);
  const vl = {
    title: {
      text: "What BN needs its batch for: test accuracy against batch size",
      subtitle: [
        `§4.1 BN network, ${r.examples.toLocaleString("en-US")} training examples per run, lr ∝ batch; worker rows: batch 60 split into shards;`,
        "ghost BN drawn where its virtual batch is smaller than the batch (elsewhere it is BN)",
      ],
    },
    width: 460,
    height: 300,
    data: { values: rows },
    encoding: {
      x: {
        field: "batch",
        type: "quantitative",
        title: "examples per BN normalization in training (batch, or each worker's shard)",
        scale: { type: "log", base: 2, domain: [all[0], all[all.length - 1]] },
        axis: { values: sizes, format: "d" },
      },
      y: { field: "accuracy", type: "quantitative", title: "final test accuracy (%)", scale: { domain: [low, 100] } },
      color: {
        field: "series",
        type: "nominal",
        sort: present.map((v) => LABELS[v]),
        scale: { domain: present.map((v) => LABELS[v]), range: present.map((v) => COLORS[ORDER.indexOf(v)]) },
        legend: { orient: "bottom", columns: 2, title: null },
      },
    },
    layer: [{ mark: { type: "line", strokeWidth: 1.8 } }, { mark: { type: "point", filled: true, size: 40 } }],
    config: { background: "white", font: "DejaVu Sans, Helvetica, Arial, sans-serif", title: { anchor: "start", fontWeight: "normal", fontSize: 14, subtitleFontSize: 11 } },
  };
  const { vega, vegaLite } = await loadChartLibraries();
  const { spec } = vegaLite.compile(vl as unknown as Parameters<typeof vegaLite.compile>[0]);
  const view = new vega.View(vega.parse(spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Write batchsize.svg and batchsize.png into outDir; returns their paths. */
export async function writeBatchsizePlot(r: BatchsizePlotInput, outDir: string): Promise<string[]> {
  const svg = await batchsizeSvg(r);
  const files = [join(outDir, "batchsize.svg"), join(outDir, "batchsize.png")];
  writeFileAtomic(files[0], svg);
  writeFileAtomic(files[1], svgToPng(svg));
  return files;
}
