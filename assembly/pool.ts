// Pooling on float32 over `planes` (H, W) planes (see src/backend/backend.ts).
//
// Max pooling scans each window row by row; a value replaces the running
// maximum when strictly greater or NaN, exactly as the reference, so values
// and argmax agree bit for bit. With SIMD, four outputs of a row go at once
// (one lane per output, each lane scanning its own window in the same order)
// over a copy of the plane padded with −∞, so that no window needs clipping.
//
// Average pooling is separable: horizontal sums of each input row over the
// column windows, then vertical sums of those over the row windows (SIMD
// along the output row), divided by the product of the two divisors. The
// backward is the same in reverse.

import { align64 } from "./gemm";
import { Window } from "./window";

@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

/** Max pooling of one output: the maximum of rows h0..h1−1, columns w0..w1−1 of the plane, and its index. */
@inline function maxWindow(plane: usize, W: i32, h0: i32, h1: i32, w0: i32, w1: i32, y: usize, argmax: usize): void {
  let best: f32 = -Infinity;
  let idx = h0 * W + w0;
  for (let ih = h0; ih < h1; ih++) {
    for (let iw = w0; iw < w1; iw++) {
      const v = load<f32>(at(plane, ih * W + iw));
      if (v > best || v != v) {
        best = v;
        idx = ih * W + iw;
      }
    }
  }
  store<f32>(y, best);
  store<i32>(argmax, idx);
}

/** Width of the padded plane the SIMD max pooling scans: room for every lane of the last group of four outputs. */
@inline function paddedWidth(W: i32, kw: i32, sw: i32, pw: i32, OW: i32): i32 {
  return max(W + 2 * pw, (((OW + 3) & ~3) - 1) * sw + kw);
}

/** Bytes of workspace maxPool2dForward needs: with SIMD, one plane padded with −∞ and a spill tile; none without. */
export function maxPool2dWorkspaceBytes(g: usize): usize {
  if (!ASC_FEATURE_SIMD) return 0;
  const w = changetype<Window>(g);
  return align64(<usize>((w.H + 2 * w.ph) * paddedWidth(w.W, w.kw, w.sw, w.pw, w.OW)) << 2) + 32;
}

export function maxPool2dForward(
  x: usize,
  y: usize,
  argmax: usize,
  planes: i32,
  g: usize,
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
  if (ASC_FEATURE_SIMD) {
    maxPool2dForwardSimd(x, y, argmax, planes, H, W, kh, kw, sh, sw, ph, pw, OH, OW, work);
    return;
  }
  for (let p = 0; p < planes; p++) {
    const plane = at(x, p * H * W);
    let o = p * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = max(0, oh * sh - ph);
      const h1 = min(H, oh * sh - ph + kh);
      for (let ow = 0; ow < OW; ow++) {
        maxWindow(plane, W, h0, h1, max(0, ow * sw - pw), min(W, ow * sw - pw + kw), at(y, o + ow), at(argmax, o + ow));
      }
      o += OW;
    }
  }
}

/**
 * Each plane is first copied into the middle of a (H + 2ph)×PW scratch plane
 * of −∞, so every window lies inside it: no clipping, and four outputs per
 * step everywhere. −∞ is never taken (neither greater than the running
 * maximum, which starts at −∞, nor NaN), so the padding changes nothing; the
 * index starts, as in the scalar scan, at the first position of the window
 * inside the plane.
 */
function maxPool2dForwardSimd(
  x: usize,
  y: usize,
  argmax: usize,
  planes: i32,
  H: i32,
  W: i32,
  kh: i32,
  kw: i32,
  sh: i32,
  sw: i32,
  ph: i32,
  pw: i32,
  OH: i32,
  OW: i32,
  work: usize,
): void {
  const PW = paddedWidth(W, kw, sw, pw, OW);
  const PH = H + 2 * ph;
  const padded = work;
  const spill = work + align64(<usize>(PH * PW) << 2);
  const negInf = f32x4.splat(-Infinity);
  let e = 0;
  for (; e + 4 <= PH * PW; e += 4) v128.store(at(padded, e), negInf);
  for (; e < PH * PW; e++) store<f32>(at(padded, e), -Infinity);
  const lanes = i32x4.mul(i32x4(0, 1, 2, 3), i32x4.splat(sw));
  for (let p = 0; p < planes; p++) {
    const plane = at(x, p * H * W);
    for (let ih = 0; ih < H; ih++) {
      const src = at(plane, ih * W);
      const dst = at(padded, (ph + ih) * PW + pw);
      let t = 0;
      for (; t + 4 <= W; t += 4) v128.store(at(dst, t), v128.load(at(src, t)));
      for (; t < W; t++) store<f32>(at(dst, t), load<f32>(at(src, t)));
    }
    let o = p * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      const r0 = oh * sh; // first row of the window in the padded plane
      const h0 = max(0, r0 - ph); // ... and inside the plane
      for (let ow = 0; ow < OW; ow += 4) {
        const c0 = ow * sw; // first column of lane 0's window in the padded plane
        let best = negInf;
        let idx = i32x4.add(i32x4.splat(h0 * W), i32x4.max_s(i32x4.sub(i32x4.add(i32x4.splat(c0), lanes), i32x4.splat(pw)), i32x4.splat(0)));
        for (let i = 0; i < kh; i++) {
          const row = at(padded, (r0 + i) * PW + c0);
          // The index in the plane of lane 0's column 0 (wrong in the padding, never taken there).
          const rowIndex = (r0 + i - ph) * W + c0 - pw;
          for (let j = 0; j < kw; j++) {
            const s = at(row, j);
            let v: v128;
            if (sw == 1) v = v128.load(s);
            else if (sw == 2) v = v128.shuffle<f32>(v128.load(s), v128.load(s, 12), 0, 2, 5, 7);
            else {
              v = f32x4.splat(load<f32>(s));
              v = f32x4.replace_lane(v, 1, load<f32>(at(s, sw)));
              v = f32x4.replace_lane(v, 2, load<f32>(at(s, 2 * sw)));
              v = f32x4.replace_lane(v, 3, load<f32>(at(s, 3 * sw)));
            }
            const take = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
            best = v128.bitselect(v, best, take);
            idx = v128.bitselect(i32x4.add(i32x4.splat(rowIndex + j), lanes), idx, take);
          }
        }
        if (ow + 4 <= OW) {
          v128.store(at(y, o + ow), best);
          v128.store(at(argmax, o + ow), idx);
        } else {
          // The last group sticks out of the row: keep the lanes inside it.
          v128.store(spill, best);
          v128.store(spill, idx, 16);
          for (let q = 0; q < OW - ow; q++) {
            store<f32>(at(y, o + ow + q), load<f32>(at(spill, q)));
            store<i32>(at(argmax, o + ow + q), load<i32>(at(spill, 4 + q)));
          }
        }
      }
      o += OW;
    }
  }
}

/**
 * gx = 0, then gx[p, argmax[p, o]] += gy[p, o]. An index outside [0, H·W)
 * is skipped (it would write into another plane); returns how many were.
 */
export function maxPool2dBackward(gy: usize, argmax: usize, gx: usize, planes: i32, H: i32, W: i32, OH: i32, OW: i32): i32 {
  const HW = H * W;
  const L = OH * OW;
  let bad = 0;
  memory.fill(gx, 0, (<usize>planes * <usize>HW) << 2);
  for (let p = 0; p < planes; p++) {
    const plane = at(gx, p * HW);
    const g = at(gy, p * L);
    const a = argmax + ((<usize>p * <usize>L) << 2);
    for (let o = 0; o < L; o++) {
      const i = load<i32>(at(a, o));
      if (<u32>i >= <u32>HW) {
        bad++;
        continue;
      }
      const d = at(plane, i);
      store<f32>(d, load<f32>(d) + load<f32>(at(g, o)));
    }
  }
  return bad;
}

/**
 * Bytes of workspace avgPool2dForward and avgPool2dBackward need: H·OW
 * partial sums and OW divisors; for the 3×3 stride-1 window (box3), three
 * planes of H·OW (the divisors, the vertical sums with a float of zeros
 * before and after, the scaled gradient).
 */
export function avgPool2dWorkspaceBytes(H: i32, OW: i32): usize {
  return max(align64(<usize>(H * OW) << 2) + align64(<usize>OW << 2), 3 * align64(<usize>(H * OW + 32) << 2));
}

/** Where box3's planes lie in the workspace: divisors, vertical sums (16 bytes in), scaled gradient. */
@inline function box3Plane(work: usize, H: i32, W: i32, k: i32): usize {
  return work + <usize>k * align64(<usize>(H * W + 32) << 2);
}

/** div[oh·W + ow] = dr(oh)·dc(ow) as f32, the divisor of every output of a call. */
function box3Divisors(rows: usize, cols: usize, H: i32, W: i32, div: usize): void {
  for (let oh = 0; oh < H; oh++) {
    const dr = <f32>load<i32>(at(rows, 3 * oh + 2));
    for (let ow = 0; ow < W; ow++) store<f32>(at(div, oh * W + ow), dr * <f32>load<i32>(at(cols, 3 * ow + 2)));
  }
}

/**
 * dst (H×W, H, W ≥ 2) = the sums over the 3×3 windows around each value of
 * src, clipped to the plane: column sums v = src[i − W] + src[i] + src[i + W]
 * over the plane as one run of H·W values (the first and last rows with their
 * two terms), then dst[i] = v[i − 1] + v[i] + v[i + 1] over that run, the
 * first and last value of each row recomputed without the neighbour in the
 * next row. v holds H·W + 2 floats from v − 4, its first and last zero.
 */
function box3(src: usize, dst: usize, H: i32, W: i32, v: usize): void {
  const HW = H * W;
  store<f32>(v - 4, 0);
  store<f32>(at(v, HW), 0);
  // Column sums.
  sumRuns2(src, at(src, W), v, W);
  sumRuns3(src, at(src, W), at(src, 2 * W), at(v, W), HW - 2 * W);
  sumRuns2(at(src, HW - 2 * W), at(src, HW - W), at(v, HW - W), W);
  // Row sums of three, over the whole run.
  sumRuns3(v - 4, v, v + 4, dst, HW);
  for (let r = 0; r < HW; r += W) {
    store<f32>(at(dst, r), load<f32>(at(v, r)) + load<f32>(at(v, r + 1)));
    store<f32>(at(dst, r + W - 1), load<f32>(at(v, r + W - 2)) + load<f32>(at(v, r + W - 1)));
  }
}

/** d[i] = a[i] + b[i] for i < n. */
@inline function sumRuns2(a: usize, b: usize, d: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) v128.store(at(d, i), f32x4.add(v128.load(at(a, i)), v128.load(at(b, i))));
  }
  for (; i < n; i++) store<f32>(at(d, i), load<f32>(at(a, i)) + load<f32>(at(b, i)));
}

/** d[i] = (a[i] + b[i]) + c[i] for i < n. */
@inline function sumRuns3(a: usize, b: usize, c: usize, d: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) v128.store(at(d, i), f32x4.add(f32x4.add(v128.load(at(a, i)), v128.load(at(b, i))), v128.load(at(c, i))));
  }
  for (; i < n; i++) store<f32>(at(d, i), load<f32>(at(a, i)) + load<f32>(at(b, i)) + load<f32>(at(c, i)));
}

/** d[i] = a[i] / b[i] for i < n. */
function divideRuns(a: usize, b: usize, d: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) v128.store(at(d, i), f32x4.div(v128.load(at(a, i)), v128.load(at(b, i))));
  }
  for (; i < n; i++) store<f32>(at(d, i), load<f32>(at(a, i)) / load<f32>(at(b, i)));
}

/** The column divisors as f32 at `div`. */
@inline function columnDivisors(cols: usize, OW: i32, div: usize): void {
  for (let ow = 0; ow < OW; ow++) store<f32>(at(div, ow), <f32>load<i32>(at(cols, 3 * ow + 2)));
}

/**
 * Whether the column windows are a 3-wide window moving by 1 with one
 * column of padding (Inception's pooling branch): cols[ow] = [ow − 1, ow + 2)
 * clipped to the row, OW = W.
 */
function isUnit3(cols: usize, OW: i32, W: i32): bool {
  if (OW != W || W < 2) return false;
  for (let ow = 0; ow < OW; ow++) {
    if (load<i32>(at(cols, 3 * ow)) != max(ow - 1, 0) || load<i32>(at(cols, 3 * ow + 1)) != min(ow + 2, W)) return false;
  }
  return true;
}

/** dst[i] = src[i − 1] + src[i] + src[i + 1] for i < n (n ≥ 2), the terms outside [0, n) left out; summed left to right. */
function sum3(src: usize, dst: usize, n: i32): void {
  store<f32>(dst, load<f32>(src) + load<f32>(src, 4));
  let i = 1;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 < n; i += 4) {
      const p = at(src, i);
      v128.store(at(dst, i), f32x4.add(f32x4.add(v128.load(p - 4), v128.load(p)), v128.load(p + 4)));
    }
  }
  for (; i < n - 1; i++) store<f32>(at(dst, i), load<f32>(at(src, i - 1)) + load<f32>(at(src, i)) + load<f32>(at(src, i + 1)));
  store<f32>(at(dst, n - 1), load<f32>(at(src, n - 2)) + load<f32>(at(src, n - 1)));
}

/**
 * y[p, oh, ow] = Σ_{rows of oh} Σ_{cols of ow} x / (dr·dc); rows and cols
 * are the window tables (start, end, divisor per output), as i32.
 */
export function avgPool2dForward(x: usize, y: usize, planes: i32, H: i32, W: i32, OH: i32, OW: i32, rows: usize, cols: usize, work: usize): void {
  const unit3 = isUnit3(cols, OW, W);
  if (unit3 && isUnit3(rows, OH, H)) {
    // 3×3, stride 1, padding 1 (Inception's pooling branch): box sums of each plane, then the divisors.
    const d = box3Plane(work, H, W, 0), v = box3Plane(work, H, W, 1) + 16;
    box3Divisors(rows, cols, H, W, d);
    for (let p = 0; p < planes; p++) {
      const yp = at(y, p * H * W);
      box3(at(x, p * H * W), yp, H, W, v);
      divideRuns(yp, d, yp, H * W);
    }
    return;
  }
  const hs = work;
  const div = work + align64(<usize>(H * OW) << 2);
  columnDivisors(cols, OW, div);
  for (let p = 0; p < planes; p++) {
    const plane = at(x, p * H * W);
    // hs[ih, ow] = Σ_{iw ∈ cols[ow]} x[ih, iw]
    for (let ih = 0; ih < H; ih++) {
      const xr = at(plane, ih * W);
      const hr = at(hs, ih * OW);
      if (unit3) {
        sum3(xr, hr, W);
        continue;
      }
      for (let ow = 0; ow < OW; ow++) {
        const c1 = load<i32>(at(cols, 3 * ow + 1));
        let s: f32 = 0;
        for (let iw = load<i32>(at(cols, 3 * ow)); iw < c1; iw++) s += load<f32>(at(xr, iw));
        store<f32>(at(hr, ow), s);
      }
    }
    // y[oh, ow] = Σ_{ih ∈ rows[oh]} hs[ih, ow] / (dr·dc)
    for (let oh = 0; oh < OH; oh++) {
      const r0 = load<i32>(at(rows, 3 * oh));
      const r1 = load<i32>(at(rows, 3 * oh + 1));
      const dr = <f32>load<i32>(at(rows, 3 * oh + 2));
      const yr = at(y, (p * OH + oh) * OW);
      let ow = 0;
      if (ASC_FEATURE_SIMD) {
        const vdr = f32x4.splat(dr);
        for (; ow + 4 <= OW; ow += 4) {
          let s = f32x4.splat(0);
          for (let ih = r0; ih < r1; ih++) s = f32x4.add(s, v128.load(at(hs, ih * OW + ow)));
          v128.store(at(yr, ow), f32x4.div(s, f32x4.mul(vdr, v128.load(at(div, ow)))));
        }
      }
      for (; ow < OW; ow++) {
        let s: f32 = 0;
        for (let ih = r0; ih < r1; ih++) s += load<f32>(at(hs, ih * OW + ow));
        store<f32>(at(yr, ow), s / (dr * load<f32>(at(div, ow))));
      }
    }
  }
}

/** gx = 0, then each input of window (oh, ow) receives gy[p, oh, ow] / (dr·dc). */
export function avgPool2dBackward(gy: usize, gx: usize, planes: i32, H: i32, W: i32, OH: i32, OW: i32, rows: usize, cols: usize, work: usize): void {
  const unit3 = isUnit3(cols, OW, W);
  if (unit3 && isUnit3(rows, OH, H)) {
    // 3×3, stride 1, padding 1: the window is its own adjoint, so gx = box sums of gy / divisors.
    const d = box3Plane(work, H, W, 0), v = box3Plane(work, H, W, 1) + 16, t = box3Plane(work, H, W, 2);
    box3Divisors(rows, cols, H, W, d);
    for (let p = 0; p < planes; p++) {
      divideRuns(at(gy, p * H * W), d, t, H * W);
      box3(t, at(gx, p * H * W), H, W, v);
    }
    return;
  }
  const vs = work;
  const div = work + align64(<usize>(H * OW) << 2);
  columnDivisors(cols, OW, div);
  for (let p = 0; p < planes; p++) {
    // vs[ih, ow] = Σ_{oh: ih ∈ rows[oh]} gy[oh, ow] / (dr·dc)
    memory.fill(vs, 0, <usize>(H * OW) << 2);
    for (let oh = 0; oh < OH; oh++) {
      const r0 = load<i32>(at(rows, 3 * oh));
      const r1 = load<i32>(at(rows, 3 * oh + 1));
      const dr = <f32>load<i32>(at(rows, 3 * oh + 2));
      const gr = at(gy, (p * OH + oh) * OW);
      let ow = 0;
      if (ASC_FEATURE_SIMD) {
        const vdr = f32x4.splat(dr);
        for (; ow + 4 <= OW; ow += 4) {
          const share = f32x4.div(v128.load(at(gr, ow)), f32x4.mul(vdr, v128.load(at(div, ow))));
          for (let ih = r0; ih < r1; ih++) {
            const q = at(vs, ih * OW + ow);
            v128.store(q, f32x4.add(v128.load(q), share));
          }
        }
      }
      for (; ow < OW; ow++) {
        const share = load<f32>(at(gr, ow)) / (dr * load<f32>(at(div, ow)));
        for (let ih = r0; ih < r1; ih++) {
          const q = at(vs, ih * OW + ow);
          store<f32>(q, load<f32>(q) + share);
        }
      }
    }
    // gx[ih, iw] = Σ_{ow: iw ∈ cols[ow]} vs[ih, ow]
    const plane = at(gx, p * H * W);
    if (unit3) {
      // The 3-wide stride-1 window is its own adjoint: ow ∈ {iw − 1, iw, iw + 1} within the row.
      for (let ih = 0; ih < H; ih++) sum3(at(vs, ih * OW), at(plane, ih * W), W);
      continue;
    }
    memory.fill(plane, 0, <usize>(H * W) << 2);
    for (let ih = 0; ih < H; ih++) {
      const gr = at(plane, ih * W);
      const vr = at(vs, ih * OW);
      for (let ow = 0; ow < OW; ow++) {
        const v = load<f32>(at(vr, ow));
        const c1 = load<i32>(at(cols, 3 * ow + 1));
        for (let iw = load<i32>(at(cols, 3 * ow)); iw < c1; iw++) {
          const q = at(gr, iw);
          store<f32>(q, load<f32>(q) + v);
        }
      }
    }
  }
}
