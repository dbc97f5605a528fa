/**
 * The Winograd F(2×2, 3×3) kernels' rows of the kernel table (see
 * kernelTable.ts): the forward and ∂ℓ/∂x share one export (assembly/winograd.ts,
 * conv2dWinograd), ∂ℓ/∂W has its own. The forward and ∂ℓ/∂x split between
 * threads by images, ∂ℓ/∂W by rows of the weight (each summing over every
 * image in one order), so the bits do not depend on the thread count.
 */
import { isWinogradWindow, transposedWindow } from "../backend.js";
import { checkWindow, windowStruct } from "./checks.js";
import type { Args, KernelRow } from "./kernelCall.js";
import { input, nchw, noyx, ockk, output, windowOperand, workspace } from "./rowParts.js";
import { splitRange } from "./threads.js";

const checkedWinogradWindow = (method: string) => (a: Args) => {
  checkWindow(method, a.g);
  if (!isWinogradWindow(a.g)) throw new RangeError(`wasm backend: ${method}: Winograd F(2×2, 3×3) takes a 3×3 window with stride 1 and padding ≤ 2; got ${JSON.stringify(a.g)}`);
};

export const WINOGRAD_KERNELS: readonly KernelRow[] = [
  {
    method: "conv2dWinogradForward",
    params: ["x", "weight", "bias", "y", "N", "C", "O", "g"],
    export: "conv2dWinograd",
    args: ["x", "weight", "bias", "y", "N", "C", "O", "g", "flip", "work", "n0", "n1"],
    check: checkedWinogradWindow("conv2dWinogradForward"),
    derive: (a) => Object.assign(a, { flip: 0, n0: 0, n1: a.N }),
    operands: [
      input("x", (a) => a.N * a.C * a.g.H * a.g.W, nchw),
      input("weight", (a) => a.O * a.C * 9, ockk),
      input("bias", (a) => a.O, (a) => `${a.O} output channels`),
      output("y", (a) => a.N * a.O * a.g.OH * a.g.OW, noyx),
      windowOperand,
      workspace("work", (a, k, p) => k.winogradWorkspaceBytes(a.C, a.O, p.g)),
    ],
    // Each thread transforms and multiplies its own images (with its own copy of the transformed weights).
    split: {
      kernel: "conv2dWinograd",
      args: ["x", "weight", "bias", "y", "N", "C", "O", "g", "flip", "work", "n0", "n1"],
      when: (a) => a.N > 1,
      work: (a) => a.N * a.O * a.C * 9 * a.g.OH * a.g.OW,
      shares: (a, T) => splitRange(a.N, T, 1).map(([n0, n1]) => ({ n0, n1 })),
    },
  },
  {
    // ∂ℓ/∂x: gy convolved with the rotated, transposed kernel over the transposed window (the export's C and O swap).
    method: "conv2dWinogradBackwardInput",
    params: ["weight", "gy", "gx", "N", "C", "O", "g"],
    export: "conv2dWinograd",
    args: ["gy", "weight", "bias", "gx", "N", "O", "C", "gT", "flip", "work", "n0", "n1"],
    check: checkedWinogradWindow("conv2dWinogradBackwardInput"),
    derive: (a) => Object.assign(a, { bias: 0, flip: 1, n0: 0, n1: a.N }),
    operands: [
      input("weight", (a) => a.O * a.C * 9, ockk),
      input("gy", (a) => a.N * a.O * a.g.OH * a.g.OW, noyx),
      output("gx", (a) => a.N * a.C * a.g.H * a.g.W, nchw),
      { name: "gT", role: "input", type: "i32", size: () => 10, from: (a) => windowStruct(transposedWindow(a.g)) },
      workspace("work", (a, k, p) => k.winogradWorkspaceBytes(a.O, a.C, p.gT)),
    ],
    split: {
      kernel: "conv2dWinograd",
      args: ["gy", "weight", "bias", "gx", "N", "O", "C", "gT", "flip", "work", "n0", "n1"],
      when: (a) => a.N > 1,
      work: (a) => a.N * a.O * a.C * 9 * a.g.OH * a.g.OW,
      shares: (a, T) => splitRange(a.N, T, 1).map(([n0, n1]) => ({ n0, n1 })),
    },
  },
  {
    method: "conv2dWinogradBackwardWeight",
    params: ["x", "gy", "gw", "N", "C", "O", "g"],
    export: "conv2dWinogradWeight",
    args: ["x", "gy", "gw", "N", "C", "O", "g", "work", "o0", "o1"],
    check: checkedWinogradWindow("conv2dWinogradBackwardWeight"),
    derive: (a) => Object.assign(a, { o0: 0, o1: a.O }),
    operands: [
      input("x", (a) => a.N * a.C * a.g.H * a.g.W, nchw),
      input("gy", (a) => a.N * a.O * a.g.OH * a.g.OW, noyx),
      output("gw", (a) => a.O * a.C * 9, ockk),
      windowOperand,
      workspace("work", (a, k, p) => k.winogradWeightWorkspaceBytes(a.C, a.O, p.g)),
    ],
    // Each thread: its rows of ∂W, summed over every image in the same order.
    split: {
      kernel: "conv2dWinogradWeight",
      args: ["x", "gy", "gw", "N", "C", "O", "g", "work", "o0", "o1"],
      when: (a) => a.O > 4,
      work: (a) => a.N * a.O * a.C * 9 * a.g.OH * a.g.OW,
      shares: (a, T) => splitRange(a.O, T, 4).map(([o0, o1]) => ({ o0, o1 })),
    },
  },
];
