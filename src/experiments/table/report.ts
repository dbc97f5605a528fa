/**
 * From the trained rows to the paper's table (§4.2.2): each row's maximum
 * validation accuracy and the number of steps it needs to reach the
 * Inception row's maximum; table.json (the contract read by outside checks)
 * and table.md.
 */
import type { TableLimits } from "./data.js";
import type { EnsembleResult } from "./ensemble.js";
import type { RowId, TableConfig } from "./rows.js";
import type { TableRowResult } from "./trainer.js";

/** One row of table.json. */
export interface TableRowSummary extends TableRowResult {
  /** The highest validation accuracy measured. */
  maxAccuracy: number;
  /** The first step at which it was measured. */
  stepOfMax: number;
  /**
   * The first measured step at which this row's validation accuracy reaches
   * the Inception row's maximum; null if it never does, or if the Inception
   * row was not run.
   */
  stepsToInceptionMax: number | null;
  /** Training steps per second, evaluations excluded. */
  stepsPerSecond: number | null;
}

/** table.json. */
export interface TableResult {
  /** Every setting, the rows run, and the image limits (empty: the full splits). */
  config: TableConfig & { rows: RowId[]; limits: TableLimits };
  rows: TableRowSummary[];
  /** The Inception row's maximum validation accuracy, null when it was not among the rows. */
  inceptionMax: number | null;
  notes: string[];
  wallSeconds: number;
  /** §4.2.3, with --ensemble: the members and their averaged softmax outputs. */
  ensemble?: EnsembleResult;
}

/** The first of `steps` at which `accuracy` reaches `target` (≥), or null. */
export function firstStepReaching(steps: readonly number[], accuracy: readonly number[], target: number): number | null {
  for (let i = 0; i < steps.length; i++) if (accuracy[i] >= target) return steps[i];
  return null;
}

/** The maximum of a curve and the first step where it occurs. */
export function curveMax(steps: readonly number[], accuracy: readonly number[]): { max: number; step: number } {
  let at = -1;
  for (let i = 0; i < accuracy.length; i++) if (at < 0 || accuracy[i] > accuracy[at]) at = i;
  return at < 0 ? { max: NaN, step: NaN } : { max: accuracy[at], step: steps[at] };
}

/** Add each row's maximum and its steps to the Inception row's maximum. */
export function summarizeTable(
  config: TableResult["config"],
  rows: TableRowResult[],
  wallSeconds: number,
): TableResult {
  const inception = rows.find((r) => r.id === "inception");
  const inceptionMax = inception ? curveMax(inception.steps, inception.validationAccuracy).max : null;
  const notes: string[] = [];
  if (inceptionMax === null) {
    notes.push("The Inception row was not among --rows, so stepsToInceptionMax is null for every row: it measures steps to the Inception row's maximum.");
  }
  for (const r of rows) {
    const best = curveMax(r.steps, r.validationAccuracy).max;
    if (best < CHANCE_LEVEL) {
      notes.push(
        `${r.name} stayed at chance level (at most ${pct(best)} of 10 classes): a result, not a failure — the paper's Inception with sigmoid "never left chance accuracy" either.`,
      );
    }
  }
  const summaries = rows.map((r): TableRowSummary => {
    const { max, step } = curveMax(r.steps, r.validationAccuracy);
    return {
      ...r,
      maxAccuracy: max,
      stepOfMax: step,
      stepsToInceptionMax: inceptionMax === null ? null : firstStepReaching(r.steps, r.validationAccuracy, inceptionMax),
      stepsPerSecond: r.trainSeconds > 0 ? r.steps.at(-1)! / r.trainSeconds : null,
    };
  });
  return { config, rows: summaries, inceptionMax, notes, wallSeconds };
}

/** Below this maximum a row counts as never having left chance (10% on ten classes). */
const CHANCE_LEVEL = 0.125;

const pct = (v: number | null) => (v === null || !Number.isFinite(v) ? "—" : `${(100 * v).toFixed(1)}%`);
const int = (v: number) => v.toLocaleString("en-US");

/** 0.0625 as "1/16"; other widths as they are. */
function widthText(w: number): string {
  const inverse = 1 / w;
  return Number.isInteger(inverse) && inverse > 1 ? `1/${inverse}` : String(w);
}

/** table.md: the paper's table (network | steps to Inception's max | max accuracy), then each row's differences and settings. */
export function tableMarkdown(result: TableResult): string {
  const c = result.config;
  const target = result.inceptionMax === null ? "Inception's max" : `Inception's max (${pct(result.inceptionMax)})`;
  const backends = [...new Set(result.rows.map((r) => r.backend || c.backend))].join(", ");
  const lines = [
    `# The Inception table (§4.2.2) in miniature: CIFAR-10`,
    ``,
    `${int(c.steps)} steps per row, batch ${c.batchSize}, width ${widthText(c.width)}, stem stride ${c.stemStride}, random ${c.crop}×${c.crop} crops and flips; ` +
      `validation accuracy on ${c.limits.validation === undefined ? "the 5,000 validation images" : `${int(c.limits.validation)} validation images`} ` +
      `(center crop, inference mode) every ${int(c.evalEvery)} steps; wall time ${Math.round(result.wallSeconds)} s on backend ${backends}.`,
    ``,
    `| Network | Steps to ${target} | Max accuracy | Test accuracy |`,
    `|---|---|---|---|`,
    ...result.rows.map((r) => `| ${r.name} | ${r.stepsToInceptionMax === null ? "—" : int(r.stepsToInceptionMax)} | ${pct(r.maxAccuracy)} | ${pct(r.testAccuracy)} |`),
    ...(result.ensemble ? [`| Ensemble of ${result.ensemble.size} ${result.ensemble.name} | — | ${pct(result.ensemble.validationAccuracy)} (final) | ${pct(result.ensemble.testAccuracy)} |`] : []),
    ``,
  ];
  for (const n of result.notes) lines.push(`Note: ${n}`, ``);
  lines.push(
    `"Steps to ${target}" is the first evaluated step at which the row's validation accuracy reaches the Inception row's maximum (— if never); ` +
      `"Max accuracy" is the row's highest validation accuracy; "Test accuracy" is measured once, after the last step, on ${c.limits.test === undefined ? "the test images" : `${int(c.limits.test)} test images`}.`,
    ``,
  );
  const e = result.ensemble;
  if (e) {
    lines.push(
      `## Ensemble (§4.2.3)`,
      ``,
      `${e.size} ${e.name} networks, seeds ${e.members.map((m) => m.seed).join(", ")} (initial weights, batch order, augmentations and Dropout differ; the settings are the row's), ` +
        `predicting by the arithmetic mean of their softmax outputs. Accuracies of the final networks (not the maximum over training):`,
      ``,
      `| | validation | test |`,
      `|---|---|---|`,
      ...e.members.map((m) => `| ${e.name}, seed ${m.seed} | ${pct(m.validationAccuracy)} | ${pct(m.testAccuracy)} |`),
      `| **ensemble** | **${pct(e.validationAccuracy)}** | **${pct(e.testAccuracy)}** |`,
      ``,
    );
  }
  lines.push(`## What each row changes (from the Inception row)`, ``);
  for (const r of result.rows) lines.push(`- **${r.name}**: ${r.differences.join("; ")}.`);
  lines.push(
    ``,
    `## Settings`,
    ``,
    `| Network | BN | nonlinearity | LRN | Dropout | lr | L2 | lr decay | distortion | shuffling | steps/s |`,
    `|---|---|---|---|---|---|---|---|---|---|---|`,
    ...result.rows.map((r) => {
      const s = r.settings;
      return `| ${r.name} | ${s.bn ? "yes" : "no"} | ${s.activation} | ${s.lrn ? "yes" : "no"} | ${s.dropout || "—"} | ${s.lr} | ${s.weightDecay} | × ${s.lrDecay} every ${int(s.lrDecayEvery)} | ${s.distortion} | ${s.shuffle} | ${r.stepsPerSecond === null ? "—" : r.stepsPerSecond.toFixed(2)} |`;
    }),
    ``,
    `All rows: SGD with momentum ${c.momentum}, L2 weight decay on every parameter, lr = lr0 · decay^⌊step / interval⌋, ${c.init === "he" ? "He-initialized convolutions" : "PyTorch-default initialization"}, seed ${c.seed}.`,
    ``,
  );
  return lines.join("\n");
}
