// The settings the Figure 1 sweep (scripts/sweep-figure1.mjs) adds to figure1 — PyTorch's
// default initialization and standardized inputs — and the sweep's trade-off picture.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mnistToFloat, MNIST_INPUTS } from "../../src/data/mnist.js";
import { defaultFigure1Config, validateFigure1Config, type Figure1Config } from "../../src/experiments/figure1/config.js";
import { buildFigure1Network } from "../../src/experiments/figure1/network.js";
import { Generator } from "../../src/tensor/random.js";
import { sweepSvg, writeSweepPlot, type SweepPoint } from "../../src/report/sweepPlots.js";
import { assertAllClose } from "../allclose.js";

/** The parameters of the network's Linear layers by name ("0.weight", "0.bias", ...). */
function linearParameters(config: Figure1Config, kind: "baseline" | "batchnorm"): Map<string, Float32Array> {
  const { model } = buildFigure1Network(kind, config, new Generator(7));
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) {
    if (p.shape.length === 2 || (p.shape.length === 1 && out.has(name.replace(/bias$/, "weight")))) out.set(name, Float32Array.from((p.toArray() as number[] | number[][]).flat()));
  }
  return out;
}

const std = (v: Float32Array) => {
  const mean = v.reduce((a, x) => a + x, 0) / v.length;
  return Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / v.length);
};

describe("figure1 sweep settings: --input standardized", () => {
  it("maps pixel p to (p/255 − 0.1307)/0.3081 (PyTorch's MNIST constants), in float32", () => {
    const pixels = Uint8Array.from([0, 51, 128, 255]);
    const expected = [0, 51, 128, 255].map((p) => Math.fround((p / 255 - 0.1307) / 0.3081));
    assert.deepEqual([...mnistToFloat(pixels, "standardized")], expected);
    assertAllClose([expected[0], expected[3]], [-0.4242, 2.8215], { atol: 1e-4, rtol: 0 }, "background −0.42, strokes 2.82");
  });

  it("is one of the modes figure1 accepts, and an unknown mode is refused naming --input and the choices", () => {
    assert.deepEqual([...MNIST_INPUTS], ["scaled", "binary", "standardized"]);
    validateFigure1Config({ ...defaultFigure1Config, input: "standardized" });
    assert.throws(
      () => validateFigure1Config({ ...defaultFigure1Config, input: "raw" as Figure1Config["input"] }),
      /--input must be "scaled", "binary", "standardized"; got "raw"/,
    );
  });
});

describe("figure1 sweep settings: --init default", () => {
  it("gives PyTorch's nn.Linear initialization: weights and biases ~ U(±1/√fan_in) (std bound/√3), where normal gives N(0, σ²) and zero biases", () => {
    const pytorch = linearParameters({ ...defaultFigure1Config, init: "default" }, "baseline");
    const paper = linearParameters({ ...defaultFigure1Config, init: "normal", initStd: 0.01 }, "baseline");
    const fanIn: Record<string, number> = { "0": 784, "2": 100, "4": 100, "6": 100 };
    for (const [name, values] of pytorch) {
      const bound = 1 / Math.sqrt(fanIn[name.split(".")[0]]);
      assertAllClose(values, new Float32Array(values.length), { atol: bound, rtol: 0 }, `${name} within ±1/√fan_in`);
      if (name.endsWith("weight")) {
        const s = std(values);
        assertAllClose(s, bound / Math.sqrt(3), { atol: 0.1 * bound, rtol: 0 }, `${name}: std vs bound/√3`);
      } else {
        assert.ok(values.some((v) => v !== 0), `${name}: biases drawn, not zero`);
      }
    }
    for (const [name, values] of paper) {
      if (name.endsWith("bias")) assert.ok(values.every((v) => v === 0), `${name}: zero under the paper's init`);
      else assertAllClose(std(values), 0.01, { atol: 0.002, rtol: 0 }, `${name}: std under the paper's init (0.01)`);
    }
  });

  it("keeps the BN network without the hidden layers' biases (β takes their place), and an unknown scheme is refused naming --init", () => {
    const { model } = buildFigure1Network("batchnorm", { ...defaultFigure1Config, init: "default" }, new Generator(0));
    const names = model.namedParameters().map(([n]) => n);
    assert.ok(!names.includes("0.bias") && names.includes("0.weight"), `hidden Linear without bias: ${names.join(", ")}`);
    assert.throws(() => validateFigure1Config({ ...defaultFigure1Config, init: "uniform" as Figure1Config["init"] }), /--init must be "normal".*or "default".*got "uniform"/);
  });

  it("covshift figure1 --init refuses an unknown scheme with a message naming the choices, exit code 1, no stack trace", () => {
    const r = spawnSync(process.execPath, ["bin/covshift.js", "figure1", "--init", "uniform", "--no-download"], { encoding: "utf8" });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--init/);
    assert.match(r.stderr, /normal, default/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  });
});

describe("figure1 sweep: the trade-off picture", () => {
  const point = (over: Partial<SweepPoint>): SweepPoint => ({
    initStd: 0.1, lr: 0.01, momentum: 0.9, baselineAt10k: 0.9, baselineFinal: 0.9, batchnormFinal: 0.95, driftRatio: 1, paperPicture: false, ...over,
  });

  it("draws one labelled point per setting, a legend entry per family, the target corner's caption, and a PNG", async () => {
    const points = [
      point({ initStd: 0.01, baselineAt10k: 0.11, driftRatio: 0.65 }),
      point({ init: "default", lr: 0.1, momentum: 0, driftRatio: 1.4 }),
      point({ input: "standardized", initStd: 0.05, batchnormFinal: 0.8 }),
    ];
    const svg = await sweepSvg(points, 10_000);
    for (const label of ["σ 0.01, lr 0.01, m 0.9", "lr 0.1", "σ 0.05, lr 0.01, m 0.9"]) assert.ok(svg.includes(`>${label}</text>`), `label ${label}`);
    for (const family of ["N(0, σ²) init, pixels/255", "PyTorch's default init, pixels/255", "N(0, σ²) init, standardized pixels"]) {
      assert.ok(svg.includes(`>${family}</text>`), `legend ${family}, not cut short`);
    }
    assert.match(svg, /baseline ≥ 85% at 10k/);
    const dir = mkdtempSync(join(tmpdir(), "covshift-sweep-"));
    try {
      await writeSweepPlot(points, 10_000, dir);
      const png = readFileSync(join(dir, "figure1-sweep.png"));
      assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
