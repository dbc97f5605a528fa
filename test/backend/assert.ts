/** Bit-for-bit equality for the cross-backend tests (closeness: ../allclose.ts). */
import assert from "node:assert/strict";

/** Bit-for-bit equality, telling +0 from −0. */
export function assertSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}: element ${i} is ${actual[i]}, expected exactly ${expected[i]}`);
  }
}
