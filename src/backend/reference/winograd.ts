import type { Storage } from "../storage.js";
import { isWinogradWindow, transposedWindow, type Window2d } from "../backend.js";

// Winograd F(2×2, 3×3) (Lavin & Gray 2016), one 2×2 tile of outputs at a
// time, in double precision; see backend.ts for the contracts and
// assembly/winograd.ts for the fast kernel. Written to be read: the oracle
// of that kernel, and itself tested against the direct convolution.
//
//   Y = Aᵀ [ Σ_c (G g Gᵀ) ⊙ (Bᵀ d B) ] A,  d the 4×4 input patch, g the 3×3 kernel

const BT = [
  [1, 0, -1, 0],
  [0, 1, 1, 0],
  [0, -1, 1, 0],
  [0, 1, 0, -1],
];
const G = [
  [1, 0, 0],
  [0.5, 0.5, 0.5],
  [0.5, -0.5, 0.5],
  [0, 0, 1],
];
const AT = [
  [1, 1, 1, 0],
  [0, 1, -1, -1],
];
const A = [0, 1, 2, 3].map((i) => AT.map((row) => row[i]));
const GT = [0, 1, 2].map((i) => G.map((row) => row[i]));

/** L·X·Rᵀ for small dense matrices. */
function sandwich(L: number[][], X: number[][], R: number[][]): number[][] {
  const LX = L.map((row) => X[0].map((_, j) => row.reduce((s, l, k) => s + l * X[k][j], 0)));
  return LX.map((row) => R.map((r) => row.reduce((s, v, k) => s + v * r[k], 0)));
}

function checkWindow(kernel: string, g: Window2d): void {
  if (!isWinogradWindow(g)) {
    throw new Error(`${kernel}: Winograd F(2×2, 3×3) takes a 3×3 window with stride 1 and padding ≤ 2; got ${JSON.stringify(g)}. Use conv2dForward/conv2dBackward`);
  }
}

/**
 * y = conv(x, kernel(o, c)) + bias, 3×3 stride 1, the kernel of output o and
 * input c read by `kernel` as a 3×3 array.
 */
function winograd(
  x: Storage,
  kernel: (o: number, c: number) => number[][],
  bias: Storage | null,
  y: Storage,
  N: number,
  C: number,
  O: number,
  g: Window2d,
): void {
  const { H, W, ph, pw, OH, OW } = g;
  // U[o][c] = G g Gᵀ, once per call.
  const U = Array.from({ length: O }, (_, o) => Array.from({ length: C }, (_, c) => sandwich(G, kernel(o, c), G)));
  const at = (n: number, c: number, r: number, s: number) => (r >= 0 && r < H && s >= 0 && s < W ? x[((n * C + c) * H + r) * W + s] : 0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh += 2) {
      for (let ow = 0; ow < OW; ow += 2) {
        // V[c] = Bᵀ d B of the 4×4 patch whose corner is input (oh − ph, ow − pw).
        const V = Array.from({ length: C }, (_, c) => {
          const d = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => at(n, c, oh - ph + i, ow - pw + j)));
          return sandwich(BT, d, BT);
        });
        for (let o = 0; o < O; o++) {
          const m = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => V.reduce((s, v, c) => s + U[o][c][i][j] * v[i][j], 0)));
          const Y = sandwich(AT, m, AT);
          for (let i = 0; i < 2 && oh + i < OH; i++) {
            for (let j = 0; j < 2 && ow + j < OW; j++) y[((n * O + o) * OH + oh + i) * OW + ow + j] = Y[i][j] + (bias === null ? 0 : bias[o]);
          }
        }
      }
    }
  }
}

/** conv2dForward by Winograd F(2×2, 3×3), for a 3×3 window with stride 1 and padding ≤ 2. */
export function conv2dWinogradForward(
  x: Storage,
  weight: Storage,
  bias: Storage | null,
  y: Storage,
  N: number,
  C: number,
  O: number,
  g: Window2d,
): void {
  checkWindow("conv2dWinogradForward", g);
  const kernel = (o: number, c: number) => [0, 1, 2].map((i) => [0, 1, 2].map((j) => weight[((o * C + c) * 3 + i) * 3 + j]));
  winograd(x, kernel, bias, y, N, C, O, g);
}

/**
 * gx = ∂ℓ/∂x of conv2dForward: gy (N, O, OH, OW) convolved with the kernel
 * rotated by 180° and the channel axes swapped, g'[c, o, i, j] = W[o, c, 2 − i, 2 − j],
 * over the transposed window (padding 2 − p).
 */
export function conv2dWinogradBackwardInput(weight: Storage, gy: Storage, gx: Storage, N: number, C: number, O: number, g: Window2d): void {
  checkWindow("conv2dWinogradBackwardInput", g);
  const kernel = (c: number, o: number) => [0, 1, 2].map((i) => [0, 1, 2].map((j) => weight[((o * C + c) * 3 + 2 - i) * 3 + 2 - j]));
  winograd(gy, kernel, null, gx, N, O, C, transposedWindow(g));
}

/**
 * gw = ∂ℓ/∂W of conv2dForward from gy, by the transpose of the same
 * algorithm: per tile ∂M = A ∂y Aᵀ (the 2×2 block of gy spread over 4×4),
 * ∂U[o, c] = Σ_tiles ∂M[o] ⊙ (Bᵀ d_c B), and ∂g = Gᵀ ∂U G. gw is overwritten.
 */
export function conv2dWinogradBackwardWeight(x: Storage, gy: Storage, gw: Storage, N: number, C: number, O: number, g: Window2d): void {
  checkWindow("conv2dWinogradBackwardWeight", g);
  const { H, W, ph, pw, OH, OW } = g;
  const dU = Array.from({ length: O * C }, () => [0, 1, 2, 3].map(() => [0, 0, 0, 0]));
  const at = (n: number, c: number, r: number, s: number) => (r >= 0 && r < H && s >= 0 && s < W ? x[((n * C + c) * H + r) * W + s] : 0);
  const dy = (n: number, o: number, r: number, s: number) => (r < OH && s < OW ? gy[((n * O + o) * OH + r) * OW + s] : 0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh += 2) {
      for (let ow = 0; ow < OW; ow += 2) {
        const V = Array.from({ length: C }, (_, c) => {
          const d = [0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => at(n, c, oh - ph + i, ow - pw + j)));
          return sandwich(BT, d, BT);
        });
        for (let o = 0; o < O; o++) {
          const dM = sandwich(A, [0, 1].map((i) => [0, 1].map((j) => dy(n, o, oh + i, ow + j))), A);
          for (let c = 0; c < C; c++) {
            const u = dU[o * C + c];
            for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) u[i][j] += dM[i][j] * V[c][i][j];
          }
        }
      }
    }
  }
  for (let k = 0; k < O * C; k++) {
    const dg = sandwich(GT, dU[k], GT);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) gw[k * 9 + i * 3 + j] = dg[i][j];
  }
}
