// Winograd F(2×2, 3×3) convolution (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016) on float32, for 3×3 windows with
// stride 1: each 2×2 block of outputs ("tile") of one output channel is
//
//   Y = Aᵀ [ Σ_c (G g_oc Gᵀ) ⊙ (Bᵀ d_c B) ] A
//
// where d_c is the 4×4 patch of input channel c under the tile and g_oc the
// 3×3 kernel, with
//
//   Bᵀ = | 1  0 −1  0 |     G = | 1   0   0 |     Aᵀ = | 1  1  1  0 |
//        | 0  1  1  0 |         | ½   ½   ½ |          | 0  1 −1 −1 |
//        | 0 −1  1  0 |         | ½  −½   ½ |
//        | 0  1  0 −1 |         | 0   0   1 |
//
// 16 multiply-adds per input channel give four outputs, where im2col + GEMM
// spends 36: the sum over c becomes 16 independent products, one per
// position ξ of the 4×4 transformed tile, M[ξ] = U[ξ]·V[ξ] with
// U[ξ] (O, C) the transformed weights and V[ξ] (C, tiles) the transformed
// patches of one image. Per image (a thread's share is a range of images):
//
//   1. the image into a zero-padded copy (the border stays zero; see geometry),
//   2. V = the input transform of every tile and channel,
//   3. the 16 products M[ξ] = U[ξ]·V[ξ] (a 4×8 register tile, as gemm.ts),
//   4. the output transform of every tile and output channel into y (+ bias).
//
// The same kernel computes ∂ℓ/∂x of a 3×3 stride-1 convolution: that is the
// convolution of ∂ℓ/∂y with the kernel flipped in both axes and its channel
// axes swapped, padding 2 − p (the glue passes that window; `flip` reads the
// weight that way).

// The rows copied here are 4–16 floats: copyRun's vector loop, not a memory.copy per row (a call out of V8's compiled code).
import { copyRun } from "./conv";
import { align64, roundUp } from "./gemm";
import { madd } from "./simd";
import { Window } from "./window";

@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

/**
 * The tiling of an OH×OW output: TH rows of tiles, each TWp tiles long
 * (⌈OW/2⌉ rounded up to 4, so that four neighbours of a row share vector
 * lanes; tiles past the right edge are computed on zeros and dropped), T =
 * TH·TWp tiles numbered row by row, their products Tp = T rounded up to 8
 * columns wide, Op = O rounded up to 4 rows; the transforms' rows are ld
 * columns apart (Tp, or a multiple of it for several images side by side). The padded image is PH×PW with
 * the input at (ph, pw): every tile's 4×4 patch, and the vector loads past
 * the last one, lie inside.
 */
@unmanaged class Tiling {
  TH: i32;
  TWp: i32;
  Tp: i32;
  PH: i32;
  PW: i32;
  Op: i32;
  ld: i32;
}

@inline function tileRows(OH: i32): i32 {
  return (OH + 1) >> 1;
}

@inline function tileRowLength(OW: i32): i32 {
  return roundUp((OW + 1) >> 1, 4);
}

/** Bytes of the tiling, U (16, Op, C), the padded image (C, PH, PW), V (16, C, Tp) and M (16, Op, Tp). */
function layoutBytes(C: i32, O: i32, OH: i32, OW: i32): usize {
  const TH = tileRows(OH), TWp = tileRowLength(OW);
  const Tp = roundUp(TH * TWp, 8), Op = roundUp(O, 4);
  const PH = 2 * TH + 2, PW = 2 * TWp + 8;
  return align64(offsetof<Tiling>()) + align64(<usize>(16 * Op * C) << 2) + align64(<usize>(C * PH * PW) << 2)
    + align64(<usize>(16 * C * Tp) << 2) + align64(<usize>(16 * Op * Tp) << 2);
}

/** Bytes of workspace conv2dWinograd needs for C input and O output channels over the window at g. */
export function winogradWorkspaceBytes(C: i32, O: i32, g: usize): usize {
  const w = changetype<Window>(g);
  return layoutBytes(C, O, w.OH, w.OW);
}

/**
 * y (N, O, OH, OW) = the convolution of x (N, C, H, W) with a 3×3 kernel,
 * stride 1, padding (ph, pw) ≤ 2, plus bias (O) unless 0, for the images
 * n0 ≤ n < n1. The kernel of output o and input c is weight[o, c] (O, C, 3, 3),
 * or with flip ≠ 0 weight[c, o] (C, O, 3, 3) rotated by 180°. `work` holds
 * winogradWorkspaceBytes(C, O, g) bytes of this caller's own.
 */
export function conv2dWinograd(
  x: usize,
  weight: usize,
  bias: usize,
  y: usize,
  N: i32,
  C: i32,
  O: i32,
  g: usize,
  flip: i32,
  work: usize,
  n0: i32,
  n1: i32,
): void {
  const w = changetype<Window>(g);
  const H = w.H, W = w.W, OH = w.OH, OW = w.OW;
  const t = changetype<Tiling>(work);
  t.TH = tileRows(OH);
  t.TWp = tileRowLength(OW);
  t.Tp = roundUp(t.TH * t.TWp, 8);
  t.PH = 2 * t.TH + 2;
  t.PW = 2 * t.TWp + 8; // 2·TWp + 2 columns under the tiles, and the third vector of the last four tiles' loads
  t.Op = roundUp(O, 4);
  t.ld = t.Tp;
  const U = work + align64(offsetof<Tiling>());
  const padded = U + align64(<usize>(16 * t.Op * C) << 2);
  const V = padded + align64(<usize>(C * t.PH * t.PW) << 2);
  const M = V + align64(<usize>(16 * C * t.Tp) << 2);
  transformWeights(weight, C, O, t.Op, flip != 0, U);
  // The border of the padded image stays zero; each image overwrites the middle.
  memory.fill(padded, 0, <usize>(C * t.PH * t.PW) << 2);
  // So do V's columns past the last tile (Tp − T of them), which the products read.
  memory.fill(V, 0, <usize>(16 * C * t.Tp) << 2);
  for (let n = max(n0, 0); n < min(n1, N); n++) {
    const xn = x + ((<usize>n * <usize>(C * H * W)) << 2);
    const yn = y + ((<usize>n * <usize>(O * OH * OW)) << 2);
    for (let c = 0; c < C; c++) {
      for (let ih = 0; ih < H; ih++) {
        copyRun(at(xn, (c * H + ih) * W), at(padded, (c * t.PH + w.ph + ih) * t.PW + w.pw), W);
      }
    }
    transformInput(padded, C, t, V);
    products(U, V, C, t, M);
    transformOutput(M, bias, O, OH, OW, t, yn);
  }
}

/**
 * U[ξ] (Op, C) = G g Gᵀ for every (o, c), computed in f64 and rounded once,
 * packed for the products: element (o, c) of U[ξ] at ((ξ·Op/4 + o/4)·C + c)·4 + o%4;
 * rows o ≥ O are zero.
 */
function transformWeights(weight: usize, C: i32, O: i32, Op: i32, flip: bool, U: usize): void {
  const panels = Op >> 2;
  for (let o = 0; o < Op; o++) {
    for (let c = 0; c < C; c++) {
      const dst = U + ((<usize>((o >> 2) * C + c) * 4 + <usize>(o & 3)) << 2);
      const stride = <usize>(panels * C * 4) << 2; // from one ξ to the next
      if (o >= O) {
        for (let xi = 0; xi < 16; xi++) store<f32>(dst + <usize>xi * stride, 0);
        continue;
      }
      // g[i][j]: weight[o, c, i, j], or weight[c, o, 2 − i, 2 − j] when flipped.
      const base = flip ? weight + (<usize>((c * O + o) * 9) << 2) : weight + (<usize>((o * C + c) * 9) << 2);
      let g0: f64, g1: f64, g2: f64, g3: f64, g4: f64, g5: f64, g6: f64, g7: f64, g8: f64;
      if (flip) {
        g0 = load<f32>(base, 32); g1 = load<f32>(base, 28); g2 = load<f32>(base, 24);
        g3 = load<f32>(base, 20); g4 = load<f32>(base, 16); g5 = load<f32>(base, 12);
        g6 = load<f32>(base, 8); g7 = load<f32>(base, 4); g8 = load<f32>(base, 0);
      } else {
        g0 = load<f32>(base, 0); g1 = load<f32>(base, 4); g2 = load<f32>(base, 8);
        g3 = load<f32>(base, 12); g4 = load<f32>(base, 16); g5 = load<f32>(base, 20);
        g6 = load<f32>(base, 24); g7 = load<f32>(base, 28); g8 = load<f32>(base, 32);
      }
      // Gg (4×3): rows g_0, (g_0 + g_1 + g_2)/2, (g_0 − g_1 + g_2)/2, g_2 of g's rows.
      const r00 = g0, r01 = g1, r02 = g2;
      const r10 = 0.5 * (g0 + g3 + g6), r11 = 0.5 * (g1 + g4 + g7), r12 = 0.5 * (g2 + g5 + g8);
      const r20 = 0.5 * (g0 - g3 + g6), r21 = 0.5 * (g1 - g4 + g7), r22 = 0.5 * (g2 - g5 + g8);
      const r30 = g6, r31 = g7, r32 = g8;
      // (Gg)Gᵀ: the same combination of each row's three columns.
      storeRow(dst, stride, 0, r00, r01, r02);
      storeRow(dst, stride, 1, r10, r11, r12);
      storeRow(dst, stride, 2, r20, r21, r22);
      storeRow(dst, stride, 3, r30, r31, r32);
    }
  }
}

/** Row i of G g Gᵀ from row i of Gg, (a, b, c) → (a, (a + b + c)/2, (a − b + c)/2, c), at ξ = 4i … 4i + 3. */
@inline function storeRow(dst: usize, stride: usize, i: i32, a: f64, b: f64, c: f64): void {
  const p = dst + <usize>(4 * i) * stride;
  store<f32>(p, <f32>a);
  store<f32>(p + stride, <f32>(0.5 * (a + b + c)));
  store<f32>(p + 2 * stride, <f32>(0.5 * (a - b + c)));
  store<f32>(p + 3 * stride, <f32>c);
}

/**
 * V[ξ] (C, Tp), element (c, tile) at (ξ·C + c)·ld + tile: Bᵀ d B of the 4×4
 * patch d at rows 2·th …, columns 2·tw … of padded channel c.
 */
function transformInput(padded: usize, C: i32, t: Tiling, V: usize): void {
  const PW = t.PW;
  const plane = <usize>(C * t.ld) << 2; // from one ξ to the next
  for (let c = 0; c < C; c++) {
    for (let th = 0; th < t.TH; th++) {
      const row0 = at(padded, (c * t.PH + 2 * th) * PW);
      const rowBytes = <usize>PW << 2;
      const dst = at(V, c * t.ld + th * t.TWp);
      if (ASC_FEATURE_SIMD) {
        for (let tw = 0; tw < t.TWp; tw += 4) {
          // Columns 2tw … 2tw + 11 of the four rows: three vectors each (p, q, r).
          const s = row0 + (<usize>(2 * tw) << 2);
          const p0 = v128.load(s), q0 = v128.load(s, 16), x0 = v128.load(s, 32);
          const p1 = v128.load(s + rowBytes), q1 = v128.load(s + rowBytes, 16), x1 = v128.load(s + rowBytes, 32);
          const p2 = v128.load(s + 2 * rowBytes), q2 = v128.load(s + 2 * rowBytes, 16), x2 = v128.load(s + 2 * rowBytes, 32);
          const p3 = v128.load(s + 3 * rowBytes), q3 = v128.load(s + 3 * rowBytes, 16), x3 = v128.load(s + 3 * rowBytes, 32);
          const d = dst + (<usize>tw << 2);
          // Rows of Bᵀd: d0 − d2, d1 + d2, d2 − d1, d1 − d3; then the same over columns, four tiles per vector.
          columns(f32x4.sub(p0, p2), f32x4.sub(q0, q2), f32x4.sub(x0, x2), d, plane);
          columns(f32x4.add(p1, p2), f32x4.add(q1, q2), f32x4.add(x1, x2), d + 4 * plane, plane);
          columns(f32x4.sub(p2, p1), f32x4.sub(q2, q1), f32x4.sub(x2, x1), d + 8 * plane, plane);
          columns(f32x4.sub(p1, p3), f32x4.sub(q1, q3), f32x4.sub(x1, x3), d + 12 * plane, plane);
        }
      } else {
        for (let tw = 0; tw < t.TWp; tw++) {
          const s = row0 + (<usize>(2 * tw) << 2);
          const d = dst + (<usize>tw << 2);
          for (let j = 0; j < 4; j++) {
            const e0 = load<f32>(s + (<usize>j << 2)), e1 = load<f32>(s + rowBytes + (<usize>j << 2));
            const e2 = load<f32>(s + 2 * rowBytes + (<usize>j << 2)), e3 = load<f32>(s + 3 * rowBytes + (<usize>j << 2));
            // Column j of Bᵀd, kept in the edge of V's ξ = j slots until all four columns are known.
            store<f32>(d + <usize>j * plane, e0 - e2);
            store<f32>(d + <usize>(4 + j) * plane, e1 + e2);
            store<f32>(d + <usize>(8 + j) * plane, e2 - e1);
            store<f32>(d + <usize>(12 + j) * plane, e1 - e3);
          }
          for (let i = 0; i < 4; i++) {
            const r = d + <usize>(4 * i) * plane;
            const a = load<f32>(r), b = load<f32>(r + plane), cc = load<f32>(r + 2 * plane), dd = load<f32>(r + 3 * plane);
            store<f32>(r, a - cc);
            store<f32>(r + plane, b + cc);
            store<f32>(r + 2 * plane, cc - b);
            store<f32>(r + 3 * plane, b - dd);
          }
        }
      }
    }
  }
}

/**
 * One row of Bᵀd for four neighbouring tiles — its columns 0…11 in (p, q, r),
 * tile k's four at 2k … 2k + 3 — times B: (a − c, b + c, c − b, b − d) with
 * a, b, c, d the tiles' columns 0, 1, 2, 3, stored at dst + j·plane.
 */
@inline function columns(p: v128, q: v128, r: v128, dst: usize, plane: usize): void {
  const a = f32x4.shuffle(p, q, 0, 2, 4, 6);
  const b = f32x4.shuffle(p, q, 1, 3, 5, 7);
  const c = f32x4.shuffle(a, r, 1, 2, 3, 4);
  const d = f32x4.shuffle(b, r, 1, 2, 3, 5);
  v128.store(dst, f32x4.sub(a, c));
  v128.store(dst + plane, f32x4.add(b, c));
  v128.store(dst + 2 * plane, f32x4.sub(c, b));
  v128.store(dst + 3 * plane, f32x4.sub(b, d));
}

/** M[ξ] (Op, Tp) = U[ξ]·V[ξ] for the 16 ξ, element (o, tile) at (ξ·Op + o)·Tp + tile. */
function products(U: usize, V: usize, C: i32, t: Tiling, M: usize): void {
  const Op = t.Op, Tp = t.Tp;
  const ldb = <usize>Tp << 2;
  for (let xi = 0; xi < 16; xi++) {
    const Vx = at(V, xi * C * Tp);
    for (let op = 0; op < Op; op += 4) {
      const a = at(U, (xi * Op + op) * C);
      const m = at(M, (xi * Op + op) * Tp);
      for (let j = 0; j < Tp; j += 8) tile4x8(C, a, Vx + (<usize>j << 2), ldb, m + (<usize>j << 2));
    }
  }
}

/** The 4×8 block m = a·b: a packed (C, 4) (element (k, r) at k·4 + r), b rows of 8 at stride ldb, m rows at the same stride. */
// gemm.ts's microKernel computes the same tile (B's stride is a parameter there too), but calling it here, not inlined, measured 0.83× on the table's Winograd layers.
@inline function tile4x8(C: i32, a: usize, b: usize, ldb: usize, m: usize): void {
  if (ASC_FEATURE_SIMD) {
    // Scalar math: m[r][j] = Σ_k a[k·4 + r]·b[k·ldb + j]; accumulator cRV holds row r, columns 4V … 4V + 3.
    let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
    let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
    let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
    let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
    for (let k = 0; k < C; k++) {
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
    v128.store(m, c00);
    v128.store(m, c01, 16);
    v128.store(m + ldb, c10);
    v128.store(m + ldb, c11, 16);
    v128.store(m + 2 * ldb, c20);
    v128.store(m + 2 * ldb, c21, 16);
    v128.store(m + 3 * ldb, c30);
    v128.store(m + 3 * ldb, c31, 16);
  } else {
    for (let r = 0; r < 4; r++) {
      for (let j = 0; j < 8; j++) {
        let s: f32 = 0;
        for (let k = 0; k < C; k++) s += load<f32>(a + (<usize>(k * 4 + r) << 2)) * load<f32>(b + <usize>k * ldb + (<usize>j << 2));
        store<f32>(m + <usize>r * ldb + (<usize>j << 2), s);
      }
    }
  }
}

/** y[o] (OH, OW) = Aᵀ M A of every tile, plus bias[o] unless bias = 0; tiles past the edges are dropped. */
function transformOutput(M: usize, bias: usize, O: i32, OH: i32, OW: i32, t: Tiling, y: usize): void {
  const Tp = t.Tp;
  const plane = <usize>(t.Op * Tp) << 2; // from one ξ to the next
  for (let o = 0; o < O; o++) {
    const b: f32 = bias != 0 ? load<f32>(at(bias, o)) : 0;
    const yo = at(y, o * OH * OW);
    for (let th = 0; th < t.TH; th++) {
      const oh = 2 * th;
      const two = oh + 1 < OH; // whether the tile's second row is inside
      const src = at(M, o * Tp + th * t.TWp);
      if (ASC_FEATURE_SIMD) {
        const vb = f32x4.splat(b);
        for (let tw = 0; tw < t.TWp; tw += 4) {
          const ow = 2 * tw;
          if (ow >= OW) break;
          const m = src + (<usize>tw << 2);
          // S = AᵀM: s_j = m_0j + m_1j + m_2j, d_j = m_1j − m_2j − m_3j, four tiles per vector.
          const m10 = v128.load(m + 4 * plane), m11 = v128.load(m + 5 * plane), m12 = v128.load(m + 6 * plane), m13 = v128.load(m + 7 * plane);
          const m20 = v128.load(m + 8 * plane), m21 = v128.load(m + 9 * plane), m22 = v128.load(m + 10 * plane), m23 = v128.load(m + 11 * plane);
          const s0 = f32x4.add(f32x4.add(v128.load(m), m10), m20);
          const s1 = f32x4.add(f32x4.add(v128.load(m + plane), m11), m21);
          const s2 = f32x4.add(f32x4.add(v128.load(m + 2 * plane), m12), m22);
          const s3 = f32x4.add(f32x4.add(v128.load(m + 3 * plane), m13), m23);
          // Y = SA: row i is (s_0 + s_1 + s_2, s_1 − s_2 − s_3) of S's row i.
          const y00 = f32x4.add(f32x4.add(f32x4.add(s0, s1), s2), vb);
          const y01 = f32x4.add(f32x4.sub(f32x4.sub(s1, s2), s3), vb);
          storeOutputRow(y00, y01, at(yo, oh * OW + ow), OW - ow);
          if (two) {
            const d0 = f32x4.sub(f32x4.sub(m10, m20), v128.load(m + 12 * plane));
            const d1 = f32x4.sub(f32x4.sub(m11, m21), v128.load(m + 13 * plane));
            const d2 = f32x4.sub(f32x4.sub(m12, m22), v128.load(m + 14 * plane));
            const d3 = f32x4.sub(f32x4.sub(m13, m23), v128.load(m + 15 * plane));
            const y10 = f32x4.add(f32x4.add(f32x4.add(d0, d1), d2), vb);
            const y11 = f32x4.add(f32x4.sub(f32x4.sub(d1, d2), d3), vb);
            storeOutputRow(y10, y11, at(yo, (oh + 1) * OW + ow), OW - ow);
          }
        }
      } else {
        for (let tw = 0; 2 * tw < OW; tw++) {
          const ow = 2 * tw;
          const m = src + (<usize>tw << 2);
          let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0, d0: f32 = 0, d1: f32 = 0, d2: f32 = 0, d3: f32 = 0;
          for (let j = 0; j < 4; j++) {
            const a0 = load<f32>(m + <usize>j * plane), a1 = load<f32>(m + <usize>(4 + j) * plane);
            const a2 = load<f32>(m + <usize>(8 + j) * plane), a3 = load<f32>(m + <usize>(12 + j) * plane);
            const s = a0 + a1 + a2, d = a1 - a2 - a3;
            if (j == 0) { s0 = s; d0 = d; } else if (j == 1) { s1 = s; d1 = d; } else if (j == 2) { s2 = s; d2 = d; } else { s3 = s; d3 = d; }
          }
          const p = at(yo, oh * OW + ow);
          store<f32>(p, s0 + s1 + s2 + b);
          if (ow + 1 < OW) store<f32>(p, s1 - s2 - s3 + b, 4);
          if (two) {
            const q = at(yo, (oh + 1) * OW + ow);
            store<f32>(q, d0 + d1 + d2 + b);
            if (ow + 1 < OW) store<f32>(q, d1 - d2 - d3 + b, 4);
          }
        }
      }
    }
  }
}

/**
 * Outputs (e_0, f_0, e_1, f_1, …, f_3) of four tiles' row at p, the first
 * `room` of them (all eight when room ≥ 8): a row's last vector is stored
 * lane by lane (64- and 32-bit lane stores) rather than through a scratch
 * and memory.copy, which was most of the output transform's time on the
 * table's 7- and 14-wide outputs, where every row ends in a partial vector.
 */
@inline function storeOutputRow(e: v128, f: v128, p: usize, room: i32): void {
  const lo = f32x4.shuffle(e, f, 0, 4, 1, 5);
  const hi = f32x4.shuffle(e, f, 2, 6, 3, 7);
  if (room >= 8) {
    v128.store(p, lo);
    v128.store(p, hi, 16);
    return;
  }
  let last = lo;
  if (room >= 4) {
    v128.store(p, lo);
    p += 16;
    room -= 4;
    last = hi;
  }
  if (room >= 2) {
    v128.store64_lane(p, last, 0);
    if (room == 3) v128.store32_lane(p, last, 2, 8);
  } else if (room == 1) {
    v128.store32_lane(p, last, 0);
  }
}

// ∂ℓ/∂W by the transpose of the same algorithm: with y = Aᵀ M A and
// M = U ⊙ V per tile, ∂M = A ∂y Aᵀ (the 2×2 block of ∂ℓ/∂y spread over the
// 4×4 tile), ∂U[o, c] = Σ_tiles ∂M[o] ⊙ V[c] — 16 products over all tiles of
// all images — and ∂g = Gᵀ ∂U G. 16 multiply-adds per tile where im2col +
// GEMM spends 36.

/**
 * Images per pass of conv2dWinogradWeight: as many as keep V and ∂M of the
 * pass (16·(C + 4) rows of their tiles) within about 128 KiB, 1 to 16.
 */
@inline function weightImages(C: i32, Tp: i32): i32 {
  return max(1, min(16, 32768 / (16 * (C + 4) * Tp)));
}

/** Bytes of the tiling, the padded image (C, PH, PW), V (16, C, m·Tp), the padded gradient (4, 2·TH, 2·TWp), ∂M (16, 4, m·Tp) and ∂U's vector sums (16, Op, Cp, 4), Cp = C rounded up to even, m = weightImages. */
function weightLayoutBytes(C: i32, O: i32, OH: i32, OW: i32): usize {
  const TH = tileRows(OH), TWp = tileRowLength(OW);
  const Tp = roundUp(TH * TWp, 8), Op = roundUp(O, 4);
  const ld = weightImages(C, Tp) * Tp;
  const PH = 2 * TH + 2, PW = 2 * TWp + 8;
  return align64(offsetof<Tiling>()) + align64(<usize>(C * PH * PW) << 2) + align64(<usize>(16 * C * ld) << 2)
    + align64(<usize>(4 * 2 * TH * 2 * TWp) << 2) + align64(<usize>(16 * 4 * ld) << 2) + align64(<usize>(16 * Op * roundUp(C, 2) * 4) << 2);
}

/** Bytes of workspace conv2dWinogradWeight needs. */
export function winogradWeightWorkspaceBytes(C: i32, O: i32, g: usize): usize {
  const w = changetype<Window>(g);
  return weightLayoutBytes(C, O, w.OH, w.OW);
}

/**
 * gw (O, C, 3, 3) = ∂ℓ/∂W of the 3×3 stride-1 convolution of x (N, C, H, W)
 * from gy (N, O, OH, OW), overwritten, for the rows o0 ≤ o < o1 (a thread's
 * share; o0 a multiple of 4 keeps every bit of the whole computation, each
 * share summing over every image in the same order). 0, O computes all.
 */
export function conv2dWinogradWeight(x: usize, gy: usize, gw: usize, N: i32, C: i32, O: i32, g: usize, work: usize, o0: i32, o1: i32): void {
  const w = changetype<Window>(g);
  const H = w.H, W = w.W, OH = w.OH, OW = w.OW;
  o0 = max(o0, 0);
  o1 = min(o1, O);
  if (o0 >= o1) return;
  const t = changetype<Tiling>(work);
  t.TH = tileRows(OH);
  t.TWp = tileRowLength(OW);
  t.Tp = roundUp(t.TH * t.TWp, 8);
  t.PH = 2 * t.TH + 2;
  t.PW = 2 * t.TWp + 8;
  t.Op = roundUp(O, 4);
  const chunk = weightImages(C, t.Tp);
  t.ld = chunk * t.Tp;
  const GH = 2 * t.TH, GW = 2 * t.TWp; // the gradient's block, zero past OH×OW
  const padded = work + align64(offsetof<Tiling>());
  const V = padded + align64(<usize>(C * t.PH * t.PW) << 2);
  const gyPad = V + align64(<usize>(16 * C * t.ld) << 2);
  const dM = gyPad + align64(<usize>(4 * GH * GW) << 2);
  const dU = dM + align64(<usize>(16 * 4 * t.ld) << 2);
  const rows = o1 - o0;
  const Or = roundUp(rows, 4);
  memory.fill(padded, 0, <usize>(C * t.PH * t.PW) << 2);
  // V's and ∂M's columns past each image's last tile stay zero: the products read them.
  memory.fill(V, 0, <usize>(16 * C * t.ld) << 2);
  memory.fill(dM, 0, <usize>(16 * 4 * t.ld) << 2);
  const Cp = roundUp(C, 2);
  memory.fill(dU, 0, <usize>(16 * Or * Cp * 4) << 2);
  // A pass's images side by side (image i's tiles at columns i·Tp …), so that the products run along all their tiles at once.
  for (let n = 0; n < N; n += chunk) {
    const m = min(chunk, N - n);
    for (let i = 0; i < m; i++) {
      const xn = x + ((<usize>(n + i) * <usize>(C * H * W)) << 2);
      for (let c = 0; c < C; c++) {
        for (let ih = 0; ih < H; ih++) {
          copyRun(at(xn, (c * H + ih) * W), at(padded, (c * t.PH + w.ph + ih) * t.PW + w.pw), W);
        }
      }
      transformInput(padded, C, t, V + (<usize>(i * t.Tp) << 2));
    }
    // Four rows of ∂ℓ/∂y at a time: their ∂M, then their rows of ∂U.
    for (let ob = 0; ob < Or; ob += 4) {
      for (let i = 0; i < m; i++) {
        memory.fill(gyPad, 0, <usize>(4 * GH * GW) << 2);
        for (let r = 0; r < 4 && o0 + ob + r < o1; r++) {
          const src = gy + ((<usize>((n + i) * O + o0 + ob + r) * <usize>(OH * OW)) << 2);
          for (let oh = 0; oh < OH; oh++) copyRun(at(src, oh * OW), at(gyPad, (r * GH + oh) * GW), OW);
        }
        transformGradient(gyPad, GH, GW, t, dM + (<usize>(i * t.Tp) << 2));
      }
      gradientProducts(dM, V, C, t, m * t.Tp, dU + (<usize>(ob * Cp * 4) << 2), Or);
    }
  }
  // gw[o, c] = Gᵀ ∂U[o, c] G, in f64 from the 16 sums (each the sum of its four lanes); q (12 f64, where the padded image was) holds GᵀX by columns.
  const plane = <usize>(Or * Cp * 4) << 2; // from one ξ to the next
  const q = padded;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++) {
      const s = dU + (<usize>((r * Cp + c) * 4) << 2);
      const dst = gw + (<usize>(((o0 + r) * C + c) * 9) << 2);
      // GᵀX: rows X_0 + (X_1 + X_2)/2, (X_1 − X_2)/2, (X_1 + X_2)/2 + X_3 of X's rows; q[j·3 + i] = (GᵀX)[i][j].
      for (let j = 0; j < 4; j++) {
        const x0 = <f64>lanesSum(s + <usize>j * plane), x1 = <f64>lanesSum(s + <usize>(4 + j) * plane);
        const x2 = <f64>lanesSum(s + <usize>(8 + j) * plane), x3 = <f64>lanesSum(s + <usize>(12 + j) * plane);
        store<f64>(q + (<usize>(j * 3) << 3), x0 + 0.5 * (x1 + x2));
        store<f64>(q + (<usize>(j * 3 + 1) << 3), 0.5 * (x1 - x2));
        store<f64>(q + (<usize>(j * 3 + 2) << 3), 0.5 * (x1 + x2) + x3);
      }
      // Then (GᵀX)G: the same combination of each row's four columns.
      for (let i = 0; i < 3; i++) {
        const y0 = load<f64>(q + (<usize>i << 3)), y1 = load<f64>(q + (<usize>(3 + i) << 3));
        const y2 = load<f64>(q + (<usize>(6 + i) << 3)), y3 = load<f64>(q + (<usize>(9 + i) << 3));
        store<f32>(dst + (<usize>(i * 3) << 2), <f32>(y0 + 0.5 * (y1 + y2)));
        store<f32>(dst + (<usize>(i * 3 + 1) << 2), <f32>(0.5 * (y1 - y2)));
        store<f32>(dst + (<usize>(i * 3 + 2) << 2), <f32>(0.5 * (y1 + y2) + y3));
      }
    }
  }
}

/**
 * ∂M (16, 4, Tp), element (r, tile) of ξ at (ξ·4 + r)·ld + tile: A b Aᵀ of the
 * 2×2 block b of row r of the padded gradient (4, GH, GW) under each tile,
 * A = (1 0; 1 1; 1 −1; 0 −1): a row (p, q) of Ab becomes (p, p + q, p − q, −q).
 */
function transformGradient(gyPad: usize, GH: i32, GW: i32, t: Tiling, dM: usize): void {
  const plane = <usize>(4 * t.ld) << 2; // from one ξ to the next
  for (let r = 0; r < 4; r++) {
    for (let th = 0; th < t.TH; th++) {
      const row0 = at(gyPad, (r * GH + 2 * th) * GW);
      const row1 = row0 + (<usize>GW << 2);
      const dst = at(dM, r * t.ld + th * t.TWp);
      if (ASC_FEATURE_SIMD) {
        for (let tw = 0; tw < t.TWp; tw += 4) {
          const s0 = row0 + (<usize>(2 * tw) << 2), s1 = row1 + (<usize>(2 * tw) << 2);
          const u0 = v128.load(s0), u1 = v128.load(s0, 16), l0 = v128.load(s1), l1 = v128.load(s1, 16);
          const a = f32x4.shuffle(u0, u1, 0, 2, 4, 6), b = f32x4.shuffle(u0, u1, 1, 3, 5, 7); // upper row of four tiles' blocks
          const c = f32x4.shuffle(l0, l1, 0, 2, 4, 6), d = f32x4.shuffle(l0, l1, 1, 3, 5, 7); // lower row
          const p = dst + (<usize>tw << 2);
          spread(a, b, p, plane); // Ab row 0: (a, b)
          spread(f32x4.add(a, c), f32x4.add(b, d), p + 4 * plane, plane); // row 1: (a + c, b + d)
          spread(f32x4.sub(a, c), f32x4.sub(b, d), p + 8 * plane, plane); // row 2: (a − c, b − d)
          spread(f32x4.neg(c), f32x4.neg(d), p + 12 * plane, plane); // row 3: (−c, −d)
        }
      } else {
        for (let tw = 0; tw < t.TWp; tw++) {
          const a = load<f32>(at(row0, 2 * tw)), b = load<f32>(at(row0, 2 * tw + 1));
          const c = load<f32>(at(row1, 2 * tw)), d = load<f32>(at(row1, 2 * tw + 1));
          const p = dst + (<usize>tw << 2);
          spreadScalar(a, b, p, plane);
          spreadScalar(a + c, b + d, p + 4 * plane, plane);
          spreadScalar(a - c, b - d, p + 8 * plane, plane);
          spreadScalar(-c, -d, p + 12 * plane, plane);
        }
      }
    }
  }
}

/** A row (p, q) of Ab times Aᵀ: (p, p + q, p − q, −q) at dst + j·plane, four tiles per vector. */
@inline function spread(p: v128, q: v128, dst: usize, plane: usize): void {
  v128.store(dst, p);
  v128.store(dst + plane, f32x4.add(p, q));
  v128.store(dst + 2 * plane, f32x4.sub(p, q));
  v128.store(dst + 3 * plane, f32x4.neg(q));
}

@inline function spreadScalar(p: f32, q: f32, dst: usize, plane: usize): void {
  store<f32>(dst, p);
  store<f32>(dst + plane, p + q);
  store<f32>(dst + 2 * plane, p - q);
  store<f32>(dst + 3 * plane, -q);
}

/**
 * ∂U[ξ] rows ob … ob + 3 (at dU, rows of Cp vectors, Or rows per ξ) += ∂M[ξ] (4, len)·V[ξ]ᵀ (len, C), rows ld apart:
 * dot products along the tiles, a block of 4 rows × 2 channels at a time,
 * each a vector of partial sums over tiles t ≡ 0, 1, 2, 3 (mod 4), kept
 * apart over every image and added together at the end — the same order
 * for an element whatever the rows around it, so a thread's share of rows
 * keeps the bits.
 */
// conv.ts's accumulateDots computes the same 4×2 blocks, but calling it per ξ here measured 0.88× (its sums reloaded per block, not inlined).
function gradientProducts(dM: usize, V: usize, C: i32, t: Tiling, len: i32, dU: usize, Or: i32): void {
  const Tp = t.ld; // rows of V and ∂M this far apart, their first len columns summed over
  const rowBytes = <usize>Tp << 2;
  const Cp = roundUp(C, 2);
  const rowSums = <usize>(Cp * 4) << 2; // one row of ∂U's vector sums
  for (let xi = 0; xi < 16; xi++) {
    const m = at(dM, xi * 4 * Tp);
    const u = at(dU, xi * Or * Cp * 4);
    for (let c = 0; c < C; c += 2) {
      const c1 = min(c + 1, C - 1); // an odd last channel is computed twice, its copy dropped
      const v0 = at(V, (xi * C + c) * Tp), v1 = at(V, (xi * C + c1) * Tp);
      if (ASC_FEATURE_SIMD) {
        let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a10 = f32x4.splat(0), a11 = f32x4.splat(0);
        let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a30 = f32x4.splat(0), a31 = f32x4.splat(0);
        for (let k = 0; k < len; k += 4) {
          const o = <usize>k << 2;
          const b0 = v128.load(v0 + o), b1 = v128.load(v1 + o);
          let r = v128.load(m + o);
          a00 = madd(r, b0, a00);
          a01 = madd(r, b1, a01);
          r = v128.load(m + rowBytes + o);
          a10 = madd(r, b0, a10);
          a11 = madd(r, b1, a11);
          r = v128.load(m + 2 * rowBytes + o);
          a20 = madd(r, b0, a20);
          a21 = madd(r, b1, a21);
          r = v128.load(m + 3 * rowBytes + o);
          a30 = madd(r, b0, a30);
          a31 = madd(r, b1, a31);
        }
        // Lanes stay apart until the end (lanesSum); an odd last channel's copy goes to the unused slot C.
        const p = u + (<usize>(c * 4) << 2);
        addLanes(p, a00, a01);
        addLanes(p + rowSums, a10, a11);
        addLanes(p + 2 * rowSums, a20, a21);
        addLanes(p + 3 * rowSums, a30, a31);
      } else {
        for (let r = 0; r < 4; r++) {
          for (let q = c; q <= c1; q++) {
            const vq = at(V, (xi * C + q) * Tp);
            let s: f32 = 0;
            for (let k = 0; k < len; k++) s += load<f32>(at(m, r * Tp + k)) * load<f32>(at(vq, k));
            const p = u + (<usize>((r * Cp + q) * 4) << 2); // lane 0
            store<f32>(p, load<f32>(p) + s);
          }
        }
      }
    }
  }
}

/** The vectors at p and p + 16 += v and w. */
@inline function addLanes(p: usize, v: v128, w: v128): void {
  v128.store(p, f32x4.add(v128.load(p), v));
  v128.store(p, f32x4.add(v128.load(p, 16), w), 16);
}

/** The four floats at p summed as (p0 + p1) + (p2 + p3) (the scalar build leaves p1 … p3 zero). */
@inline function lanesSum(p: usize): f32 {
  return (load<f32>(p) + load<f32>(p, 4)) + (load<f32>(p, 8) + load<f32>(p, 12));
}
