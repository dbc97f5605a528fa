/** Element-wise assertions shared by the cross-backend tests. */
import assert from "node:assert/strict";

/** |actual[i] − expected[i]| ≤ tol(i) for every i, or a message naming the first element that fails. */
export function assertWithin(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: (i: number) => number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const t = tol(i);
    if (!(Math.abs(a - e) <= t)) {
      assert.fail(`${what}: element ${i} is ${a}, expected ${e} ± ${t.toExponential(2)} (off by ${Math.abs(a - e).toExponential(2)})`);
    }
  }
}

/** Bit-for-bit equality, telling +0 from −0. */
export function assertSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}: element ${i} is ${actual[i]}, expected exactly ${expected[i]}`);
  }
}
