/**
 * The batch-normalization kernels' rows of the kernel table (see
 * kernelTable.ts), x viewed as (N, C, S) with per-channel f64 vectors
 * (assembly/batchnorm.ts): the moments, the affine map, the backward's two
 * sums and its elementwise pass, and the same three with ReLU or the sigmoid
 * fused, which take the nonlinearity's output y as one more operand.
 */
import type { Args, KernelRow } from "./kernelCall.js";
import { input, nCS, output, workspace } from "./rowParts.js";

const f64 = { type: "f64" } as const;

export const BATCHNORM_KERNELS: readonly KernelRow[] = [
  {
    method: "channelMoments",
    params: ["x", "N", "C", "S", "mean", "variance"],
    export: "channelMoments",
    args: ["x", "N", "C", "S", "mean", "variance"],
    operands: [input("x", (a) => a.N * a.C * a.S, nCS), output("mean", (a) => a.C, undefined, f64), output("variance", (a) => a.C, undefined, f64)],
  },
  {
    method: "channelAffine",
    params: ["x", "y", "N", "C", "S", "center", "scale", "shift"],
    export: "channelAffine",
    args: ["x", "y", "N", "C", "S", "center", "scale", "shift", "work"],
    operands: [
      input("x", (a) => a.N * a.C * a.S, nCS),
      input("center", (a) => a.C, undefined, f64),
      input("scale", (a) => a.C, undefined, f64),
      input("shift", (a) => a.C, undefined, f64),
      output("y", (a) => a.N * a.C * a.S, nCS),
      workspace("work", (a, k) => k.batchNormWorkspaceBytes(a.C)),
    ],
  },
  {
    method: "channelGradSums",
    params: ["x", "dy", "N", "C", "S", "mean", "sumDy", "sumDyXmu"],
    export: "channelGradSums",
    args: ["x", "dy", "N", "C", "S", "mean", "sumDy", "sumDyXmu"],
    operands: [
      input("x", (a) => a.N * a.C * a.S, nCS),
      input("dy", (a) => a.N * a.C * a.S, nCS),
      input("mean", (a) => a.C, undefined, f64),
      output("sumDy", (a) => a.C, undefined, f64),
      output("sumDyXmu", (a) => a.C, undefined, f64),
    ],
  },
  {
    method: "channelGradInput",
    params: ["x", "dy", "dx", "N", "C", "S", "mean", "a", "b", "k"],
    export: "channelGradInput",
    args: ["x", "dy", "dx", "N", "C", "S", "mean", "a", "b", "k", "work"],
    operands: [
      input("x", (a) => a.N * a.C * a.S, nCS),
      input("dy", (a) => a.N * a.C * a.S, nCS),
      input("mean", (a) => a.C, undefined, f64),
      input("a", (a) => a.C, undefined, f64),
      input("b", (a) => a.C, undefined, f64),
      input("k", (a) => a.C, undefined, f64),
      output("dx", (a) => a.N * a.C * a.S, nCS),
      workspace("work", (a, k) => k.batchNormWorkspaceBytes(a.C)),
    ],
  },
  // BN followed by ReLU or the sigmoid: the rows above with the nonlinearity's output y as one more operand,
  // and the nonlinearity as a code (assembly/batchnorm.ts: 1 ReLU, 2 sigmoid).
  {
    method: "channelAffineActivated",
    params: ["x", "y", "N", "C", "S", "center", "scale", "shift", "activation"],
    export: "channelAffineActivated",
    args: ["x", "y", "N", "C", "S", "center", "scale", "shift", "work", "act"],
    derive: activationCode,
    operands: [
      input("x", (a) => a.N * a.C * a.S, nCS),
      input("center", (a) => a.C, undefined, f64),
      input("scale", (a) => a.C, undefined, f64),
      input("shift", (a) => a.C, undefined, f64),
      output("y", (a) => a.N * a.C * a.S, nCS),
      workspace("work", (a, k) => k.batchNormWorkspaceBytes(a.C)),
    ],
  },
  {
    method: "channelGradSumsActivated",
    params: ["x", "dy", "y", "N", "C", "S", "mean", "sumDy", "sumDyXmu", "activation"],
    export: "channelGradSumsActivated",
    args: ["x", "dy", "y", "N", "C", "S", "mean", "sumDy", "sumDyXmu", "act"],
    derive: activationCode,
    operands: [
      input("x", (a) => a.N * a.C * a.S, nCS),
      input("dy", (a) => a.N * a.C * a.S, nCS),
      input("y", (a) => a.N * a.C * a.S, nCS),
      input("mean", (a) => a.C, undefined, f64),
      output("sumDy", (a) => a.C, undefined, f64),
      output("sumDyXmu", (a) => a.C, undefined, f64),
    ],
  },
  {
    method: "channelGradInputActivated",
    params: ["x", "dy", "y", "dx", "N", "C", "S", "mean", "a", "b", "k", "activation"],
    export: "channelGradInputActivated",
    args: ["x", "dy", "y", "dx", "N", "C", "S", "mean", "a", "b", "k", "work", "act"],
    derive: activationCode,
    operands: [
      input("x", (a) => a.N * a.C * a.S, nCS),
      input("dy", (a) => a.N * a.C * a.S, nCS),
      input("y", (a) => a.N * a.C * a.S, nCS),
      input("mean", (a) => a.C, undefined, f64),
      input("a", (a) => a.C, undefined, f64),
      input("b", (a) => a.C, undefined, f64),
      input("k", (a) => a.C, undefined, f64),
      output("dx", (a) => a.N * a.C * a.S, nCS),
      workspace("work", (a, k) => k.batchNormWorkspaceBytes(a.C)),
    ],
  },
];

/** The kernels' code for the nonlinearity, checked: 1 ReLU, 2 sigmoid. */
function activationCode(a: Args): void {
  if (a.activation !== "relu" && a.activation !== "sigmoid") {
    throw new Error(`BN kernels: the fused nonlinearity must be "relu" or "sigmoid"; got ${JSON.stringify(a.activation)}`);
  }
  a.act = a.activation === "relu" ? 1 : 2;
}
