/**
 * The picture of `covshift batchsize`: final test accuracy against the
 * examples per BN normalization (log₂ axis), one line per kind of
 * normalization (vega-lite, rendered headless through charts.ts's
 * renderVegaLite: the report's common look).
 */
import { renderVegaLite, writeSvgAndPng } from "./charts.js";

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
  };
  return renderVegaLite(vl);
}

/** Write batchsize.svg and batchsize.png into outDir; returns their paths. */
export async function writeBatchsizePlot(r: BatchsizePlotInput, outDir: string): Promise<string[]> {
  return writeSvgAndPng(await batchsizeSvg(r), outDir, "batchsize");
}
