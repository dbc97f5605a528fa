/**
 * jacobian.json — a contract that outside checks use:
 *   { config, runs: [ { network, seed, steps: [...],
 *       layers: [ { layer, singularValues: { min: [], p15: [], median: [], p85: [], max: [] } } ] } ] }
 * with one entry of each list per step. Besides the contract's fields a run
 * has testAccuracy, stack (the hidden stack's Jacobian ∂z_L/∂x), bnTransform
 * (the BN network's BN layers alone, statistics fixed) and timings; the
 * result has `findings`.
 */
import type { NetworkKind } from "../figure1/config.js";
import type { JacobianConfig } from "./config.js";
import type { Distribution, JacobianMeasurement } from "./jacobian.js";
import type { CheckpointFields } from "../runner/checkpointState.js";

export interface DistributionSeries {
  min: number[];
  p15: number[];
  median: number[];
  p85: number[];
  max: number[];
}

export interface JacobianRun {
  network: NetworkKind;
  seed: number;
  steps: number[];
  layers: { layer: number; singularValues: DistributionSeries }[];
  stack: { singularValues: DistributionSeries };
  bnTransform: { layer: number; singularValues: DistributionSeries }[];
  testAccuracy: number[];
  backend?: string;
  wallSeconds: number;
  /** Of wallSeconds, the time spent computing Jacobians and singular values. */
  jacobianSeconds: number;
}

export interface JacobianFindings {
  /** Does this run support §3.3's conjecture, by the criterion in `criterion`? */
  supports: boolean;
  criterion: string;
  /** At the last step, per layer l ≥ 2: the median singular value of each network. */
  finalMedians: { layer: number; baseline: number; batchnorm: number }[];
  text: string;
}

export interface JacobianResult {
  config: JacobianConfig;
  runs: JacobianRun[];
  wallSeconds: number;
  findings: JacobianFindings;
}

const emptySeries = (): DistributionSeries => ({ min: [], p15: [], median: [], p85: [], max: [] });

export function emptyRun(network: NetworkKind, c: JacobianConfig): JacobianRun {
  return {
    network,
    seed: c.seed,
    steps: [],
    layers: c.hidden.map((_, i) => ({ layer: i + 1, singularValues: emptySeries() })),
    stack: { singularValues: emptySeries() },
    bnTransform: network === "batchnorm" ? c.hidden.map((_, i) => ({ layer: i + 1, singularValues: emptySeries() })) : [],
    testAccuracy: [],
    wallSeconds: 0,
    jacobianSeconds: 0,
  };
}

/**
 * A run read back from a checkpoint, every field checked against this run
 * (its network, seed, --every and widths): `n` measurements so far, steps
 * every --every, accuracies in [0, 1], singular values finite and ≥ 0 and
 * ordered min ≤ p15 ≤ median ≤ p85 ≤ max. Errors name the checkpoint file
 * and the field (CheckpointFields).
 */
export function runFromCheckpoint(r: CheckpointFields, network: NetworkKind, c: JacobianConfig, n: number): JacobianRun & { trainSeconds: number } {
  if (r.str("network") !== network) r.fail("network", `is not ${network}, the network of this run`);
  const seed = r.int("seed", 0, Number.MAX_SAFE_INTEGER);
  if (seed !== c.seed) r.fail("seed", `is ${seed}, but this run has --seed ${c.seed}`);
  const steps = r.numbers("steps", n);
  steps.forEach((s, i) => s !== (i + 1) * c.every && r.fail(`steps[${i}]`, `is ${s}; the Jacobians are measured every ${c.every} steps`));
  const series = (f: CheckpointFields): DistributionSeries => {
    const s = { min: f.numbers("min", n, [0, Infinity]), p15: f.numbers("p15", n, [0, Infinity]), median: f.numbers("median", n, [0, Infinity]), p85: f.numbers("p85", n, [0, Infinity]), max: f.numbers("max", n, [0, Infinity]) };
    for (let i = 0; i < n; i++) {
      if (!(s.min[i] <= s.p15[i] && s.p15[i] <= s.median[i] && s.median[i] <= s.p85[i] && s.p85[i] <= s.max[i])) {
        f.fail(`min[${i}]`, `… max[${i}] are not in order (${s.min[i]}, ${s.p15[i]}, ${s.median[i]}, ${s.p85[i]}, ${s.max[i]})`);
      }
    }
    return s;
  };
  const perLayer = (key: string, count: number) =>
    r.objects(key, count).map((l, i) => {
      l.int("layer", i + 1, i + 1);
      return { layer: i + 1, singularValues: series(l.object("singularValues")) };
    });
  return {
    network,
    seed,
    steps,
    layers: perLayer("layers", c.hidden.length),
    stack: { singularValues: series(r.object("stack").object("singularValues")) },
    bnTransform: perLayer("bnTransform", network === "batchnorm" ? c.hidden.length : 0),
    testAccuracy: r.numbers("testAccuracy", n, [0, 1]),
    wallSeconds: r.num("wallSeconds", 0),
    jacobianSeconds: r.num("jacobianSeconds", 0),
    trainSeconds: r.num("trainSeconds", 0),
  };
}

function push(s: DistributionSeries, d: Distribution): void {
  s.min.push(d.min);
  s.p15.push(d.p15);
  s.median.push(d.median);
  s.p85.push(d.p85);
  s.max.push(d.max);
}

export function recordMeasurement(run: JacobianRun, step: number, accuracy: number, m: JacobianMeasurement): void {
  if (m.layers.length !== run.layers.length || m.bnTransform.length !== run.bnTransform.length) {
    throw new Error(`recordMeasurement: ${m.layers.length} layers and ${m.bnTransform.length} BN layers measured; the run has ${run.layers.length} and ${run.bnTransform.length}`);
  }
  run.steps.push(step);
  run.testAccuracy.push(accuracy);
  m.layers.forEach((d, i) => push(run.layers[i].singularValues, d));
  push(run.stack.singularValues, m.stack);
  m.bnTransform.forEach((d, i) => push(run.bnTransform[i].singularValues, d));
}

const CRITERION =
  "at the last step, for every layer-to-layer Jacobian J_l = ∂z_l/∂z_{l−1} (l ≥ 2; §3.3's transformation between consecutive normalized vectors), " +
  "the BN network's median singular value lies within a factor 2 of 1 (0.5–2) and is closer to 1 (in log ratio) than the baseline's";

const fmt = (v: number) => (v === 0 ? "0" : Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toPrecision(3) : v.toExponential(2));

export function findings(runs: JacobianRun[]): JacobianFindings {
  const base = runs.find((r) => r.network === "baseline");
  const bn = runs.find((r) => r.network === "batchnorm");
  if (!base || !bn) throw new Error("findings: need a baseline and a batchnorm run");
  const last = (s: number[]) => s[s.length - 1];
  const finalMedians = bn.layers.slice(1).map((l, i) => ({
    layer: l.layer,
    baseline: last(base.layers[i + 1].singularValues.median),
    batchnorm: last(l.singularValues.median),
  }));
  const near = (v: number) => v >= 0.5 && v <= 2;
  const closer = (a: number, b: number) => Math.abs(Math.log(a)) < Math.abs(Math.log(b));
  const supports = finalMedians.length > 0 && finalMedians.every((m) => near(m.batchnorm) && closer(m.batchnorm, m.baseline));
  const step = last(bn.steps);
  const parts = finalMedians.map((m) => `layer ${m.layer}: median ${fmt(m.batchnorm)} with BN, ${fmt(m.baseline)} without`);
  const text =
    `${supports ? "This run supports" : "This run does not support"} §3.3's conjecture by the criterion (${CRITERION}). ` +
    `At step ${step}: ${parts.join("; ")}.`;
  return { supports, criterion: CRITERION, finalMedians, text };
}

function tableRows(run: JacobianRun, k: number): string[] {
  const row = (name: string, s: DistributionSeries) =>
    `| ${run.network === "batchnorm" ? "with BN" : "without BN"} | ${name} | ${fmt(s.min[k])} | ${fmt(s.p15[k])} | ${fmt(s.median[k])} | ${fmt(s.p85[k])} | ${fmt(s.max[k])} |`;
  return [
    ...run.layers.map((l) => row(l.layer === 1 ? "layer 1 (∂z₁/∂x)" : `layer ${l.layer} (∂z${l.layer}/∂z${l.layer - 1})`, l.singularValues)),
    row("hidden stack (∂z_L/∂x)", run.stack.singularValues),
    ...run.bnTransform.map((l) => row(`BN ${l.layer} alone (γ/√(σ²+ε), abs.)`, l.singularValues)),
  ];
}

export function summaryMarkdown(result: JacobianResult): string {
  const c = result.config;
  const lines = [
    "# §3.3: singular values of the layer Jacobians",
    "",
    `**${result.findings.supports ? "Supports the conjecture." : "Does not support the conjecture."}** ${result.findings.text}`,
    "",
    `Setting: the §4.1 networks (784 → ${c.hidden.join(" → ")} sigmoid → 10), seed ${c.seed}, ${c.steps} SGD steps of ${c.batchSize} ` +
      `(lr ${c.lr}, momentum ${c.momentum}, weights N(0, ${c.initStd}²), MNIST ${c.input}), as \`covshift figure1\`. ` +
      `Jacobians exact in float64 at the first ${c.images} test images, in inference mode (BN with its population statistics, i.e. held fixed), every ${c.every} steps.`,
    "",
  ];
  for (const run of result.runs) {
    lines.push(`Test accuracy, ${run.network}: ${run.steps.map((s, i) => `${s}: ${(100 * run.testAccuracy[i]).toFixed(2)}%`).join(", ")}.`, "");
  }
  for (const k of [0, result.runs[0].steps.length - 1]) {
    const step = result.runs[0].steps[k];
    lines.push(`## Singular values at step ${step} (pooled over the images)`, "", "| network | Jacobian | min | p15 | median | p85 | max |", "|---|---|---:|---:|---:|---:|---:|");
    for (const run of result.runs) lines.push(...tableRows(run, k));
    lines.push("");
    if (result.runs[0].steps.length === 1) break;
  }
  lines.push(
    `Wall time ${result.wallSeconds.toFixed(0)} s (of which Jacobians: ${result.runs.map((r) => `${r.network} ${r.jacobianSeconds.toFixed(0)} s`).join(", ")}).`,
    "",
  );
  return lines.join("\n");
}
