/**
 * The picture of `covshift adabn`: accuracy per domain before and after
 * AdaBN, as grouped bars (vega-lite, rendered headless through charts.ts's
 * renderVegaLite: the report's common look and font metrics).
 */
import { renderVegaLite, writeSvgAndPng } from "./charts.js";

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
  };
  return renderVegaLite(vl);
}

/** Write adabn.svg and adabn.png into outDir; returns their paths. */
export async function writeAdabnPlot(r: AdabnPlotInput, outDir: string): Promise<string[]> {
  return writeSvgAndPng(await adabnSvg(r), outDir, "adabn");
}
