import type { Storage } from "../storage.js";

/**
 * Reference GEMM, C = alpha·op(A)·op(B) + beta·C. The loop order of each
 * transpose case keeps the innermost loop on contiguous memory; products
 * accumulate in double precision (JavaScript numbers).
 */
export function gemm(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  a: Storage,
  b: Storage,
  beta: number,
  c: Storage,
): void {
  const size = M * N;
  if (beta === 0) c.fill(0, 0, size);
  else if (beta !== 1) for (let i = 0; i < size; i++) c[i] *= beta;
  if (K === 0 || alpha === 0) return;

  if (!transA && !transB) {
    // C[i, :] += alpha·A[i, k]·B[k, :]
    for (let i = 0; i < M; i++) {
      const ci = i * N;
      for (let k = 0; k < K; k++) {
        const aik = alpha * a[i * K + k];
        const bk = k * N;
        for (let j = 0; j < N; j++) c[ci + j] += aik * b[bk + j];
      }
    }
  } else if (!transA && transB) {
    // C[i, j] += alpha·Σ_k A[i, k]·B[j, k]: dot products of rows.
    for (let i = 0; i < M; i++) {
      const ai = i * K;
      for (let j = 0; j < N; j++) {
        const bj = j * K;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let k = 0;
        for (; k + 3 < K; k += 4) {
          s0 += a[ai + k] * b[bj + k];
          s1 += a[ai + k + 1] * b[bj + k + 1];
          s2 += a[ai + k + 2] * b[bj + k + 2];
          s3 += a[ai + k + 3] * b[bj + k + 3];
        }
        for (; k < K; k++) s0 += a[ai + k] * b[bj + k];
        c[i * N + j] += alpha * (s0 + s1 + s2 + s3);
      }
    }
  } else if (transA && !transB) {
    // A stored K×M: C[i, :] += alpha·A[k, i]·B[k, :]
    for (let k = 0; k < K; k++) {
      const ak = k * M;
      const bk = k * N;
      for (let i = 0; i < M; i++) {
        const aki = alpha * a[ak + i];
        const ci = i * N;
        for (let j = 0; j < N; j++) c[ci + j] += aki * b[bk + j];
      }
    }
  } else {
    // Both transposed: C[i, j] += alpha·Σ_k A[k, i]·B[j, k].
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[k * M + i] * b[j * K + k];
        c[i * N + j] += alpha * s;
      }
    }
  }
}
