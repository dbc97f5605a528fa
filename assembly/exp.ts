// e^x on four f32 lanes for x ≤ 0, the range sigmoid needs (it evaluates
// e^(−|x|), which never overflows). Cephes' expf scheme:
//
//   e^x = 2^n · e^r,  n = round(x·log2 e),  r = x − n·ln 2 ∈ [−ln2/2, ln2/2]
//   e^r ≈ 1 + r + r²·P(r), P of degree 5            (≈ 1 ulp on the range)
//
// with n·ln 2 subtracted in two parts (Cody–Waite: ln 2 = C1 + C2, C1 with
// few bits so n·C1 is exact). n is rounded by adding 1.5·2²³ (the float
// adder rounds x·log2 e to an integer held in the low mantissa bits). 2^n is
// built from exponent bits in two halves, 2^(n − n/2)·2^(n/2), so n down to
// −150 (the subnormal results below e^−87.3) needs no special case. Inputs
// below −104 give 0 (e^−104 is under half the smallest f32 subnormal); NaN
// stays NaN.
//
// The constants sit in a table in linear memory and are broadcast from it:
// V8 (as of Node 20) rebuilds a v128 constant with three instructions at
// every use inside a loop, a broadcast load is one.

const LOG2E: f32 = 1.44269504088896341;
const C1: f32 = 0.693359375;
const C2: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;
/** 1.5·2²³: adding it rounds |v| < 2²² to an integer, found in the low mantissa bits. */
const ROUNDER: f32 = 12582912.0;

const TABLE: usize = memory.data<f32>([-104, LOG2E, C1, C2, P0, P1, P2, P3, P4, P5, 1, ROUNDER, -0.0]);

/** The table entry i, on all four lanes. */
@inline export function expConstant(i: i32): v128 {
  return v128.load32_splat(TABLE + (<usize>i << 2));
}

/** Index of 1.0 in the table (its bits, 0x3f800000, are also the exponent bias of 2^0). */
export const EXP_ONE: i32 = 10;
/** Index of −0.0 in the table (the sign bit alone). */
export const EXP_SIGN: i32 = 12;

@inline export function expNonPositive(x: v128): v128 {
  // pmax is a single maxps: max(x, −104), and NaN passes through (NaN < −104 is false).
  x = f32x4.pmax(x, expConstant(0));
  const rounded = f32x4.add(f32x4.mul(x, expConstant(1)), expConstant(11));
  const fn = f32x4.sub(rounded, expConstant(11));
  const n = i32x4.sub(rounded, expConstant(11));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(fn, expConstant(2))), f32x4.mul(fn, expConstant(3)));
  let p = f32x4.add(f32x4.mul(expConstant(4), r), expConstant(5));
  p = f32x4.add(f32x4.mul(p, r), expConstant(6));
  p = f32x4.add(f32x4.mul(p, r), expConstant(7));
  p = f32x4.add(f32x4.mul(p, r), expConstant(8));
  p = f32x4.add(f32x4.mul(p, r), expConstant(9));
  const one = expConstant(EXP_ONE);
  const er = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), one);
  // 2^k as bits: (k << 23) + bits(1.0).
  const n1 = i32x4.shr_s(n, 1);
  const n2 = i32x4.sub(n, n1);
  return f32x4.mul(f32x4.mul(er, i32x4.add(i32x4.shl(n1, 23), one)), i32x4.add(i32x4.shl(n2, 23), one));
}
