import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lineChartSvg, panelsSvg, roundTicks, stepsFormat, svgToPng, type LineChartSpec } from "../../src/report/charts.js";
import { writeFigure1Plots, type Figure1Result, type Figure1Run } from "../../src/report/figure1Plots.js";
import { writeFigure2Plot } from "../../src/report/tablePlots.js";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from the IHDR chunk, which PNG requires to come first. */
function pngSize(png: Uint8Array): { width: number; height: number; chunk: string } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunk = String.fromCharCode(...png.subarray(12, 16));
  return { width: view.getUint32(16), height: view.getUint32(20), chunk };
}

/**
 * True when `text` is drawn as a <text> element. A plain substring test is not
 * enough: vega also repeats series names in the marks' aria descriptions,
 * which would pass even if the legend were missing.
 */
function drawsText(svg: string, text: string): boolean {
  const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return svg.includes(`>${escaped}</text>`);
}

const spec: LineChartSpec = {
  title: "Accuracy over training",
  xLabel: "Training steps",
  yLabel: "Test accuracy",
  series: [
    { name: "Without BN", x: [0, 1, 2, 3], y: [0.1, 0.5, 0.7, 0.8], dash: true },
    { name: "With BN", x: [0, 1, 2, 3], y: [0.2, 0.8, 0.9, 0.95], lower: [0.1, 0.7, 0.85, 0.9], upper: [0.3, 0.85, 0.95, 0.97] },
  ],
};

function synthRun(network: Figure1Run["network"], seed: number): Figure1Run {
  const steps = Array.from({ length: 6 }, (_, i) => i * 1000);
  const rate = network === "batchnorm" ? 3e-3 : 5e-4;
  return {
    network,
    seed,
    steps,
    testAccuracy: steps.map((s) => 0.95 - 0.85 * Math.exp(-rate * s) - 0.01 * seed),
    trainLoss: steps.map((s) => 2.3 * Math.exp(-rate * s)),
    sigmoidInput: {
      p15: steps.map((s) => -1 - (network === "baseline" ? s / 2000 : 0)),
      p50: steps.map(() => 0),
      p85: steps.map((s) => 1 + (network === "baseline" ? s / 3000 : 0)),
    },
  };
}

const synthResult: Figure1Result = {
  config: { steps: 5000 },
  runs: [synthRun("baseline", 0), synthRun("baseline", 1), synthRun("batchnorm", 0), synthRun("batchnorm", 1)],
  wallSeconds: 1,
};

describe("lineChartSvg", () => {
  it("writes the title, both axis titles and every series name into the SVG", async () => {
    const svg = await lineChartSvg(spec);
    assert.match(svg, /^<svg[\s>]/);
    for (const text of [spec.title, spec.xLabel, spec.yLabel, ...spec.series.map((s) => s.name)]) {
      assert.ok(drawsText(svg, text), `SVG does not draw "${text}"`);
    }
  });

  it("draws a band as a filled path only when a series has lower/upper", async () => {
    // Vega tags each mark group with its type: an area mark appears only for bands.
    const withBand = await lineChartSvg(spec);
    const noBand = await lineChartSvg({ ...spec, series: spec.series.map(({ lower, upper, ...s }) => s) });
    assert.ok(withBand.includes(`class="mark-area`), "band series should produce an area mark");
    assert.ok(!noBand.includes(`class="mark-area`), "no band requested, yet an area mark was drawn");
  });

  it("writes a horizontal rule's label into the SVG", async () => {
    const svg = await lineChartSvg({ ...spec, rules: [{ y: 0.9, label: "Inception max: 90.0%" }] });
    assert.ok(drawsText(svg, "Inception max: 90.0%"));
    // Axes draw rules too; a rule drawn as data has the role "mark".
    assert.ok(svg.includes(`class="mark-rule role-mark`), "no rule mark drawn");
  });

  it("rejects a series whose y has a different length from x, naming the series", async () => {
    const bad = { ...spec, series: [{ name: "short", x: [0, 1, 2], y: [1, 2] }] };
    await assert.rejects(lineChartSvg(bad), /series "short": y has 2 values but x has 3/);
  });

  it("rejects two series with the same name, which would merge into one line", async () => {
    const bad = { ...spec, series: [spec.series[0]!, { ...spec.series[1]!, name: "Without BN" }] };
    await assert.rejects(lineChartSvg(bad), /two series are named "Without BN"/);
  });
});

describe("stepsFormat", () => {
  const axisLabels = async (maxStep: number): Promise<string> => {
    const x = [0, maxStep / 2, maxStep];
    return lineChartSvg({ ...spec, series: [{ name: "s", x, y: [0, 1, 2] }], xFormat: stepsFormat(maxStep) });
  };

  it("labels a 50,000-step axis in SI units and writes its origin as 0, not 0k", async () => {
    const svg = await axisLabels(50_000);
    assert.ok(drawsText(svg, "50k"), "no 50k label");
    assert.ok(drawsText(svg, "0") && !drawsText(svg, "0k"), "origin should read 0");
  });

  it("labels a 3,000-step axis with plain integers, never exponents like 4e+2", async () => {
    const svg = await axisLabels(3000);
    assert.ok(drawsText(svg, "1,000"), "no 1,000 label");
    assert.ok(!/>[^<]*e\+[^<]*<\/text>/.test(svg), "an axis label uses exponent notation");
  });
});

describe("round ticks", () => {
  it("steps of 1, 2 or 5 × 10^k, at most 6 intervals: 0, 10k … 50k for 50,000 steps; 0, 1,000 … 6,000; 500s for 2,000", () => {
    assert.deepEqual(roundTicks(0, 50_000), [0, 10_000, 20_000, 30_000, 40_000, 50_000]);
    assert.deepEqual(roundTicks(500, 50_000), [10_000, 20_000, 30_000, 40_000, 50_000]);
    assert.deepEqual(roundTicks(100, 6000), [1000, 2000, 3000, 4000, 5000, 6000]);
    assert.deepEqual(roundTicks(0, 2000), [0, 500, 1000, 1500, 2000]);
    assert.deepEqual(roundTicks(0, 45), [0, 10, 20, 30, 40]);
  });

  it("a 50,000-step chart is labelled 10k, 20k … 50k, not 5k, 15k … 45k", async () => {
    const svg = await lineChartSvg({ ...spec, series: [{ name: "s", x: [500, 25_000, 50_000], y: [0, 1, 2] }], xFormat: stepsFormat(50_000) });
    for (const label of ["10k", "20k", "30k", "40k", "50k"]) assert.ok(drawsText(svg, label), `no ${label} label`);
    for (const label of ["5k", "15k", "25k", "35k", "45k"]) assert.ok(!drawsText(svg, label), `a ${label} label`);
  });
});

describe("markers", () => {
  it("a marker is drawn as a dot in its series' colour; one naming an unknown series is an error", async () => {
    const s: LineChartSpec = { ...spec, series: [{ name: "a", x: [0, 1], y: [0, 1], color: "#123456" }], markers: [{ series: "a", x: 1, y: 1 }] };
    assert.match(await lineChartSvg(s), /fill="#123456"/);
    await assert.rejects(lineChartSvg({ ...s, markers: [{ series: "b", x: 1, y: 1 }] }), /marker names series "b"/);
  });
});

describe("panelsSvg", () => {
  it("puts every panel's title, series names and the overall title into one SVG", async () => {
    const other: LineChartSpec = { ...spec, title: "Second panel", series: [{ name: "85th percentile", x: [0, 1], y: [1, 2] }] };
    const svg = await panelsSvg([spec, other], "Both panels");
    for (const text of ["Both panels", spec.title, "Second panel", "Without BN", "With BN", "85th percentile"]) {
      assert.ok(drawsText(svg, text), `SVG does not draw "${text}"`);
    }
  });
});

describe("svgToPng", () => {
  it("produces a PNG: the signature, then an IHDR with nonzero width and height", async () => {
    const png = svgToPng(await lineChartSvg(spec));
    assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
    const { width, height, chunk } = pngSize(png);
    assert.equal(chunk, "IHDR");
    assert.ok(width > 0 && height > 0, `PNG is ${width}×${height}`);
  });

  it("renders at twice the SVG's nominal size", async () => {
    const svg = await lineChartSvg(spec);
    const svgWidth = Number(/<svg[^>]* width="([\d.]+)"/.exec(svg)![1]);
    assert.equal(pngSize(svgToPng(svg)).width, Math.round(2 * svgWidth));
  });
});

describe("writeFigure1Plots", () => {
  it("writes figure1a/b/c and the three-panel figure1, each as SVG and PNG (8 files)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "covshift-fig1-"));
    try {
      const written = await writeFigure1Plots(synthResult, dir);
      const expected = ["figure1", "figure1a", "figure1b", "figure1c"].flatMap((s) => [`${s}.png`, `${s}.svg`]).sort();
      assert.deepEqual((await readdir(dir)).sort(), expected);
      assert.deepEqual(written.map((p) => p.slice(dir.length + 1)).sort(), expected);
      for (const name of expected.filter((n) => n.endsWith(".png"))) {
        const png = new Uint8Array(await readFile(join(dir, name)));
        assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE, `${name} is not a PNG`);
      }
      const a = await readFile(join(dir, "figure1a.svg"), "utf8");
      assert.ok(drawsText(a, "Without BN") && drawsText(a, "With BN"), "figure1a lacks a network's legend entry");
      const b = await readFile(join(dir, "figure1b.svg"), "utf8");
      for (const p of ["15th percentile", "50th percentile", "85th percentile"]) assert.ok(drawsText(b, p), `figure1b lacks "${p}"`);
      // A colour means one thing across the panels: the networks' colours of (a) are not percentiles' in (b).
      for (const networkColour of ["#0072B2", "#D55E00"]) assert.ok(!b.includes(`stroke="${networkColour}"`), `figure1b draws a percentile in ${networkColour}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("gives (b) and (c) the same y axis, so drift compares by eye", async () => {
    const dir = await mkdtemp(join(tmpdir(), "covshift-fig1-"));
    try {
      await writeFigure1Plots(synthResult, dir);
      // Vega describes each axis for screen readers as "… with values from A to B".
      const yRange = (svg: string): string[] => {
        const axis = /aria-label="Y-axis[^"]*values from (\S+) to (\S+)"/.exec(svg);
        assert.ok(axis, "no y axis description found in the SVG");
        return [axis[1]!, axis[2]!];
      };
      const b = await readFile(join(dir, "figure1b.svg"), "utf8");
      const c = await readFile(join(dir, "figure1c.svg"), "utf8");
      assert.deepEqual(yRange(c), yRange(b));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("writeFigure2Plot", () => {
  it("writes figure2.svg/.png with every row and a rule at Inception's maximum", async () => {
    const dir = await mkdtemp(join(tmpdir(), "covshift-fig2-"));
    try {
      const steps = [0, 1000, 2000, 3000];
      const rows = [
        { name: "Inception", steps, validationAccuracy: [0.1, 0.4, 0.55, 0.59] },
        { name: "BN-x5", steps, validationAccuracy: [0.1, 0.6, 0.7, 0.72] },
      ];
      const written = await writeFigure2Plot({ rows }, dir);
      assert.deepEqual(written.map((p) => p.slice(dir.length + 1)), ["figure2.svg", "figure2.png"]);
      const svg = await readFile(join(dir, "figure2.svg"), "utf8");
      for (const r of rows) assert.ok(drawsText(svg, r.name), `figure2 lacks row "${r.name}"`);
      assert.ok(drawsText(svg, "Inception max: 59.0%"), "figure2 lacks the rule at Inception's maximum");
      assert.match(svg, />Figure 2, in miniature on CIFAR-10[^<]*<\/text>/, "the title says CIFAR-10 and miniature");
      assert.ok(drawsText(svg, "single center crop on the validation split; dots: where each row first reaches Inception's best"));
      // One dot per row that reaches 59%: Inception at 3,000, BN-x5 at 1,000 (its first evaluation at ≥ 0.59).
      assert.equal((svg.match(/aria-roledescription="point"/g) ?? []).length, 2, "one dot for each row reaching Inception's best");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
