// Small SIMD helpers shared by the kernels. Only called from code guarded by
// `if (ASC_FEATURE_SIMD)`, so the scalar build never compiles them.

/**
 * acc + x·y on four f32 lanes. A build with `--enable relaxed-simd` makes it
 * one fused multiply-add (GEMM ≈ 36 instead of ≈ 27 GFLOP/s on the
 * development machine); the shipped builds do not enable it, since Node 20
 * runs relaxed SIMD only behind --experimental-wasm-relaxed-simd.
 */
@inline export function madd(x: v128, y: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(x, y, acc);
  return f32x4.add(acc, f32x4.mul(x, y));
}

/** The two floats at p, widened to f64x2 (a 64-bit load, then one conversion; no shuffle). */
@inline export function loadWidened(p: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p));
}

/** Lanes 0 and 1 of four f32 lanes, widened to f64x2. */
@inline export function widenLow(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}

/** Lanes 2 and 3 of four f32 lanes, widened to f64x2. */
@inline export function widenHigh(v: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.shuffle(v, v, 2, 3, 2, 3));
}

/** The sum of the two lanes of an f64x2. */
@inline export function sumLanes64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

/**
 * Transposes the 4×4 block whose rows are r0..r3 and stores its rows (the
 * columns of the input) at dst, dst + stride, dst + 2·stride, dst + 3·stride.
 */
@inline export function storeTransposed4x4(r0: v128, r1: v128, r2: v128, r3: v128, dst: usize, stride: usize): void {
  const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5); // r0[0] r1[0] r0[1] r1[1]
  const t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7); // r0[2] r1[2] r0[3] r1[3]
  const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5));
  v128.store(dst + stride, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}
