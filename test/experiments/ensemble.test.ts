/** §4.2.3's ensemble: the arithmetic mean of the members' softmax outputs, on a case small enough to check by hand. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { averageOutputs, outputAccuracy, summarizeEnsemble } from "../../src/experiments/table/ensemble.js";

describe("table: the ensemble (§4.2.3)", () => {
  // Three classes, four examples with labels 0, 1, 2, 2.
  const labels = Uint8Array.from([0, 1, 2, 2]);
  const a = Float32Array.from([
    0.6, 0.3, 0.1, // right (0)
    0.5, 0.4, 0.1, // wrong: says 0, label 1
    0.2, 0.2, 0.6, // right (2)
    0.4, 0.35, 0.25, // wrong: says 0, label 2
  ]);
  const b = Float32Array.from([
    0.2, 0.7, 0.1, // wrong: says 1, label 0
    0.1, 0.8, 0.1, // right (1)
    0.1, 0.1, 0.8, // right (2)
    0.0, 0.25, 0.75, // right (2)
  ]);

  it("averages class probabilities and takes the argmax (members 2/4 and 3/4, the ensemble 3/4, computed by hand)", () => {
    const mean = averageOutputs([a, b]);
    assert.deepEqual(Array.from(mean.slice(0, 3), (v) => +v.toFixed(6)), [0.4, 0.5, 0.1]);
    // Example 0: mean (0.4, 0.5, 0.1) says 1, label 0: wrong; example 1: (0.3, 0.6, 0.1) → 1 right;
    // example 2: (0.15, 0.15, 0.7) → 2 right; example 3: (0.2, 0.3, 0.5) → 2 right.
    assert.equal(outputAccuracy(a, labels, 3), 0.5);
    assert.equal(outputAccuracy(b, labels, 3), 0.75);
    assert.equal(outputAccuracy(mean, labels, 3), 0.75);
    const r = summarizeEnsemble("bn-x30", "BN-x30", [
      { seed: 0, outputs: { classes: 3, validation: a, test: b } },
      { seed: 1, outputs: { classes: 3, validation: b, test: a } },
    ], { validation: labels, test: labels });
    assert.equal(r.size, 2);
    assert.deepEqual(r.members, [
      { seed: 0, validationAccuracy: 0.5, testAccuracy: 0.75 },
      { seed: 1, validationAccuracy: 0.75, testAccuracy: 0.5 },
    ]);
    assert.equal(r.validationAccuracy, 0.75);
    assert.equal(r.testAccuracy, 0.75);
  });

  it("where members err on different examples the mean corrects the weaker one; ties go to the first class", () => {
    const c = Float32Array.from([0.9, 0.05, 0.05, 0.1, 0.45, 0.45, 0.05, 0.05, 0.9, 0.05, 0.05, 0.9]); // example 1: 0.45 and 0.45 tie, the first (class 1) wins: right
    const d = Float32Array.from([0.4, 0.5, 0.1, 0.05, 0.9, 0.05, 0.3, 0.3, 0.4, 0.1, 0.1, 0.8]);
    assert.equal(outputAccuracy(c, labels, 3), 1);
    assert.equal(outputAccuracy(d, labels, 3), 0.75);
    assert.equal(outputAccuracy(averageOutputs([c, d]), labels, 3), 1);
    // Ties go to the first class, as argmax.
    assert.equal(outputAccuracy([0.5, 0.5, 0], [0], 3), 1);
  });

  it("outputs that do not fit the labels or each other are refused with a message", () => {
    assert.throws(() => outputAccuracy(a, Uint8Array.from([0, 1]), 3), /12 outputs do not make 2 rows of 3 classes/);
    assert.throws(() => averageOutputs([a, a.slice(0, 9)]), /member 1 has 9 outputs, member 0 has 12/);
  });
});
