// GEMM on float32: C = alpha·op(A)·op(B) + beta·C, row-major, as in
// src/backend/backend.ts. Blocked as in GotoBLAS/BLIS:
//
//   for each block of NC columns of C (jc)
//     for each block of KC steps of the sum (pc)
//       pack the KC×NC block of op(B) into column panels NR wide
//       for each block of MC rows of C (ic)
//         pack the MC×KC block of op(A) into row panels MR tall
//         for each panel pair: the microkernel computes an MR×NR tile of C
//
// Packing handles all four transpose cases (only the packers read A and B
// directly) and zero-pads the last panels, so the microkernel always runs a
// full MR×NR tile; a tile that sticks out of C is computed into a scratch
// tile and the part inside C is copied out.
//
// Packed layouts (float32):
//   packed A panel: kc×MR, element (i, k) at k·MR + i
//   packed B panel: kc×NR, element (k, j) at k·NR + j
//
// The SIMD microkernel is 4×8: eight f32x4 accumulators, two vectors of B
// and one broadcast element of A per step. That leaves room in the 15
// vector registers V8 allocates on x64 for its temporaries; larger tiles
// (6×8, 4×12, 4×16) spill and run slower there.

import { madd, storeTransposed4x4 } from "./simd";

/** Rows of C per microkernel tile. */
export const MR: i32 = 4;
/** Columns of C per microkernel tile: two f32x4 with SIMD, four scalars without. */
export const NR: i32 = ASC_FEATURE_SIMD ? 8 : 4;
/** Most steps of the sum per packed block: a kc×NR panel of B (12 KiB) and a kc×MR panel of A stay in L1. */
const KC_MAX: i32 = 384;
/** Most rows of C per packed block of A (MC_MAX·KC_MAX floats = 192 KiB, in L2). */
const MC_MAX: i32 = 128;
/** Most columns of C per packed block of B (KC_MAX·NC_MAX floats = 1.5 MiB, in L2). */
const NC_MAX: i32 = 1024;

/** n rounded up to a multiple of m. */
@inline export function roundUp(n: i32, m: i32): i32 {
  return ((n + m - 1) / m) * m;
}

/** bytes rounded up to a multiple of 64 (a cache line). */
@inline export function align64(bytes: usize): usize {
  return (bytes + 63) & ~(<usize>63);
}

/**
 * The depth of the packed blocks: K split into equal blocks of at most
 * KC_MAX (784 → 3 blocks of 262, not 384 + 384 + 16).
 */
function blockDepth(K: i32): i32 {
  const blocks = (K + KC_MAX - 1) / KC_MAX;
  return (K + blocks - 1) / blocks;
}

/** Bytes of workspace `gemm` needs for these sizes: a packed block of B, of A, and one edge tile. */
export function gemmWorkspaceBytes(M: i32, N: i32, K: i32): usize {
  const kc = blockDepth(max(K, 1));
  const mc = min(roundUp(max(M, 1), MR), MC_MAX);
  const nc = min(roundUp(max(N, 1), NR), NC_MAX);
  return align64(<usize>(kc * nc) << 2) + align64(<usize>(mc * kc) << 2) + align64(<usize>(2 * MR * NR) << 2); // the edge tile: up to 8 rows (microKernel8x4)
}

/**
 * C = alpha·op(A)·op(B) + beta·C with op(A) M×K, op(B) K×N, C M×N, all
 * row-major float32 at byte offsets a, b, c. beta = 0 overwrites C without
 * reading it. `work` points to gemmWorkspaceBytes(M, N, K) bytes.
 */
export function gemm(
  transA: bool,
  transB: bool,
  M: i32,
  N: i32,
  K: i32,
  alpha: f64,
  a: usize,
  b: usize,
  beta: f64,
  c: usize,
  work: usize,
): void {
  gemmBlock(transA, transB, M, N, K, alpha, a, b, beta, c, work, 0, M, 0, N);
}

/**
 * The rows [m0, m1) and columns [n0, n1) of gemm's C, and nothing else: the
 * share of one thread when several compute one product. With m0 a multiple
 * of 4 and n0 of 8 the tiles, the blocking of the sum and hence every bit of
 * the result are those of the whole product computed at once. `work` points
 * to gemmWorkspaceBytes(M, N, K) bytes of this caller's own.
 */
export function gemmBlock(
  transA: bool,
  transB: bool,
  M: i32,
  N: i32,
  K: i32,
  alpha: f64,
  a: usize,
  b: usize,
  beta: f64,
  c: usize,
  work: usize,
  m0: i32,
  m1: i32,
  n0: i32,
  n1: i32,
): void {
  if (m0 >= m1 || n0 >= n1) return;
  const ldc = <usize>N << 2;
  if (K <= 0 || alpha == 0) {
    for (let i = m0; i < m1; i++) scaleC(c + <usize>i * ldc + (<usize>n0 << 2), n1 - n0, beta);
    return;
  }
  const kcMax = blockDepth(K);
  const ncMax = min(roundUp(N, NR), NC_MAX);
  const mcMax = min(roundUp(M, MR), MC_MAX);
  const packedB = work;
  const packedA = packedB + align64(<usize>(kcMax * ncMax) << 2);
  const tile = packedA + align64(<usize>(mcMax * kcMax) << 2);

  for (let jc = n0; jc < n1; jc += NC_MAX) {
    const nc = min(NC_MAX, n1 - jc);
    for (let pc = 0; pc < K; pc += kcMax) {
      const kc = min(kcMax, K - pc);
      // beta applies once, with the first block of the sum; later blocks accumulate.
      const betaHere = pc == 0 ? beta : 1.0;
      packB(transB, b, N, K, pc, kc, jc, nc, packedB);
      for (let ic = m0; ic < m1; ic += MC_MAX) {
        const mc = min(MC_MAX, m1 - ic);
        packA(transA, a, M, K, ic, mc, pc, kc, packedA);
        macroKernel(mc, nc, kc, packedA, packedB, c + <usize>ic * ldc + (<usize>jc << 2), ldc, alpha, betaHere, tile);
      }
    }
  }
}

/** C = beta·C over n elements; beta = 0 writes zeros (NaN in C is ignored). */
function scaleC(c: usize, n: i32, beta: f64): void {
  if (beta == 0) {
    memory.fill(c, 0, <usize>n << 2);
    return;
  }
  if (beta == 1) return;
  const b = <f32>beta;
  for (let i = 0; i < n; i++) {
    const p = c + (<usize>i << 2);
    store<f32>(p, load<f32>(p) * b);
  }
}

/** All MR×NR tiles of an mc×nc block of C from packed A (mc×kc) and packed B (kc×nc). */
function macroKernel(
  mc: i32,
  nc: i32,
  kc: i32,
  packedA: usize,
  packedB: usize,
  c: usize,
  ldc: usize,
  alpha: f64,
  beta: f64,
  tile: usize,
): void {
  const overwrite = beta == 0;
  const alpha32 = <f32>alpha;
  const beta32 = <f32>beta;
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const pb = packedB + (<usize>(jr * kc) << 2);
    for (let ir = 0; ir < mc; ir += MR) {
      const mr = min(MR, mc - ir);
      const pa = packedA + (<usize>(ir * kc) << 2);
      const pc = c + <usize>ir * ldc + (<usize>jr << 2);
      if (ASC_FEATURE_SIMD && nr <= 4 && ir + MR < mc) {
        // A last strip of ≤ 4 columns: two panels of rows at once (see microKernel8x4).
        microKernel8x4(kc, pa, pb, <usize>NR << 2, tile, <usize>NR << 2);
        storeEdgeTile(tile, pc, ldc, MR, nr, alpha32, beta32, overwrite);
        storeEdgeTile(tile + (<usize>(MR * NR) << 2), pc + <usize>MR * ldc, ldc, min(MR, mc - ir - MR), nr, alpha32, beta32, overwrite);
        ir += MR;
        continue;
      }
      if (mr == MR && nr == NR) {
        microKernel(kc, pa, pb, <usize>NR << 2, pc, ldc, alpha32, beta32, overwrite);
      } else {
        microKernel(kc, pa, pb, <usize>NR << 2, tile, <usize>NR << 2, 1, 0, true);
        storeEdgeTile(tile, pc, ldc, mr, nr, alpha32, beta32, overwrite);
      }
    }
  }
}

/** The mr×nr corner of an edge tile into C: C = alpha·T + beta·C (beta·C skipped when overwriting). */
function storeEdgeTile(tile: usize, c: usize, ldc: usize, mr: i32, nr: i32, alpha: f32, beta: f32, overwrite: bool): void {
  for (let i = 0; i < mr; i++) {
    const t = tile + (<usize>(i * NR) << 2);
    const row = c + <usize>i * ldc;
    for (let j = 0; j < nr; j++) {
      const p = row + (<usize>j << 2);
      const v = alpha * load<f32>(t + (<usize>j << 2));
      store<f32>(p, overwrite ? v : v + beta * load<f32>(p));
    }
  }
}

/**
 * One MR×NR tile: C[0..MR, 0..NR] = alpha·Σ_k A[:, k]·B[k, :] + beta·C, with
 * A a packed panel of depth kc and B's rows of NR at a stride of ldb bytes
 * (NR·4 for a packed panel; the convolutions read their matrices in place).
 */
@inline export function microKernel(kc: i32, a: usize, b: usize, ldb: usize, c: usize, ldc: usize, alpha: f32, beta: f32, overwrite: bool): void {
  if (ASC_FEATURE_SIMD) {
    // Scalar math: c[r][j] += a[k·4 + r]·b[k·8 + j]; accumulator cRV holds row r, columns 4V..4V+3.
    let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
    let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
    let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
    let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
    for (let k = 0; k < kc; k++) {
      const b0 = v128.load(b);
      const b1 = v128.load(b, 16);
      let x = v128.load32_splat(a);
      c00 = madd(x, b0, c00);
      c01 = madd(x, b1, c01);
      x = v128.load32_splat(a, 4);
      c10 = madd(x, b0, c10);
      c11 = madd(x, b1, c11);
      x = v128.load32_splat(a, 8);
      c20 = madd(x, b0, c20);
      c21 = madd(x, b1, c21);
      x = v128.load32_splat(a, 12);
      c30 = madd(x, b0, c30);
      c31 = madd(x, b1, c31);
      a += 16;
      b += ldb;
    }
    storeRow8(c, c00, c01, alpha, beta, overwrite);
    storeRow8(c + ldc, c10, c11, alpha, beta, overwrite);
    storeRow8(c + 2 * ldc, c20, c21, alpha, beta, overwrite);
    storeRow8(c + 3 * ldc, c30, c31, alpha, beta, overwrite);
  } else {
    // 4×4 scalar tile: sixteen accumulators.
    let c00: f32 = 0, c01: f32 = 0, c02: f32 = 0, c03: f32 = 0;
    let c10: f32 = 0, c11: f32 = 0, c12: f32 = 0, c13: f32 = 0;
    let c20: f32 = 0, c21: f32 = 0, c22: f32 = 0, c23: f32 = 0;
    let c30: f32 = 0, c31: f32 = 0, c32: f32 = 0, c33: f32 = 0;
    for (let k = 0; k < kc; k++) {
      const b0 = load<f32>(b), b1 = load<f32>(b, 4), b2 = load<f32>(b, 8), b3 = load<f32>(b, 12);
      let x = load<f32>(a);
      c00 += x * b0; c01 += x * b1; c02 += x * b2; c03 += x * b3;
      x = load<f32>(a, 4);
      c10 += x * b0; c11 += x * b1; c12 += x * b2; c13 += x * b3;
      x = load<f32>(a, 8);
      c20 += x * b0; c21 += x * b1; c22 += x * b2; c23 += x * b3;
      x = load<f32>(a, 12);
      c30 += x * b0; c31 += x * b1; c32 += x * b2; c33 += x * b3;
      a += 16;
      b += ldb;
    }
    storeRow4(c, c00, c01, c02, c03, alpha, beta, overwrite);
    storeRow4(c + ldc, c10, c11, c12, c13, alpha, beta, overwrite);
    storeRow4(c + 2 * ldc, c20, c21, c22, c23, alpha, beta, overwrite);
    storeRow4(c + 3 * ldc, c30, c31, c32, c33, alpha, beta, overwrite);
  }
}

/**
 * The 8×4 tile for a last strip of at most four columns: rows 0–3 from the
 * packed panel at a, rows 4–7 from the next one (kc·MR floats on), times the
 * first four columns of B's rows (ldb bytes apart), into t (8 rows of NR,
 * overwritten). The 4×8 kernel would spend half its products on the strip's
 * empty columns; this one fills all eight accumulators with real ones. Each
 * element is summed over k in the same order as there: the same bits.
 * Not inlined: inlined into its callers it made them slower (their main
 * loops compiled worse: GEMM 60×100×784 174 → 188 µs; as a call, 171 µs).
 */
export function microKernel8x4(kc: i32, a: usize, b: usize, ldb: usize, t: usize, ldt: usize): void {
  const a1 = a + (<usize>(kc * MR) << 2);
  let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
  let c4 = f32x4.splat(0), c5 = f32x4.splat(0), c6 = f32x4.splat(0), c7 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const bk = v128.load(b);
    const o = <usize>k << 4;
    c0 = madd(v128.load32_splat(a + o), bk, c0);
    c1 = madd(v128.load32_splat(a + o, 4), bk, c1);
    c2 = madd(v128.load32_splat(a + o, 8), bk, c2);
    c3 = madd(v128.load32_splat(a + o, 12), bk, c3);
    c4 = madd(v128.load32_splat(a1 + o), bk, c4);
    c5 = madd(v128.load32_splat(a1 + o, 4), bk, c5);
    c6 = madd(v128.load32_splat(a1 + o, 8), bk, c6);
    c7 = madd(v128.load32_splat(a1 + o, 12), bk, c7);
    b += ldb;
  }
  v128.store(t, c0);
  v128.store(t + ldt, c1);
  v128.store(t + 2 * ldt, c2);
  v128.store(t + 3 * ldt, c3);
  v128.store(t + 4 * ldt, c4);
  v128.store(t + 5 * ldt, c5);
  v128.store(t + 6 * ldt, c6);
  v128.store(t + 7 * ldt, c7);
}

/** Eight floats of C at p: alpha·(lo, hi) + beta·C, or alpha·(lo, hi) when overwriting. */
@inline function storeRow8(p: usize, lo: v128, hi: v128, alpha: f32, beta: f32, overwrite: bool): void {
  if (alpha != 1) {
    const va = f32x4.splat(alpha);
    lo = f32x4.mul(lo, va);
    hi = f32x4.mul(hi, va);
  }
  if (!overwrite) {
    const vb = f32x4.splat(beta);
    lo = madd(vb, v128.load(p), lo);
    hi = madd(vb, v128.load(p, 16), hi);
  }
  v128.store(p, lo);
  v128.store(p, hi, 16);
}

@inline function storeRow4(p: usize, v0: f32, v1: f32, v2: f32, v3: f32, alpha: f32, beta: f32, overwrite: bool): void {
  v0 *= alpha;
  v1 *= alpha;
  v2 *= alpha;
  v3 *= alpha;
  if (!overwrite) {
    v0 += beta * load<f32>(p);
    v1 += beta * load<f32>(p, 4);
    v2 += beta * load<f32>(p, 8);
    v3 += beta * load<f32>(p, 12);
  }
  store<f32>(p, v0);
  store<f32>(p, v1, 4);
  store<f32>(p, v2, 8);
  store<f32>(p, v3, 12);
}

/**
 * Packs op(B)[pc..pc+kc, jc..jc+nc] into ceil(nc/NR) panels of kc×NR,
 * zero-padding the columns past nc. op(B)(k, j) = transB ? b[j·K + k] : b[k·N + j].
 */
function packB(transB: bool, b: usize, N: i32, K: i32, pc: i32, kc: i32, jc: i32, nc: i32, dst: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const nr = min(NR, nc - jr);
    const j0 = jc + jr;
    const panel = dst + (<usize>(jr * kc) << 2);
    if (!transB) {
      // Each row of the panel is NR contiguous floats of a row of B.
      const ldb = <usize>N << 2;
      let src = b + ((<usize>pc * <usize>N + <usize>j0) << 2);
      let d = panel;
      if (nr == NR) {
        for (let k = 0; k < kc; k++) {
          if (ASC_FEATURE_SIMD) {
            v128.store(d, v128.load(src));
            v128.store(d, v128.load(src, 16), 16);
          } else {
            store<f32>(d, load<f32>(src));
            store<f32>(d, load<f32>(src, 4), 4);
            store<f32>(d, load<f32>(src, 8), 8);
            store<f32>(d, load<f32>(src, 12), 12);
          }
          src += ldb;
          d += <usize>NR << 2;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let j = 0; j < NR; j++) {
            store<f32>(d + (<usize>j << 2), j < nr ? load<f32>(src + (<usize>j << 2)) : 0);
          }
          src += ldb;
          d += <usize>NR << 2;
        }
      }
    } else {
      // Column j of the panel is a contiguous run of row j0 + j of B.
      const ldb = <usize>K << 2;
      const src = b + ((<usize>j0 * <usize>K + <usize>pc) << 2);
      let k = 0;
      if (ASC_FEATURE_SIMD) {
        // 4×4 blocks of B (rows j, columns k) become 4×4 blocks of the panel (rows k, columns j).
        const stride = <usize>NR << 2;
        for (; nr == NR && k + 4 <= kc; k += 4) {
          const s = src + (<usize>k << 2);
          const d = panel + <usize>k * stride;
          storeTransposed4x4(v128.load(s), v128.load(s + ldb), v128.load(s + 2 * ldb), v128.load(s + 3 * ldb), d, stride);
          const s4 = s + 4 * ldb;
          storeTransposed4x4(v128.load(s4), v128.load(s4 + ldb), v128.load(s4 + 2 * ldb), v128.load(s4 + 3 * ldb), d + 16, stride);
        }
      }
      for (; k < kc; k++) {
        const d = panel + (<usize>(k * NR) << 2);
        for (let j = 0; j < NR; j++) {
          store<f32>(d + (<usize>j << 2), j < nr ? load<f32>(src + <usize>j * ldb + (<usize>k << 2)) : 0);
        }
      }
    }
  }
}

/**
 * Packs op(A)[ic..ic+mc, pc..pc+kc] into ceil(mc/MR) panels of kc×MR,
 * zero-padding the rows past mc. op(A)(i, k) = transA ? a[k·M + i] : a[i·K + k].
 */
export function packA(transA: bool, a: usize, M: i32, K: i32, ic: i32, mc: i32, pc: i32, kc: i32, dst: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const mr = min(MR, mc - ir);
    const i0 = ic + ir;
    const panel = dst + (<usize>(ir * kc) << 2);
    if (transA) {
      // The MR values of one k are contiguous in A.
      const lda = <usize>M << 2;
      let src = a + ((<usize>pc * <usize>M + <usize>i0) << 2);
      let d = panel;
      if (mr == MR) {
        for (let k = 0; k < kc; k++) {
          if (ASC_FEATURE_SIMD) {
            v128.store(d, v128.load(src));
          } else {
            store<f32>(d, load<f32>(src));
            store<f32>(d, load<f32>(src, 4), 4);
            store<f32>(d, load<f32>(src, 8), 8);
            store<f32>(d, load<f32>(src, 12), 12);
          }
          src += lda;
          d += <usize>MR << 2;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let i = 0; i < MR; i++) {
            store<f32>(d + (<usize>i << 2), i < mr ? load<f32>(src + (<usize>i << 2)) : 0);
          }
          src += lda;
          d += <usize>MR << 2;
        }
      }
    } else {
      // Row i of the panel is a contiguous run of row i0 + i of A.
      const lda = <usize>K << 2;
      const src = a + ((<usize>i0 * <usize>K + <usize>pc) << 2);
      let k = 0;
      if (ASC_FEATURE_SIMD) {
        for (; mr == MR && k + 4 <= kc; k += 4) {
          const s = src + (<usize>k << 2);
          storeTransposed4x4(v128.load(s), v128.load(s + lda), v128.load(s + 2 * lda), v128.load(s + 3 * lda), panel + (<usize>(k * MR) << 2), <usize>MR << 2);
        }
      }
      for (; k < kc; k++) {
        const d = panel + (<usize>(k * MR) << 2);
        for (let i = 0; i < MR; i++) {
          store<f32>(d + (<usize>i << 2), i < mr ? load<f32>(src + <usize>i * lda + (<usize>k << 2)) : 0);
        }
      }
    }
  }
}
