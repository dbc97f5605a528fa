/**
 * The picture of `covshift adabn`: accuracy per domain before and after
 * AdaBN, as grouped bars (vega-lite, rendered headless like every chart of
 * the report, with charts.ts's libraries and font metrics).
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/files.js";
import { loadChartLibraries, svgToPng } from "./charts.js";

export interface AdabnPlotInput {
  trainSteps: number;
  adaptImages: number;
  evalImages: number;
  domains: { domain: string; before: number; after: number }[];
}

export async function adabnSvg(r: AdabnPlotInput): Promise<string> {
  const rows = r.domains.flatMap((d) => [
    { domain: d.domain, when: "source statistics", order: 0, accuracy: 100 * d.before },
    { domain: d.domain, when: "after AdaBN", order: 1, accuracy: 100 * d.after },
  ]);
  const vl = {
    title: {
      text: "AdaBN: BN's population statistics recomputed on the shifted domain",
      subtitle: `§4.1 BN network, ${r.trainSteps} steps on MNIST; ${r.adaptImages} unlabeled images to adapt, ${r.evalImages} others evaluated`,
    },
    width: 420,
    height: 260,
    data: { values: rows },
    encoding: {
      x: { field: "domain", type: "nominal", sort: r.domains.map((d) => d.domain), title: "test domain", axis: { labelAngle: 0 } },
      xOffset: { field: "when", type: "nominal", sort: ["source statistics", "after AdaBN"] },
      y: { field: "accuracy", type: "quantitative", title: "test accuracy (%)", scale: { domain: [0, 100] } },
      color: {
        field: "when",
        type: "nominal",
        sort: ["source statistics", "after AdaBN"],
        scale: { range: ["#999999", "#0072B2"] },
        legend: { orient: "bottom", title: null },
      },
    },
    layer: [
      { mark: { type: "bar" } },
      {
        mark: { type: "text", dy: -6, fontSize: 10 },
        encoding: { text: { field: "accuracy", type: "quantitative", format: ".1f" } },
      },
    ],
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

/** Write adabn.svg and adabn.png into outDir; returns their paths. */
export async function writeAdabnPlot(r: AdabnPlotInput, outDir: string): Promise<string[]> {
  const svg = await adabnSvg(r);
  const files = [join(outDir, "adabn.svg"), join(outDir, "adabn.png")];
  writeFileAtomic(files[0], svg);
  writeFileAtomic(files[1], svgToPng(svg));
  return files;
}
