/** The suite's one closeness assertion (test/allclose.ts) proves what it says. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { assertAllClose } from "./allclose.js";

const fails = (fn: () => void, message: RegExp) => assert.throws(fn, (err: Error) => (assert.match(err.message, message), true));

describe("assertAllClose: |a − b| ≤ atol + rtol·|b| elementwise", () => {
  it("passes on the bound and fails just past it, naming the worst index, both values, |diff| and the tolerances", () => {
    assertAllClose([1, 2.5, 100], [1, 2, 101], { atol: 0.5, rtol: 0.005 }, "on the bound"); // 0.5 ≤ 0.5 + 0.01; 1 ≤ 0.5 + 0.505
    fails(
      () => assertAllClose([1, 2.6, 100, 7], [1, 2, 102, 7], { atol: 0.5, rtol: 0.01 }, "past it"),
      /^past it: not close at index 2 of 4 \(2 elements fail\): actual 100, expected 102, \|diff\| 2 > atol 0\.5 \+ rtol 0\.01·\|expected\| = 1\.52/,
    );
  });

  it("the tolerance is relative to the expected value (the second argument), as numpy's allclose", () => {
    assertAllClose(110, 100, { atol: 0, rtol: 0.11 });
    fails(() => assertAllClose(100, 110, { atol: 0, rtol: 0.09 }), /not close at index 0/);
  });

  it("NaN is never close unless equalNan; then NaN matches NaN only", () => {
    fails(() => assertAllClose([NaN], [NaN], { atol: 1, rtol: 1 }), /actual NaN, expected NaN.*\(NaN is never close: equalNan is off\)/);
    assertAllClose([NaN, 1], [NaN, 1], { atol: 0, rtol: 0, equalNan: true });
    fails(() => assertAllClose([NaN], [1], { atol: 1e9, rtol: 1, equalNan: true }), /actual NaN, expected 1/);
    fails(() => assertAllClose([1], [NaN], { atol: 1e9, rtol: 1, equalNan: true }), /actual 1, expected NaN/);
  });

  it("equal infinities match; opposite ones and a finite value do not", () => {
    assertAllClose([Infinity, -Infinity], [Infinity, -Infinity], { atol: 0, rtol: 0 });
    fails(() => assertAllClose([Infinity], [-Infinity], { atol: 1, rtol: 1 }), /not close/);
    fails(() => assertAllClose([1e308], [Infinity], { atol: 1, rtol: 1 }), /not close/);
  });

  it("shapes are compared when both sides have one, lengths always; a missing actual fails", () => {
    fails(() => assertAllClose({ shape: [2, 3], data: new Float64Array(6) }, { shape: [3, 2], data: new Float64Array(6) }, { atol: 1, rtol: 0 }, "t"), /^t: shapes differ/);
    fails(() => assertAllClose([1, 2], [1, 2, 3], { atol: 1, rtol: 0 }, "n"), /^n: 2 values vs 3 expected/);
    fails(() => assertAllClose(null, [1], { atol: 1, rtol: 0 }, "gone"), /^gone: expected values, got null/);
  });

  it("with a shape, the failure also names the multi-index", () => {
    fails(() => assertAllClose({ shape: [2, 3], data: [0, 0, 0, 0, 0, 9] }, { shape: [2, 3], data: [0, 0, 0, 0, 0, 0] }, { atol: 1, rtol: 0 }), /index 5 \[1, 2\] of 6/);
  });

  it("atol per element, as an array or a function of the index (an error bound per element)", () => {
    assertAllClose([1.5, 2.1], [1, 2], { atol: [0.5, 0.1 + 1e-12], rtol: 0 });
    fails(() => assertAllClose([1.5, 2.2], [1, 2], { atol: [0.5, 0.1], rtol: 0 }), /index 1 .*atol 0\.1 \+/);
    assertAllClose([1.5, 2.2], [1, 2], { atol: (i) => (i + 1) * 0.5, rtol: 0 });
    fails(() => assertAllClose([1, 2], [1, 2], { atol: [1], rtol: 0 }, "a"), /^a: 1 atol values for 2 elements/);
  });
});
