/**
 * fn(c[0], …, c[n − 1]) without a spread call, which V8 does not optimize
 * into a direct call of a wasm export (it goes through the generic
 * JS-to-wasm wrapper, and `...` of a typed array allocates an array first).
 * Used for every kernel call: the glue's own and each thread's share.
 */
export function callWith(fn: (...x: number[]) => unknown, c: ArrayLike<number>, n = c.length): unknown {
  switch (n) {
    case 0: return fn();
    case 1: return fn(c[0]);
    case 2: return fn(c[0], c[1]);
    case 3: return fn(c[0], c[1], c[2]);
    case 4: return fn(c[0], c[1], c[2], c[3]);
    case 5: return fn(c[0], c[1], c[2], c[3], c[4]);
    case 6: return fn(c[0], c[1], c[2], c[3], c[4], c[5]);
    case 7: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    case 8: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
    case 9: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]);
    case 10: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]);
    case 11: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]);
    case 12: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11]);
    case 13: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12]);
    case 14: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13]);
    case 15: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14]);
    case 16: return fn(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13], c[14], c[15]);
    default: return fn(...Array.from({ length: n }, (_, i) => c[i]));
  }
}
