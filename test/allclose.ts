/**
 * The suite's one "values are close" assertion, numpy/torch `allclose` style:
 *
 *     |actual − expected| ≤ atol + rtol·|expected|      elementwise
 *
 * with the tolerances stated at every call. Shapes are checked when both
 * sides have one (a Tensor, or `{ shape, data }` such as a fixture); lengths
 * always. NaN is never close to anything unless the call says
 * `equalNan: true` (then NaN matches NaN only). An infinity matches only the
 * same infinity.
 * `atol` may be one number, or one bound per element — an array, or a
 * function of the flat index — for tolerances that come from an error
 * analysis of each element (numpy broadcasts an array `atol` the same way).
 */
import assert from "node:assert/strict";

export interface Tolerance {
  /** absolute tolerance: one number, or one per element (an array, or a function of the flat index) */
  atol: number | ArrayLike<number> | ((i: number) => number);
  /** relative tolerance, against |expected| */
  rtol: number;
  /** NaN in `actual` matches NaN in `expected` at the same index (default false: NaN fails) */
  equalNan?: boolean;
}

type Shaped = { readonly shape: readonly number[]; readonly data: ArrayLike<number> };
export type Values = Shaped | ArrayLike<number> | number;

const isShaped = (v: Values): v is Shaped => typeof v === "object" && v !== null && "shape" in v && "data" in v;

function flat(v: Values): ArrayLike<number> {
  if (typeof v === "number") return [v];
  return isShaped(v) ? v.data : v;
}

/** The largest |v| of a set of values, for a tolerance relative to a tensor's scale (atol = k·maxAbs(expected)). */
export function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

/** "[1, 0, 3]" for flat index i of a row-major shape. */
function multiIndex(i: number, shape: readonly number[]): string {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(i % shape[d]);
    i = Math.floor(i / shape[d]);
  }
  return `[${idx.join(", ")}]`;
}

/**
 * Assert `actual` is close to `expected` elementwise (see the file comment).
 * On failure the message names `what`, the worst element (flat index, and
 * its multi-index when there is a shape), both values, |diff| and the
 * tolerances, and how many elements failed.
 */
export function assertAllClose(actual: Values | null | undefined, expected: Values, tol: Tolerance, what = ""): void {
  const label = what === "" ? "allclose" : what;
  if (actual === null || actual === undefined) assert.fail(`${label}: expected values, got ${actual}`);
  if (isShaped(actual) && isShaped(expected)) {
    assert.deepEqual([...actual.shape], [...expected.shape], `${label}: shapes differ`);
  }
  const a = flat(actual);
  const e = flat(expected);
  assert.equal(a.length, e.length, `${label}: ${a.length} values vs ${e.length} expected`);
  const atol = tol.atol;
  let atolAt: (i: number) => number;
  if (typeof atol === "number") atolAt = () => atol;
  else if (typeof atol === "function") atolAt = atol;
  else {
    assert.equal(atol.length, e.length, `${label}: ${atol.length} atol values for ${e.length} elements`);
    atolAt = (i) => atol[i];
  }
  let worst = -1;
  let worstExcess = 0;
  let failed = 0;
  for (let i = 0; i < e.length; i++) {
    if (a[i] === e[i]) continue; // equal, infinities included
    if (tol.equalNan && Number.isNaN(a[i]) && Number.isNaN(e[i])) continue;
    const allowed = atolAt(i) + tol.rtol * Math.abs(e[i]);
    const err = Math.abs(a[i] - e[i]);
    // An infinity is close only to itself (handled above), as in numpy: rtol·∞ would let anything pass.
    if (err <= allowed && Number.isFinite(a[i]) && Number.isFinite(e[i])) continue;
    failed++;
    const excess = Number.isNaN(err) || allowed === 0 ? Infinity : err / allowed;
    if (worst < 0 || excess > worstExcess) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    const where = isShaped(expected) && expected.shape.length > 1 ? ` ${multiIndex(worst, expected.shape)}` : "";
    const nan = Number.isNaN(a[worst]) || Number.isNaN(e[worst]) ? (tol.equalNan ? " (NaN matches only NaN)" : " (NaN is never close: equalNan is off)") : "";
    assert.fail(
      `${label}: not close at index ${worst}${where} of ${e.length} (${failed} element${failed === 1 ? "" : "s"} fail): ` +
        `actual ${a[worst]}, expected ${e[worst]}, |diff| ${Math.abs(a[worst] - e[worst])} > ` +
        `atol ${atolAt(worst)} + rtol ${tol.rtol}·|expected| = ${atolAt(worst) + tol.rtol * Math.abs(e[worst])}${nan}`,
    );
  }
}
