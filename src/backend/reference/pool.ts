import type { Storage } from "../storage.js";
import type { PoolWindows, Window2d } from "../backend.js";

// Pooling kernels over `planes` (H, W) planes; see backend.ts for the contracts.

export function maxPool2dForward(x: Storage, y: Storage, argmax: Int32Array, planes: number, g: Window2d): void {
  const { H, W, kh, kw, sh, sw, ph, pw, OH, OW } = g;
  for (let p = 0; p < planes; p++) {
    const plane = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = Math.max(0, oh * sh - ph);
      const h1 = Math.min(H, oh * sh - ph + kh);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = Math.max(0, ow * sw - pw);
        const w1 = Math.min(W, ow * sw - pw + kw);
        let best = -Infinity;
        let at = h0 * W + w0;
        for (let ih = h0; ih < h1; ih++) {
          for (let iw = w0; iw < w1; iw++) {
            const v = x[plane + ih * W + iw];
            if (v > best || Number.isNaN(v)) {
              best = v;
              at = ih * W + iw;
            }
          }
        }
        const o = (p * OH + oh) * OW + ow;
        y[o] = best;
        argmax[o] = at;
      }
    }
  }
}

export function maxPool2dBackward(gy: Storage, argmax: Int32Array, gx: Storage, planes: number, g: Window2d): void {
  const { H, W, OH, OW } = g;
  gx.fill(0, 0, planes * H * W);
  for (let p = 0; p < planes; p++) {
    const plane = p * H * W;
    for (let o = p * OH * OW; o < (p + 1) * OH * OW; o++) gx[plane + argmax[o]] += gy[o];
  }
}

export function avgPool2dForward(x: Storage, y: Storage, planes: number, w: PoolWindows): void {
  const { H, W, OH, OW, rows, cols } = w;
  for (let p = 0; p < planes; p++) {
    const plane = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const r0 = rows[3 * oh], r1 = rows[3 * oh + 1], dr = rows[3 * oh + 2];
      for (let ow = 0; ow < OW; ow++) {
        const c0 = cols[3 * ow], c1 = cols[3 * ow + 1], dc = cols[3 * ow + 2];
        let s = 0;
        for (let ih = r0; ih < r1; ih++) for (let iw = c0; iw < c1; iw++) s += x[plane + ih * W + iw];
        y[(p * OH + oh) * OW + ow] = s / (dr * dc);
      }
    }
  }
}

export function avgPool2dBackward(gy: Storage, gx: Storage, planes: number, w: PoolWindows): void {
  const { H, W, OH, OW, rows, cols } = w;
  gx.fill(0, 0, planes * H * W);
  for (let p = 0; p < planes; p++) {
    const plane = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const r0 = rows[3 * oh], r1 = rows[3 * oh + 1], dr = rows[3 * oh + 2];
      for (let ow = 0; ow < OW; ow++) {
        const c0 = cols[3 * ow], c1 = cols[3 * ow + 1], dc = cols[3 * ow + 2];
        const share = gy[(p * OH + oh) * OW + ow] / (dr * dc);
        for (let ih = r0; ih < r1; ih++) for (let iw = c0; iw < c1; iw++) gx[plane + ih * W + iw] += share;
      }
    }
  }
}
