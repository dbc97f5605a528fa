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

import { gemm, gemmWorkspaceBytes } from "./gemm";
import { loadWidened, sumLanes64 } from "./simd";
import { Window } from "./window";

@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

@inline function align64(bytes: usize): usize {
  return (bytes + 63) & ~(<usize>63);
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
@inline function copyRun(src: usize, dst: usize, n: i32): void {
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
 * im2col from a padded image (C, PH, PW): row (c, i, j) of cols, column
 * (oh, ow) = padded[c, oh·sh + i, ow·sw + j]. Every window lies inside the
 * padded image, so each output row is one strided run, without clipping.
 */
function im2colPadded(padded: usize, C: i32, PH: i32, PW: i32, kh: i32, kw: i32, sh: i32, sw: i32, OH: i32, OW: i32, cols: usize): void {
  let d = cols;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        for (let oh = 0; oh < OH; oh++, d += <usize>OW << 2) gatherRun(at(padded, (c * PH + oh * sh + i) * PW + j), d, OW, sw);
      }
    }
  }
}

/** The adjoint of im2colPadded: padded[c, oh·sh + i, ow·sw + j] += cols[(c, i, j), (oh, ow)]. */
function col2imPadded(cols: usize, C: i32, PH: i32, PW: i32, kh: i32, kw: i32, sh: i32, sw: i32, OH: i32, OW: i32, padded: usize): void {
  let s = cols;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
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
  const PH = H + 2 * ph;
  const PW = W + 2 * pw;
  zero(work, C * PH * PW);
  padImage(x, C, H, W, ph, pw, work);
  im2colPadded(work, C, PH, PW, kh, kw, sh, sw, OH, OW, cols);
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
  const PH = H + 2 * ph;
  const PW = W + 2 * pw;
  zero(work, C * PH * PW);
  col2imPadded(cols, C, PH, PW, kh, kw, sh, sw, OH, OW, work);
  for (let c = 0; c < C; c++) {
    for (let ih = 0; ih < H; ih++) scatterAddRun(at(work, (c * PH + ph + ih) * PW + pw), at(dx, (c * H + ih) * W), W, 1);
  }
}

@inline function isPointwise(kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32): bool {
  return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
}

/**
 * Bytes of workspace conv2dForward and conv2dBackward need: one column
 * matrix, one padded image and the largest GEMM workspace.
 */
export function conv2dWorkspaceBytes(C: i32, O: i32, window: usize): usize {
  const w = changetype<Window>(window);
  const H = w.H, W = w.W, kh = w.kh, kw = w.kw, ph = w.ph, pw = w.pw, OH = w.OH, OW = w.OW;
  const K = C * kh * kw;
  const L = OH * OW;
  const g = max(gemmWorkspaceBytes(O, L, K), max(gemmWorkspaceBytes(O, K, L), gemmWorkspaceBytes(K, L, O)));
  return align64(<usize>K * <usize>L << 2) + paddedImageBytes(C, H, W, ph, pw) + g;
}

/**
 * y[n] = W·im2col(x[n]) (+ bias) for the images n0 ≤ n < n1 (a thread's
 * share; 0 and N for all), one GEMM per image; bias = 0 for none.
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
  const cols = work;
  const padded = cols + align64(<usize>K * <usize>L << 2);
  const gemmWork = padded + paddedImageBytes(C, H, W, ph, pw);
  // The border of the padded image stays zero; each image overwrites the middle.
  if (!pointwise) zero(padded, C * PH * PW);
  for (let n = max(n0, 0); n < min(n1, N); n++) {
    const xn = x + ((<usize>n * <usize>(C * H * W)) << 2);
    const yn = y + ((<usize>n * <usize>(O * L)) << 2);
    let b = xn;
    if (!pointwise) {
      padImage(xn, C, H, W, ph, pw, padded);
      im2colPadded(padded, C, PH, PW, kh, kw, sh, sw, OH, OW, cols);
      b = cols;
    }
    gemm(false, false, O, L, K, 1, weight, b, 0, yn, gemmWork);
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
  const cols = work;
  const padded = cols + align64(<usize>K * <usize>L << 2);
  const gemmWork = padded + paddedImageBytes(C, H, W, ph, pw);
  o0 = max(o0, 0);
  o1 = min(o1, O);
  if (gw != 0 && o0 < o1) {
    const rows = o1 - o0;
    const gwRows = gw + ((<usize>o0 * <usize>K) << 2);
    if (N == 0) zero(gwRows, rows * K);
    // The border of the padded image stays zero; each image overwrites the middle.
    if (!pointwise) zero(padded, C * PH * PW);
    for (let n = 0; n < N; n++) {
      const gn = gy + ((<usize>(n * O + o0) * <usize>L) << 2);
      const xn = x + ((<usize>n * <usize>(C * HW)) << 2);
      let b = xn;
      if (!pointwise) {
        padImage(xn, C, H, W, ph, pw, padded);
        im2colPadded(padded, C, PH, PW, kh, kw, sh, sw, OH, OW, cols);
        b = cols;
      }
      gemm(false, true, rows, K, L, 1, gn, b, n == 0 ? 0 : 1, gwRows, gemmWork);
    }
  }
  if (gx != 0) {
    for (let n = max(n0, 0); n < min(n1, N); n++) {
      const gn = gy + ((<usize>n * <usize>(O * L)) << 2);
      const gxn = gx + ((<usize>n * <usize>(C * HW)) << 2);
      if (pointwise) {
        gemm(true, false, K, L, O, 1, weight, gn, 0, gxn, gemmWork);
      } else {
        // dcols = Wᵀ·G[n], summed into the zeroed padded image, whose middle is ∂ℓ/∂x[n].
        gemm(true, false, K, L, O, 1, weight, gn, 0, cols, gemmWork);
        zero(padded, C * PH * PW);
        col2imPadded(cols, C, PH, PW, kh, kw, sh, sw, OH, OW, padded);
        for (let c = 0; c < C; c++) {
          for (let ih = 0; ih < H; ih++) copyRun(at(padded, (c * PH + ph + ih) * PW + pw), at(gxn, (c * H + ih) * W), W);
        }
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
