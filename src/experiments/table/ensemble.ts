/**
 * The ensemble of §4.2.3: "an ensemble of 6 networks" of BN-x30 type whose
 * prediction is "based on the arithmetic average of class probabilities
 * predicted by the constituent networks". Here the members are one row
 * (default BN-x30) trained with seeds seed, seed + 1, …, seed + K − 1 —
 * different initial weights, batch order, augmentations and Dropout — and
 * otherwise the same settings (the paper also varied the members' settings,
 * e.g. larger initial weights or Dropout 5–10%; covshift does not).
 */
import type { RowId } from "./rows.js";
import type { TableRowOutputs } from "./trainer.js";

/** What table.json says about the ensemble. */
export interface EnsembleResult {
  row: RowId;
  name: string;
  size: number;
  members: {
    seed: number;
    /** The member's final network on the validation images (as its outputs say). */
    validationAccuracy: number;
    testAccuracy: number;
  }[];
  /** The averaged softmax outputs' accuracy. */
  validationAccuracy: number;
  testAccuracy: number;
}

/** Accuracy of softmax outputs (count × classes, row-major) against labels: argmax, the first of equal maxima. */
export function outputAccuracy(probabilities: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  const count = labels.length;
  if (probabilities.length !== count * classes) {
    throw new Error(`outputAccuracy: ${probabilities.length} outputs do not make ${count} rows of ${classes} classes`);
  }
  if (count === 0) return NaN;
  let correct = 0;
  for (let r = 0; r < count; r++) {
    let best = 0;
    for (let j = 1; j < classes; j++) if (probabilities[r * classes + j] > probabilities[r * classes + best]) best = j;
    if (best === labels[r]) correct++;
  }
  return correct / count;
}

/** The arithmetic mean of the members' class probabilities, in double precision. */
export function averageOutputs(members: ArrayLike<number>[]): Float64Array {
  if (members.length === 0) throw new Error("averageOutputs: no members");
  const n = members[0].length;
  const out = new Float64Array(n);
  for (const [i, m] of members.entries()) {
    if (m.length !== n) throw new Error(`averageOutputs: member ${i} has ${m.length} outputs, member 0 has ${n}`);
    for (let k = 0; k < n; k++) out[k] += m[k];
  }
  for (let k = 0; k < n; k++) out[k] /= members.length;
  return out;
}

/** The ensemble's and each member's accuracy on the validation and test images. */
export function summarizeEnsemble(
  row: RowId,
  name: string,
  members: { seed: number; outputs: TableRowOutputs }[],
  labels: { validation: ArrayLike<number>; test: ArrayLike<number> },
): EnsembleResult {
  const classes = members[0]?.outputs.classes ?? 0;
  for (const m of members) {
    if (m.outputs.classes !== classes) throw new Error(`ensemble: member seed ${m.seed} has ${m.outputs.classes} classes, the first ${classes}`);
  }
  return {
    row,
    name,
    size: members.length,
    members: members.map((m) => ({
      seed: m.seed,
      validationAccuracy: outputAccuracy(m.outputs.validation, labels.validation, classes),
      testAccuracy: outputAccuracy(m.outputs.test, labels.test, classes),
    })),
    validationAccuracy: outputAccuracy(averageOutputs(members.map((m) => m.outputs.validation)), labels.validation, classes),
    testAccuracy: outputAccuracy(averageOutputs(members.map((m) => m.outputs.test)), labels.test, classes),
  };
}
