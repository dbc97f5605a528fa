import type { Storage } from "../storage.js";

/** For r < rows: dst[r·dstStride + j] = src[r·srcStride + j], j < len (see backend.ts). */
export function copyRows(dst: Storage, src: Storage, rows: number, len: number, dstStride: number, srcStride: number): void {
  for (let r = 0; r < rows; r++) {
    const d = r * dstStride;
    const s = r * srcStride;
    for (let j = 0; j < len; j++) dst[d + j] = src[s + j];
  }
}
