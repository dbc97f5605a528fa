// Convolution on float32 by im2col + GEMM, one image at a time, entirely in
// linear memory (see src/backend/backend.ts for the contracts): each image
// is copied into a zero-padded image in the workspace, its column matrix is
// gathered from there (every window inside the padded image: no clipping,
// one strided run per output row) and multiplied in place; neither ever
// leaves the module. The backward scatters Wᵀ·G[n] into a zeroed padded
// image and keeps its middle. Geometry: an H×W plane, a kh×kw window moving
// by (sh, sw), padding (ph, pw), OH×OW output positions; K = C·kh·kw rows of
// the column matrix, L = OH·OW columns; the padded image is (C, PH, PW) with
// PH = H + 2ph, PW = W + 2pw.

import { align64, microKernel, microKernel8x4, MR, NR, packA, roundUp } from "./gemm";
import { loadWidened, madd, sumLanes64 } from "./simd";
import { Window } from "./window";

@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

/** Bytes of a copy of a (C, H, W) image with ph zero rows above and below and pw zero columns left and right. */
export function paddedImageBytes(C: i32, H: i32, W: i32, ph: i32, pw: i32): usize {
  return align64(<usize>(C * (H + 2 * ph) * (W + 2 * pw)) << 2);
}

/** n zeros at p. */
@inline function zero(p: usize, n: i32): void {
  memory.fill(p, 0, <usize>n << 2);
}

/** dst[t] = src[t] for t < n. */
@inline export function copyRun(src: usize, dst: usize, n: i32): void {
  let t = 0;
  if (ASC_FEATURE_SIMD) {
    for (; t + 4 <= n; t += 4) v128.store(at(dst, t), v128.load(at(src, t)));
  }
  for (; t < n; t++) store<f32>(at(dst, t), load<f32>(at(src, t)));
}

/** The image x (C, H, W) into the middle of `padded` (C, H + 2ph, W + 2pw), whose border is already zero. */
function padImage(x: usize, C: i32, H: i32, W: i32, ph: i32, pw: i32, padded: usize): void {
  const PW = W + 2 * pw;
  const PH = H + 2 * ph;
  for (let c = 0; c < C; c++) {
    for (let ih = 0; ih < H; ih++) copyRun(at(x, (c * H + ih) * W), at(padded, (c * PH + ph + ih) * PW + pw), W);
  }
}

/** dst[t] = src[t·sw] for t < n. */
@inline function gatherRun(src: usize, dst: usize, n: i32, sw: i32): void {
  let t = 0;
  if (sw == 1) {
    if (ASC_FEATURE_SIMD) {
      for (; t + 4 <= n; t += 4) v128.store(at(dst, t), v128.load(at(src, t)));
    }
    for (; t < n; t++) store<f32>(at(dst, t), load<f32>(at(src, t)));
  } else {
    if (ASC_FEATURE_SIMD) {
      if (sw == 2) {
        // Elements 0, 2, 4, 6 from two overlapping loads (0..3 and 3..6): nothing past element 6 is read.
        for (; t + 4 <= n; t += 4) {
          const s = at(src, 2 * t);
          v128.store(at(dst, t), v128.shuffle<f32>(v128.load(s), v128.load(s, 12), 0, 2, 5, 7));
        }
      }
    }
    for (; t < n; t++) store<f32>(at(dst, t), load<f32>(at(src, t * sw)));
  }
}

/** dst[t·sw] += src[t] for t < n. */
@inline function scatterAddRun(src: usize, dst: usize, n: i32, sw: i32): void {
  let t = 0;
  if (sw == 1) {
    if (ASC_FEATURE_SIMD) {
      for (; t + 4 <= n; t += 4) v128.store(at(dst, t), f32x4.add(v128.load(at(dst, t)), v128.load(at(src, t))));
    }
    for (; t < n; t++) store<f32>(at(dst, t), load<f32>(at(dst, t)) + load<f32>(at(src, t)));
  } else {
    for (; t < n; t++) {
      const d = at(dst, t * sw);
      store<f32>(d, load<f32>(d) + load<f32>(at(src, t)));
    }
  }
}

/**
 * im2col from a padded image (C, PH, PW): row (c, i, j) of cols (rows ld
 * bytes apart), column (oh, ow) = padded[c, oh·sh + i, ow·sw + j]. Every
 * window lies inside the padded image, so each output row is one strided
 * run, without clipping.
 */
function im2colPadded(padded: usize, C: i32, PH: i32, PW: i32, kh: i32, kw: i32, sh: i32, sw: i32, OH: i32, OW: i32, cols: usize, ld: usize): void {
  let row = cols;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++, row += ld) {
        let d = row;
        for (let oh = 0; oh < OH; oh++, d += <usize>OW << 2) gatherRun(at(padded, (c * PH + oh * sh + i) * PW + j), d, OW, sw);
      }
    }
  }
}

/** The adjoint of im2colPadded: padded[c, oh·sh + i, ow·sw + j] += cols[(c, i, j), (oh, ow)], the rows of cols ld bytes apart. */
function col2imPadded(cols: usize, C: i32, PH: i32, PW: i32, kh: i32, kw: i32, sh: i32, sw: i32, OH: i32, OW: i32, padded: usize, ld: usize): void {
  let row = cols;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++, row += ld) {
        let s = row;
        for (let oh = 0; oh < OH; oh++, s += <usize>OW << 2) scatterAddRun(s, at(padded, (c * PH + oh * sh + i) * PW + j), OW, sw);
      }
    }
  }
}

/** Bytes of workspace im2col and col2im need: a padded copy of the image. */
export function im2colWorkspaceBytes(C: i32, g: usize): usize {
  const w = changetype<Window>(g);
  return paddedImageBytes(C, w.H, w.W, w.ph, w.pw);
}

/**
 * im2col of one image x (C, H, W) into cols (C·kh·kw, OH·OW): the image is
 * copied into the zero-padded workspace, then gathered from there.
 */
export function im2col(
  x: usize,
  C: i32,
  g: usize,
  cols: usize,
  work: usize,
): void {
  const w = changetype<Window>(g);
  const PH = w.H + 2 * w.ph;
  const PW = w.W + 2 * w.pw;
  zero(work, C * PH * PW);
  padImage(x, C, w.H, w.W, w.ph, w.pw, work);
  im2colPadded(work, C, PH, PW, w.kh, w.kw, w.sh, w.sw, w.OH, w.OW, cols, <usize>(w.OH * w.OW) << 2);
}

/** col2im, the adjoint of im2col: dx (C, H, W) += the entries of cols outside the padding, through the padded workspace. */
export function col2im(
  cols: usize,
  C: i32,
  g: usize,
  dx: usize,
  work: usize,
): void {
  const w = changetype<Window>(g);
  const H = w.H, W = w.W;
  const PH = H + 2 * w.ph;
  const PW = W + 2 * w.pw;
  zero(work, C * PH * PW);
  col2imPadded(cols, C, PH, PW, w.kh, w.kw, w.sh, w.sw, w.OH, w.OW, work, <usize>(w.OH * w.OW) << 2);
  for (let c = 0; c < C; c++) {
    for (let ih = 0; ih < H; ih++) scatterAddRun(at(work, (c * PH + w.ph + ih) * PW + w.pw), at(dx, (c * H + ih) * W), W, 1);
  }
}

@inline function isPointwise(kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32): bool {
  return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
}

// The products of a convolution are small and many (one per image), so they
// run without GEMM's blocking and packing of B: the weight is packed into
// MR-row panels once per call, and the microkernel reads the column matrix
// (or, for a 1×1 convolution, the image itself) in place, NR columns of
// each row at the image's row stride. Only the last NR-wide strip of a
// product whose width is not a multiple of NR is copied into a zero-padded
// scratch strip. ∂ℓ/∂W is a sum over every image of gy[n]·cols[n]ᵀ: dot
// products along the rows of both (see accumulateDots).

/**
 * The workspace of conv2dForward and conv2dBackward, in this order: the
 * column matrix (K, L), or of a pass's images for ∂ℓ/∂W; a pass's rows of
 * gy laid end to end (see conv2dBackward); the padded image; the packed weight (panels of W, or
 * of Wᵀ for ∂ℓ/∂x); a scratch strip (K or O rows of NR) and tile (MR×NR);
 * the vector partial sums of ∂ℓ/∂W (Op rows of Kp pairs of f32x4 lanes).
 */
@unmanaged class ConvLayout {
  cols: usize;
  rows: usize;
  padded: usize;
  packed: usize;
  strip: usize;
  tile: usize;
  sums: usize;
}

/** The layout for C → O channels over the window at g from `base`, stored at `l` unless 0; returns where it ends. */
function convLayout(C: i32, O: i32, g: usize, base: usize, l: usize): usize {
  const w = changetype<Window>(g);
  const K = C * w.kh * w.kw;
  const L = w.OH * w.OW;
  const cols = base;
  const span = <usize>roundUp(dotImages(K, O, L) * L, 16); // a row of images side by side, 64-byte aligned
  const rows = cols + align64(span * <usize>K << 2);
  const padded = rows + align64(span * <usize>O << 2);
  const packed = padded + paddedImageBytes(C, w.H, w.W, w.ph, w.pw);
  const strip = packed + align64(<usize>max(roundUp(O, MR) * K, roundUp(K, MR) * O) << 2);
  const tile = strip + align64(<usize>(max(K, O) * NR) << 2);
  const sums = tile + align64(<usize>(2 * MR * NR) << 2); // up to 8 rows (microKernel8x4)
  if (l != 0) {
    const s = changetype<ConvLayout>(l);
    s.cols = cols;
    s.rows = rows;
    s.padded = padded;
    s.packed = packed;
    s.strip = strip;
    s.tile = tile;
    s.sums = sums;
  }
  return sums + align64(<usize>(roundUp(O, 4) * roundUp(K, 2) * 4) << 2);
}

/** Bytes of workspace conv2dForward and conv2dBackward need: the layout's struct, then its parts (see ConvLayout). */
export function conv2dWorkspaceBytes(C: i32, O: i32, window: usize): usize {
  return convLayout(C, O, window, align64(offsetof<ConvLayout>()), 0);
}

/** The layout of the workspace `work`, its struct in the first bytes. */
function layoutAt(C: i32, O: i32, g: usize, work: usize): ConvLayout {
  convLayout(C, O, g, work + align64(offsetof<ConvLayout>()), work);
  return changetype<ConvLayout>(work);
}

/**
 * c (M×L, rows ldc bytes apart) = the packed panels pa (M rows, depth K) ·
 * b (K×L, rows ldb bytes apart), every element overwritten. A strip of the
 * last columns narrower than NR is copied into the zero-padded `strip`
 * first; tiles that stick out of c go through `tile`.
 */
function productInPlace(M: i32, L: i32, K: i32, pa: usize, b: usize, ldb: usize, c: usize, ldc: usize, strip: usize, tile: usize): void {
  const ldt = <usize>NR << 2;
  for (let jr = 0; jr < L; jr += NR) {
    const nr = min(NR, L - jr);
    let bj = b + (<usize>jr << 2);
    let ld = ldb;
    if (nr < NR) {
      for (let k = 0; k < K; k++) {
        const s = bj + <usize>k * ldb;
        const d = strip + <usize>k * ldt;
        if (ASC_FEATURE_SIMD) {
          // NR = 8: the nr floats in two vectors, zeros past them, nothing read past the row.
          const zero4 = f32x4.splat(0);
          if (nr >= 4) {
            v128.store(d, v128.load(s));
            v128.store(d, nr == 4 ? zero4 : loadTail(s + 16, nr - 4), 16);
          } else {
            v128.store(d, loadTail(s, nr));
            v128.store(d, zero4, 16);
          }
        } else {
          for (let j = 0; j < NR; j++) store<f32>(d + (<usize>j << 2), j < nr ? load<f32>(s + (<usize>j << 2)) : 0);
        }
      }
      bj = strip;
      ld = ldt;
    }
    for (let ir = 0; ir < M; ir += MR) {
      const mr = min(MR, M - ir);
      const a = pa + (<usize>(ir * K) << 2);
      const cij = c + <usize>ir * ldc + (<usize>jr << 2);
      if (ASC_FEATURE_SIMD && nr <= 4 && ir + MR < M) {
        // A last strip of ≤ 4 columns: eight rows at once (gemm.ts's microKernel8x4, same bits).
        microKernel8x4(K, a, bj, ld, tile, ldt);
        const rows = min(2 * MR, M - ir);
        for (let i = 0; i < rows; i++) copyRun(tile + <usize>i * ldt, cij + <usize>i * ldc, nr);
        ir += MR;
        continue;
      }
      if (mr == MR && nr == NR) {
        microKernel(K, a, bj, ld, cij, ldc, 1, 0, true);
      } else {
        microKernel(K, a, bj, ld, tile, ldt, 1, 0, true);
        for (let i = 0; i < mr; i++) copyRun(tile + <usize>i * ldt, cij + <usize>i * ldc, nr);
      }
    }
  }
}

/**
 * y[n] = W·im2col(x[n]) (+ bias) for the images n0 ≤ n < n1 (a thread's
 * share; 0 and N for all); bias = 0 for none.
 */
export function conv2dForward(
  x: usize,
  weight: usize,
  bias: usize,
  y: usize,
  N: i32,
  C: i32,
  O: i32,
  g: usize,
  work: usize,
  n0: i32,
  n1: i32,
): void {
  const w = changetype<Window>(g);
  const H = w.H;
  const W = w.W;
  const kh = w.kh;
  const kw = w.kw;
  const sh = w.sh;
  const sw = w.sw;
  const ph = w.ph;
  const pw = w.pw;
  const OH = w.OH;
  const OW = w.OW;
  const K = C * kh * kw;
  const L = OH * OW;
  const pointwise = isPointwise(kh, kw, sh, sw, ph, pw);
  const PH = H + 2 * ph;
  const PW = W + 2 * pw;
  const l = layoutAt(C, O, g, work);
  const ldb = <usize>L << 2;
  packA(false, weight, O, K, 0, O, 0, K, l.packed);
  // The border of the padded image stays zero; each image overwrites the middle.
  if (!pointwise) zero(l.padded, C * PH * PW);
  const chunk = sideBySide(K, O, L, pointwise);
  const end = min(n1, N);
  for (let n = max(n0, 0); n < end; n++) {
    const m = min(chunk, end - n);
    if (m > 1) {
      // The images side by side: their columns one (K, m·L) matrix, one product, the rows put back per image.
      const ld = <usize>roundUp(m * L, 16) << 2; // rows 64-byte aligned
      for (let i = 0; i < m; i++) {
        // (never pointwise: see sideBySide)
        padImage(x + ((<usize>(n + i) * <usize>(C * H * W)) << 2), C, H, W, ph, pw, l.padded);
        im2colPadded(l.padded, C, PH, PW, kh, kw, sh, sw, OH, OW, l.cols + (<usize>(i * L) << 2), ld);
      }
      productInPlace(O, m * L, K, l.packed, l.cols, ld, l.rows, ld, l.strip, l.tile);
      for (let i = 0; i < m; i++) {
        const yi = y + ((<usize>(n + i) * <usize>(O * L)) << 2);
        for (let o = 0; o < O; o++) {
          copyRun(l.rows + <usize>o * ld + (<usize>(i * L) << 2), at(yi, o * L), L);
          if (bias != 0) addScalar(at(yi, o * L), L, load<f32>(at(bias, o)));
        }
      }
      n += m - 1;
      continue;
    }
    const xn = x + ((<usize>n * <usize>(C * H * W)) << 2);
    const yn = y + ((<usize>n * <usize>(O * L)) << 2);
    let b = xn;
    if (!pointwise) {
      padImage(xn, C, H, W, ph, pw, l.padded);
      im2colPadded(l.padded, C, PH, PW, kh, kw, sh, sw, OH, OW, l.cols, ldb);
      b = l.cols;
    }
    productInPlace(O, L, K, l.packed, b, ldb, yn, ldb, l.strip, l.tile);
    if (bias != 0) {
      for (let o = 0; o < O; o++) addScalar(at(yn, o * L), L, load<f32>(at(bias, o)));
    }
  }
}

/** p[i] += v for i < n. */
function addScalar(p: usize, n: i32, v: f32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vv = f32x4.splat(v);
    for (; i + 4 <= n; i += 4) v128.store(at(p, i), f32x4.add(v128.load(at(p, i)), vv));
  }
  for (; i < n; i++) store<f32>(at(p, i), load<f32>(at(p, i)) + v);
}

/** The last n % 4 floats of a row of n at p (n % 4 ≠ 0) as a vector, zeros in the lanes past them; reads nothing past the row. */
@inline function loadTail(p: usize, rem: i32): v128 {
  if (rem == 1) return v128.load32_zero(p);
  const v = v128.load64_zero(p);
  return rem == 2 ? v : f32x4.replace_lane(v, 2, load<f32>(p, 8));
}

/**
 * The vector partial sums of ∂ℓ/∂W for the rows ob … ob + 3 (rows past
 * `last` read row `last` and are dropped later) and every row k of b, at
 * sums (4 rows of K pairs of vectors), over `images` images:
 * sums[(o − ob, k)] += Σ_i Σ_l a_i[o, l]·b_i[k, l], with a_i (rows of L at
 * a stride of lda bytes) at a + i·aStep and b_i (K rows of L) at b + i·bStep,
 * lane j summing l ≡ j (mod 4) image after image. Each element's sum runs in
 * the same order whatever the rows around it and however the images are
 * grouped into calls, so a thread's share of rows keeps the bits.
 */
function accumulateDots(a: usize, lda: usize, aStep: usize, ob: i32, last: i32, b: usize, bStep: usize, images: i32, K: i32, L: i32, sums: usize): void {
  const ldb = <usize>L << 2;
  const r1 = <usize>(min(ob + 1, last) - ob) * lda;
  const r2 = <usize>(min(ob + 2, last) - ob) * lda;
  const r3 = <usize>(min(ob + 3, last) - ob) * lda;
  const aFirst = a + <usize>ob * lda;
  const rowSums = <usize>(roundUp(K, 2) * 4) << 2; // one row o of sums
  const s0 = sums;
  if (ASC_FEATURE_SIMD) {
    const L4 = L & ~3;
    const rem = L & 3;
    for (let k = 0; k < K; k += 2) {
      const k1 = min(k + 1, K - 1); // an odd last row is computed twice, its copy dropped
      const p = s0 + (<usize>(k * 4) << 2);
      let c00 = v128.load(p), c01 = v128.load(p, 16);
      let c10 = v128.load(p + rowSums), c11 = v128.load(p + rowSums, 16);
      let c20 = v128.load(p + 2 * rowSums), c21 = v128.load(p + 2 * rowSums, 16);
      let c30 = v128.load(p + 3 * rowSums), c31 = v128.load(p + 3 * rowSums, 16);
      for (let i = 0; i < images; i++) {
        const a0 = aFirst + <usize>i * aStep;
        const b0 = b + <usize>i * bStep + <usize>k * ldb, b1 = b + <usize>i * bStep + <usize>k1 * ldb;
        for (let l = 0; l < L4; l += 4) {
          const o = <usize>l << 2;
          const x0 = v128.load(b0 + o), x1 = v128.load(b1 + o);
          let r = v128.load(a0 + o);
          c00 = madd(r, x0, c00);
          c01 = madd(r, x1, c01);
          r = v128.load(a0 + r1 + o);
          c10 = madd(r, x0, c10);
          c11 = madd(r, x1, c11);
          r = v128.load(a0 + r2 + o);
          c20 = madd(r, x0, c20);
          c21 = madd(r, x1, c21);
          r = v128.load(a0 + r3 + o);
          c30 = madd(r, x0, c30);
          c31 = madd(r, x1, c31);
        }
        if (rem != 0) {
          const o = <usize>L4 << 2;
          const x0 = loadTail(b0 + o, rem), x1 = loadTail(b1 + o, rem);
          let r = loadTail(a0 + o, rem);
          c00 = madd(r, x0, c00);
          c01 = madd(r, x1, c01);
          r = loadTail(a0 + r1 + o, rem);
          c10 = madd(r, x0, c10);
          c11 = madd(r, x1, c11);
          r = loadTail(a0 + r2 + o, rem);
          c20 = madd(r, x0, c20);
          c21 = madd(r, x1, c21);
          r = loadTail(a0 + r3 + o, rem);
          c30 = madd(r, x0, c30);
          c31 = madd(r, x1, c31);
        }
      }
      v128.store(p, c00);
      v128.store(p, c01, 16);
      v128.store(p + rowSums, c10);
      v128.store(p + rowSums, c11, 16);
      v128.store(p + 2 * rowSums, c20);
      v128.store(p + 2 * rowSums, c21, 16);
      v128.store(p + 3 * rowSums, c30);
      v128.store(p + 3 * rowSums, c31, 16);
    }
  } else {
    // One partial sum per element (lane 0), in the order of the images and l.
    for (let r = 0; r < 4; r++) {
      const ar = aFirst + (r == 0 ? 0 : r == 1 ? r1 : r == 2 ? r2 : r3);
      for (let k = 0; k < K; k++) {
        const q = s0 + <usize>r * rowSums + (<usize>(k * 4) << 2);
        let s = load<f32>(q);
        for (let i = 0; i < images; i++) {
          const ai = ar + <usize>i * aStep;
          const bk = b + <usize>i * bStep + <usize>k * ldb;
          for (let l = 0; l < L; l++) s += load<f32>(at(ai, l)) * load<f32>(at(bk, l));
        }
        store<f32>(q, s);
      }
    }
  }
}

/**
 * Images per pass of accumulateDots: as many as keep a pass's rows of gy
 * and of x or the columns (O + K rows of L each) within about 128 KiB (L2),
 * 1 to 16; the columns of that many images are built at once.
 */
@inline function dotImages(K: i32, O: i32, L: i32): i32 {
  return max(1, min(16, (32 * 1024) / max(1, (K + O) * L)));
}

/** gw[o, k] = the sum of the four partial sums of (o, k) (row o − o0 of sums), as (s0 + s1) + (s2 + s3), for o0 ≤ o < o1. */
function finishDots(sums: usize, K: i32, o0: i32, o1: i32, gw: usize): void {
  const rowSums = <usize>(roundUp(K, 2) * 4) << 2;
  for (let o = o0; o < o1; o++) {
    for (let k = 0; k < K; k++) {
      const q = sums + <usize>(o - o0) * rowSums + (<usize>(k * 4) << 2);
      store<f32>(at(gw, o * K + k), (load<f32>(q) + load<f32>(q, 4)) + (load<f32>(q, 8) + load<f32>(q, 12)));
    }
  }
}

/**
 * The gradients of conv2dForward from gy (N, O, OH, OW); each pointer is 0
 * when that gradient is not wanted, and each gradient is overwritten:
 * gw = Σ_n gy[n]·im2col(x[n])ᵀ (needs x), gx[n] = col2im(Wᵀ·gy[n]), gb[o] = Σ gy[:, o] (f64 sums).
 * A thread's share: gx for the images n0 ≤ n < n1, and the rows o0 ≤ o < o1
 * of gw and gb (summed over every image; o0 a multiple of 4 keeps the bits
 * of the whole computation). 0, N, 0, O computes everything.
 */
export function conv2dBackward(
  x: usize,
  weight: usize,
  gy: usize,
  gx: usize,
  gw: usize,
  gb: usize,
  N: i32,
  C: i32,
  O: i32,
  g: usize,
  work: usize,
  n0: i32,
  n1: i32,
  o0: i32,
  o1: i32,
): void {
  const w = changetype<Window>(g);
  const H = w.H;
  const W = w.W;
  const kh = w.kh;
  const kw = w.kw;
  const sh = w.sh;
  const sw = w.sw;
  const ph = w.ph;
  const pw = w.pw;
  const OH = w.OH;
  const OW = w.OW;
  const K = C * kh * kw;
  const L = OH * OW;
  const HW = H * W;
  const pointwise = isPointwise(kh, kw, sh, sw, ph, pw);
  const PH = H + 2 * ph;
  const PW = W + 2 * pw;
  const ldL = <usize>L << 2;
  o0 = max(o0, 0);
  o1 = min(o1, O);
  if (gw != 0 && o0 < o1) {
    const l = layoutAt(C, O, g, work);
    const rowSums = <usize>(roundUp(K, 2) * 4) << 2;
    memory.fill(l.sums, 0, <usize>(roundUp(o1 - o0, 4)) * rowSums);
    // The border of the padded image stays zero; each image overwrites the middle.
    if (!pointwise) zero(l.padded, C * PH * PW);
    const chunk = dotImages(K, O, L);
    const colsBytes = <usize>(K * L) << 2;
    const gStep = <usize>(O * L) << 2;
    for (let n = 0; n < N; n += chunk) {
      const m = min(chunk, N - n);
      const gn = gy + ((<usize>(n * O) * <usize>L) << 2);
      if (m > 1) {
        // Several images a pass: laid end to end, so that row o of gy and row k of x (or of the columns)
        // are each one run of m·L (gy's rows o0 … o1 − 1 gathered, x or the columns written so) and the
        // dot products run along them in one loop rather than one per image (+5–50% on short rows).
        const ld = <usize>(m * L) << 2; // accumulateDots reads rows as long as they are apart
        for (let i = 0; i < m; i++) {
          const rowL = <usize>(i * L) << 2;
          for (let o = o0; o < o1; o++) copyRun(gn + <usize>i * gStep + <usize>o * ldL, l.rows + <usize>(o - o0) * ld + rowL, L);
          const xi = x + ((<usize>(n + i) * <usize>(C * HW)) << 2);
          if (pointwise) {
            for (let c = 0; c < C; c++) copyRun(xi + <usize>c * ldL, l.cols + <usize>c * ld + rowL, L);
          } else {
            padImage(xi, C, H, W, ph, pw, l.padded);
            im2colPadded(l.padded, C, PH, PW, kh, kw, sh, sw, OH, OW, l.cols + rowL, ld);
          }
        }
        for (let ob = o0; ob < o1; ob += 4) accumulateDots(l.rows, ld, 0, ob - o0, o1 - 1 - o0, l.cols, 0, 1, K, m * L, l.sums + <usize>(ob - o0) * rowSums);
        continue;
      }
      let b = x + ((<usize>n * <usize>(C * HW)) << 2);
      let bStep = <usize>(C * HW) << 2;
      if (!pointwise) {
        for (let i = 0; i < m; i++) {
          padImage(x + ((<usize>(n + i) * <usize>(C * HW)) << 2), C, H, W, ph, pw, l.padded);
          im2colPadded(l.padded, C, PH, PW, kh, kw, sh, sw, OH, OW, l.cols + <usize>i * colsBytes, ldL);
        }
        b = l.cols;
        bStep = colsBytes;
      }
      for (let ob = o0; ob < o1; ob += 4) accumulateDots(gn, ldL, gStep, ob, o1 - 1, b, bStep, m, K, L, l.sums + <usize>(ob - o0) * rowSums);
    }
    finishDots(l.sums, K, o0, o1, gw);
  }
  if (gx != 0 && n0 < n1) {
    const l = layoutAt(C, O, g, work);
    // Wᵀ (K×O) in panels, once.
    packA(true, weight, K, O, 0, K, 0, O, l.packed);
    const chunk = sideBySide(K, O, L, pointwise);
    const end = min(n1, N);
    for (let n = max(n0, 0); n < end; n++) {
      const m = min(chunk, end - n);
      if (m > 1) {
        // The images side by side (as in the forward): gy's rows gathered into one (O, m·L) matrix, one product.
        const ld = <usize>roundUp(m * L, 16) << 2; // rows 64-byte aligned
        for (let i = 0; i < m; i++) {
          const gi = gy + ((<usize>(n + i) * <usize>(O * L)) << 2);
          for (let o = 0; o < O; o++) copyRun(at(gi, o * L), l.rows + <usize>o * ld + (<usize>(i * L) << 2), L);
        }
        productInPlace(K, m * L, O, l.packed, l.rows, ld, l.cols, ld, l.strip, l.tile);
        for (let i = 0; i < m; i++) {
          // (never pointwise: see sideBySide)
          const gxi = gx + ((<usize>(n + i) * <usize>(C * HW)) << 2);
          gradientIntoImage(l.cols + (<usize>(i * L) << 2), ld, C, H, W, PH, PW, kh, kw, sh, sw, ph, pw, OH, OW, l.padded, gxi);
        }
        n += m - 1;
        continue;
      }
      const gn = gy + ((<usize>n * <usize>(O * L)) << 2);
      const gxn = gx + ((<usize>n * <usize>(C * HW)) << 2);
      if (pointwise) {
        productInPlace(K, L, O, l.packed, gn, ldL, gxn, ldL, l.strip, l.tile);
      } else {
        // dcols = Wᵀ·G[n], summed into the zeroed padded image, whose middle is ∂ℓ/∂x[n].
        productInPlace(K, L, O, l.packed, gn, ldL, l.cols, ldL, l.strip, l.tile);
        gradientIntoImage(l.cols, ldL, C, H, W, PH, PW, kh, kw, sh, sw, ph, pw, OH, OW, l.padded, gxn);
      }
    }
  }
  if (gb != 0) {
    for (let o = o0; o < o1; o++) {
      let s: f64 = 0;
      for (let n = 0; n < N; n++) s += sumRun(gy + ((<usize>(n * O + o) * <usize>L) << 2), L);
      store<f32>(at(gb, o), <f32>s);
    }
  }
}

/** ∂ℓ/∂x of one image (C, H, W) from its column gradient (rows ld bytes apart): col2im into the zeroed padded image, then its middle. */
function gradientIntoImage(
  cols: usize, ld: usize, C: i32, H: i32, W: i32, PH: i32, PW: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, OH: i32, OW: i32,
  padded: usize, gx: usize,
): void {
  zero(padded, C * PH * PW);
  col2imPadded(cols, C, PH, PW, kh, kw, sh, sw, OH, OW, padded, ld);
  for (let c = 0; c < C; c++) {
    for (let ih = 0; ih < H; ih++) copyRun(at(padded, (c * PH + ph + ih) * PW + pw), at(gx, (c * H + ih) * W), W);
  }
}

/**
 * Images per product of conv2dForward and of ∂ℓ/∂x: 1, or where the rows
 * (L = OH·OW) are not a multiple of the microkernel's NR columns, as many as
 * dotImages allows, side by side, so that only the last of their columns
 * goes through a part-filled strip (a 7×7 output computes 56 columns for
 * every 49 one image at a time; side by side the Inception table's stride-2
 * layers 14→7 ran ~9% faster, N 64, one thread). Not for a pointwise
 * convolution, whose image is its column matrix: it would be copied in and
 * its output out, which measured as much as the fuller strips save. Either
 * way every element is the same dot product, so the bits do not change.
 */
@inline function sideBySide(K: i32, O: i32, L: i32, pointwise: bool): i32 {
  return pointwise || L % NR == 0 ? 1 : dotImages(K, O, L);
}

/** Σ_i p[i] over n floats, in f64. */
function sumRun(p: usize, n: i32): f64 {
  let i = 0;
  let s: f64 = 0;
  if (ASC_FEATURE_SIMD) {
    let a = f64x2.splat(0);
    let b = f64x2.splat(0);
    for (; i + 4 <= n; i += 4) {
      a = f64x2.add(a, loadWidened(at(p, i)));
      b = f64x2.add(b, loadWidened(at(p, i + 2)));
    }
    s = sumLanes64(f64x2.add(a, b));
  }
  for (; i < n; i++) s += <f64>load<f32>(at(p, i));
  return s;
}
