import type { Storage } from "../storage.js";
import type { Window2d } from "../backend.js";
import { gemm } from "./gemm.js";

// Convolution by im2col + GEMM, one image at a time; see backend.ts for the
// contracts. Written to be read: these are the oracle of the fast backends.

/**
 * The first and one-past-last output column ow whose input column
 * ow·sw − pw + j lies inside [0, W), for kernel column j.
 */
export function validColumns(g: Window2d, j: number): [number, number] {
  const lo = Math.min(g.OW, Math.max(0, Math.ceil((g.pw - j) / g.sw)));
  const hi = Math.min(g.OW, Math.max(lo, Math.floor((g.W - 1 + g.pw - j) / g.sw) + 1));
  return [lo, hi];
}

/** True when the convolution is a plain matrix product: 1×1, stride 1, no padding (x[n] is its own column matrix). */
export function isPointwise(g: Window2d): boolean {
  return g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.ph === 0 && g.pw === 0;
}

/** cols[(c, i, j), (oh, ow)] = x[c, oh·sh − ph + i, ow·sw − pw + j], 0 in the padding. */
export function im2col(x: Storage, C: number, g: Window2d, cols: Storage): void {
  const { H, W, kh, kw, sh, sw, ph, pw, OH, OW } = g;
  const L = OH * OW;
  let row = 0;
  for (let c = 0; c < C; c++) {
    const plane = c * H * W;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++, row++) {
        const [lo, hi] = validColumns(g, j);
        for (let oh = 0; oh < OH; oh++) {
          const dst = row * L + oh * OW;
          const ih = oh * sh - ph + i;
          if (ih < 0 || ih >= H) {
            cols.fill(0, dst, dst + OW);
            continue;
          }
          const src = plane + ih * W - pw + j;
          for (let ow = 0; ow < lo; ow++) cols[dst + ow] = 0;
          for (let ow = lo; ow < hi; ow++) cols[dst + ow] = x[src + ow * sw];
          for (let ow = hi; ow < OW; ow++) cols[dst + ow] = 0;
        }
      }
    }
  }
}

/** dx[c, oh·sh − ph + i, ow·sw − pw + j] += cols[(c, i, j), (oh, ow)] outside the padding. */
export function col2im(cols: Storage, C: number, g: Window2d, dx: Storage): void {
  const { H, W, kh, kw, sh, sw, ph, pw, OH, OW } = g;
  const L = OH * OW;
  let row = 0;
  for (let c = 0; c < C; c++) {
    const plane = c * H * W;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++, row++) {
        const [lo, hi] = validColumns(g, j);
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh - ph + i;
          if (ih < 0 || ih >= H) continue;
          const src = row * L + oh * OW;
          const dst = plane + ih * W - pw + j;
          for (let ow = lo; ow < hi; ow++) dx[dst + ow * sw] += cols[src + ow];
        }
      }
    }
  }
}

/** A zeroed array of the storage's type. */
function scratchLike(s: Storage, n: number): Storage {
  return s instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

/**
 * y[n] = W·im2col(x[n]) (+ b), one GEMM per image: W is (O, K) with
 * K = C·kh·kw, the columns (K, L) with L = OH·OW, y[n] (O, L).
 */
export function conv2dForward(
  x: Storage,
  weight: Storage,
  bias: Storage | null,
  y: Storage,
  N: number,
  C: number,
  O: number,
  g: Window2d,
): void {
  const K = C * g.kh * g.kw;
  const L = g.OH * g.OW;
  const HW = g.H * g.W;
  const cols = isPointwise(g) ? null : scratchLike(x, K * L);
  for (let n = 0; n < N; n++) {
    const xn = x.subarray(n * C * HW, (n + 1) * C * HW);
    if (cols !== null) im2col(xn, C, g, cols);
    const yn = y.subarray(n * O * L, (n + 1) * O * L);
    gemm(false, false, O, L, K, 1, weight, cols ?? xn, 0, yn);
    if (bias !== null) {
      for (let o = 0; o < O; o++) {
        const b = bias[o];
        for (let l = o * L; l < (o + 1) * L; l++) yn[l] += b;
      }
    }
  }
}

/**
 * With G[n] = gy[n] viewed as (O, L):
 *   gw = Σ_n G[n]·cols[n]ᵀ,   gx[n] = col2im(Wᵀ·G[n]),   gb[o] = Σ_{n,l} G[n, o, l].
 * The columns are rebuilt here rather than kept from the forward: im2col
 * costs 1/O of the GEMM, keeping them kh·kw times the input's memory.
 */
export function conv2dBackward(
  x: Storage | null,
  weight: Storage,
  gy: Storage,
  gx: Storage | null,
  gw: Storage | null,
  gb: Storage | null,
  N: number,
  C: number,
  O: number,
  g: Window2d,
): void {
  const K = C * g.kh * g.kw;
  const L = g.OH * g.OW;
  const HW = g.H * g.W;
  const pointwise = isPointwise(g);
  if (gw !== null && x === null) throw new Error("conv2dBackward: the weight gradient needs the input x");
  const cols = gw !== null && !pointwise ? scratchLike(gy, K * L) : null;
  const dcols = gx !== null && !pointwise ? scratchLike(gy, K * L) : null;
  if (gw !== null && N === 0) gw.fill(0);
  for (let n = 0; n < N; n++) {
    const gn = gy.subarray(n * O * L, (n + 1) * O * L);
    if (gw !== null) {
      // gw (+)= G[n]·cols[n]ᵀ: (O, L)·(L, K)
      const xn = x!.subarray(n * C * HW, (n + 1) * C * HW);
      if (cols !== null) im2col(xn, C, g, cols);
      gemm(false, true, O, K, L, 1, gn, cols ?? xn, n === 0 ? 0 : 1, gw);
    }
    if (gx !== null) {
      // dcols = Wᵀ·G[n]: (K, O)·(O, L); a pointwise convolution writes it straight into gx[n]
      const gxn = gx.subarray(n * C * HW, (n + 1) * C * HW);
      if (dcols === null) gemm(true, false, K, L, O, 1, weight, gn, 0, gxn);
      else {
        gemm(true, false, K, L, O, 1, weight, gn, 0, dcols);
        gxn.fill(0);
        col2im(dcols, C, g, gxn);
      }
    }
  }
  if (gb !== null) {
    for (let o = 0; o < O; o++) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let l = (n * O + o) * L, end = l + L; l < end; l++) s += gy[l];
      gb[o] = s;
    }
  }
}
