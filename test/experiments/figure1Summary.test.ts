/**
 * figure1's summary.md on runs made up by hand: it names only steps at which
 * an evaluation was made, and a run shorter than the paper's 50,000 steps
 * says which check needs the full budget instead of printing a failed one.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { defaultFigure1Config } from "../../src/experiments/figure1/config.js";
import { summarize, summaryMarkdown } from "../../src/experiments/figure1/summary.js";
import type { Figure1RunResult } from "../../src/experiments/figure1/trainer.js";

function run(network: "baseline" | "batchnorm", steps: number[], accuracy: (s: number) => number): Figure1RunResult {
  return {
    network,
    seed: 0,
    steps,
    testAccuracy: steps.map(accuracy),
    trainLoss: steps.map(() => 1),
    earlyLoss: [],
    sigmoidInput: { p15: steps.map((s) => -s / 1000), p50: steps.map(() => 0), p85: steps.map((s) => s / 1000) },
    wallSeconds: 1,
    trainSeconds: 1,
  };
}

function markdown(totalSteps: number, evalEvery: number): string {
  const config = { ...defaultFigure1Config, steps: totalSteps, evalEvery, seeds: 1 };
  const steps = Array.from({ length: totalSteps / evalEvery + 1 }, (_, i) => i * evalEvery);
  const runs = [run("baseline", steps, () => 0.1), run("batchnorm", steps, (s) => 0.5 + (0.46 * s) / totalSteps)];
  return summaryMarkdown({ config, runs, wallSeconds: 1, findings: summarize(config, runs) });
}

describe("figure1 summary", () => {
  it("a 3,000-step run evaluated every 500: the drift is measured from step 500 (an evaluation), not 300", () => {
    const md = markdown(3000, 500);
    assert.match(md, /sigmoid-input drift from step 500 /);
    assert.doesNotMatch(md, /from step 300\b/);
  });

  it("a short run says the 97.5% check needs the full 50,000 steps instead of answering no", () => {
    const md = markdown(3000, 500);
    assert.match(md, /BN final accuracy ≥ 97\.5%: not judged — it needs the full 50,000 steps \(this run: 3,000; BN ended at 96\.00%\)/);
    assert.doesNotMatch(md, /97\.5%: no\b/);
  });

  it("a full-budget run answers the 97.5% check", () => {
    assert.match(markdown(50_000, 5000), /BN final accuracy ≥ 97\.5%: no\n/);
  });
});
