// Strided block copies on float32: concat's forward (each input's rows into
// their place in the output's rows) and backward (the gradient's rows cut
// back out), one call per tensor instead of a JavaScript copy per row, which
// over shared memory is slow (every TypedArray store there is atomic).

/**
 * For r < rows: dst[r·dstStride + j] = src[r·srcStride + j], j < len. The
 * blocks do not overlap.
 */
export function copyRows(dst: usize, src: usize, rows: i32, len: i32, dstStride: i32, srcStride: i32): void {
  const bytes = <usize>len << 2;
  for (let r = 0; r < rows; r++) {
    memory.copy(dst + ((<usize>r * <usize>dstStride) << 2), src + ((<usize>r * <usize>srcStride) << 2), bytes);
  }
}
