/**
 * The kernel table: every kernel of the wasm backend as one row — the
 * Backend method's parameters, its operands (role, size, what the size
 * stands for), the export and its arguments, and how it splits between
 * threads — read by the one call path in kernelCall.ts. Adding a kernel: write
 * it in assembly/ (its signature reaches KernelExports through the build)
 * and in reference/, and add its row here (or, for a family of kernels, in a
 * file of rows beside it, as winogradRows.ts; rowParts.ts has the shorthands).
 */
import { checkPoolWindows, checkTargets, checkWindow, need } from "./checks.js";
import type { Args, KernelRow } from "./kernelCall.js";
import { checkedWindow, chw, input, nchw, noyx, ockk, output, planesIn, planesOut, update, windowOperand, workspace } from "./rowParts.js";
import { splitRange } from "./threads.js";
import { BATCHNORM_KERNELS } from "./batchnormRows.js";
import { WINOGRAD_KERNELS } from "./winogradRows.js";

/** y = f(x), and dx = f(u, dy), elementwise over the first operand's length. */
const unary = (method: "sigmoid" | "relu"): KernelRow => ({
  method,
  params: ["x", "y"],
  export: method,
  args: ["x", "y", "n"],
  derive: (a) => (a.n = a.x.length),
  operands: [input("x", (a) => a.n), output("y", (a) => a.n, (a) => `${a.n} elements, as x`)],
});
const binary = (method: "sigmoidBackward" | "reluBackward", u: "x" | "y"): KernelRow => ({
  method,
  params: [u, "dy", "dx"],
  export: method,
  args: [u, "dy", "dx", "n"],
  derive: (a) => (a.n = a[u].length),
  operands: [input(u, (a) => a.n), input("dy", (a) => a.n, (a) => `${a.n} elements, as ${u}`), output("dx", (a) => a.n, (a) => `${a.n} elements, as ${u}`)],
});

const i32 = { type: "i32" } as const;

/** copyRows' blocks must not overlap within dst or src. */
const copyRowsChecks = (rows: number, len: number, dstStride: number, srcStride: number) => {
  if (rows > 1 && !(len <= dstStride && len <= srcStride)) {
    throw new RangeError(`wasm backend: copyRows: blocks of ${len} overlap at strides ${dstStride} and ${srcStride}`);
  }
};

export const KERNELS: readonly KernelRow[] = [
  {
    method: "gemm",
    params: ["transA", "transB", "M", "N", "K", "alpha", "a", "b", "beta", "c"],
    export: "gemm",
    args: ["transA", "transB", "M", "N", "K", "alpha", "a", "b", "beta", "c", "work"],
    skip: (a) => a.M <= 0 || a.N <= 0,
    operands: [
      input("a", (a) => a.M * a.K, (a) => `op(A) of ${a.M}×${a.K}`),
      input("b", (a) => a.K * a.N, (a) => `op(B) of ${a.K}×${a.N}`),
      // beta = 0 never reads C, so it need not be copied in.
      { name: "c", role: (a) => (a.beta === 0 ? "output" : "update"), size: (a) => a.M * a.N, what: (a) => `C of ${a.M}×${a.N}` },
      workspace("work", (a, k) => k.gemmWorkspaceBytes(a.M, a.N, a.K)),
    ],
    // Split the longer side of C on tile boundaries (4 rows, 8 columns); each thread packs the other operand whole.
    split: {
      kernel: "gemmBlock",
      args: ["transA", "transB", "M", "N", "K", "alpha", "a", "b", "beta", "c", "work", "m0", "m1", "n0", "n1"],
      work: (a) => a.M * a.N * a.K,
      shares: (a, T) =>
        a.N >= a.M
          ? splitRange(a.N, T, 8).map(([s, e]) => ({ m0: 0, m1: a.M, n0: s, n1: e }))
          : splitRange(a.M, T, 4).map(([s, e]) => ({ m0: s, m1: e, n0: 0, n1: a.N })),
    },
  },
  {
    method: "addRowVector",
    params: ["x", "bias", "y", "rows", "cols"],
    export: "addRowVector",
    args: ["x", "bias", "y", "rows", "cols"],
    operands: [
      input("x", (a) => a.rows * a.cols, (a) => `a ${a.rows}×${a.cols} matrix`),
      input("bias", (a) => a.cols, (a) => `${a.cols} columns`),
      output("y", (a) => a.rows * a.cols, (a) => `a ${a.rows}×${a.cols} matrix`),
    ],
  },
  {
    method: "sumRows",
    params: ["g", "rows", "cols", "out"],
    export: "sumRows",
    args: ["g", "rows", "cols", "out", "work"],
    operands: [
      input("g", (a) => a.rows * a.cols, (a) => `a ${a.rows}×${a.cols} matrix`),
      output("out", (a) => a.cols, (a) => `${a.cols} columns`),
      workspace("work", (a, k) => k.sumRowsWorkspaceBytes(a.cols)),
    ],
  },
  ...BATCHNORM_KERNELS,
  {
    method: "im2col",
    params: ["x", "C", "g", "cols"],
    export: "im2col",
    args: ["x", "C", "g", "cols", "work"],
    check: checkedWindow("im2col"),
    operands: [
      input("x", (a) => a.C * a.g.H * a.g.W, chw),
      windowOperand,
      output("cols", (a) => a.C * a.g.kh * a.g.kw * a.g.OH * a.g.OW, (a) => `(C·kh·kw, OH·OW) = (${a.C * a.g.kh * a.g.kw}, ${a.g.OH * a.g.OW})`),
      workspace("work", (a, k, p) => k.im2colWorkspaceBytes(a.C, p.g)),
    ],
  },
  {
    method: "col2im",
    params: ["cols", "C", "g", "dx"],
    export: "col2im",
    args: ["cols", "C", "g", "dx", "work"],
    check: checkedWindow("col2im"),
    operands: [
      input("cols", (a) => a.C * a.g.kh * a.g.kw * a.g.OH * a.g.OW, (a) => `(C·kh·kw, OH·OW) = (${a.C * a.g.kh * a.g.kw}, ${a.g.OH * a.g.OW})`),
      update("dx", (a) => a.C * a.g.H * a.g.W, chw),
      windowOperand,
      workspace("work", (a, k, p) => k.im2colWorkspaceBytes(a.C, p.g)),
    ],
  },
  {
    method: "conv2dForward",
    params: ["x", "weight", "bias", "y", "N", "C", "O", "g"],
    export: "conv2dForward",
    args: ["x", "weight", "bias", "y", "N", "C", "O", "g", "work", "n0", "n1"],
    check: checkedWindow("conv2dForward"),
    derive: (a) => ((a.n0 = 0), (a.n1 = a.N)),
    operands: [
      input("x", (a) => a.N * a.C * a.g.H * a.g.W, nchw),
      input("weight", (a) => a.O * a.C * a.g.kh * a.g.kw, ockk),
      input("bias", (a) => a.O, (a) => `${a.O} output channels`),
      output("y", (a) => a.N * a.O * a.g.OH * a.g.OW, noyx),
      windowOperand,
      workspace("work", (a, k, p) => k.conv2dWorkspaceBytes(a.C, a.O, p.g)),
    ],
    // Each thread convolves its own images.
    split: {
      kernel: "conv2dForward",
      args: ["x", "weight", "bias", "y", "N", "C", "O", "g", "work", "n0", "n1"],
      when: (a) => a.N > 1,
      work: (a) => a.N * a.O * a.C * a.g.kh * a.g.kw * a.g.OH * a.g.OW,
      shares: (a, T) => splitRange(a.N, T, 1).map(([n0, n1]) => ({ n0, n1 })),
    },
  },
  {
    method: "conv2dBackward",
    params: ["x", "weight", "gy", "gx", "gw", "gb", "N", "C", "O", "g"],
    export: "conv2dBackward",
    args: ["x", "weight", "gy", "gx", "gw", "gb", "N", "C", "O", "g", "work", "n0", "n1", "o0", "o1"],
    check: (a) => {
      if (a.gw !== null && a.x === null) throw new TypeError("wasm backend: conv2dBackward: the weight gradient needs the input x");
      checkWindow("conv2dBackward", a.g);
    },
    derive: (a) => Object.assign(a, { n0: 0, n1: a.N, o0: 0, o1: a.O }),
    skip: (a) => a.gx === null && a.gw === null && a.gb === null,
    operands: [
      // Only what the wanted gradients read is copied in: x for gw, the weight for gx.
      input("x", (a) => a.N * a.C * a.g.H * a.g.W, nchw, { when: (a) => a.gw !== null }),
      input("weight", (a) => a.O * a.C * a.g.kh * a.g.kw, ockk, { when: (a) => a.gx !== null }),
      input("gy", (a) => a.N * a.O * a.g.OH * a.g.OW, noyx),
      output("gx", (a) => a.N * a.C * a.g.H * a.g.W, nchw),
      output("gw", (a) => a.O * a.C * a.g.kh * a.g.kw, ockk),
      output("gb", (a) => a.O, (a) => `${a.O} output channels`),
      windowOperand,
      workspace("work", (a, k, p) => k.conv2dWorkspaceBytes(a.C, a.O, p.g), { when: (a) => a.gx !== null || a.gw !== null }),
    ],
    // Each thread: ∂x of its own images, and its rows of ∂W and ∂b summed over every image (so no thread's sum depends on another's).
    split: {
      kernel: "conv2dBackward",
      args: ["x", "weight", "gy", "gx", "gw", "gb", "N", "C", "O", "g", "work", "n0", "n1", "o0", "o1"],
      work: (a) => 2 * a.N * a.O * a.C * a.g.kh * a.g.kw * a.g.OH * a.g.OW,
      shares: (a, T) => {
        const rows = splitRange(a.O, T, 4);
        return splitRange(a.N, T, 1).map(([n0, n1], t) => ({ n0, n1, o0: rows[t][0], o1: rows[t][1] }));
      },
    },
  },
  ...WINOGRAD_KERNELS,
  {
    method: "maxPool2dForward",
    params: ["x", "y", "argmax", "planes", "g"],
    export: "maxPool2dForward",
    args: ["x", "y", "argmax", "planes", "g", "work"],
    check: checkedWindow("maxPool2dForward"),
    operands: [
      input("x", (a) => a.planes * a.g.H * a.g.W, planesIn),
      output("y", (a) => a.planes * a.g.OH * a.g.OW, planesOut),
      output("argmax", (a) => a.planes * a.g.OH * a.g.OW, planesOut, i32),
      windowOperand,
      workspace("work", (a, k, p) => k.maxPool2dWorkspaceBytes(p.g)),
    ],
  },
  {
    method: "maxPool2dBackward",
    params: ["gy", "argmax", "gx", "planes", "g"],
    export: "maxPool2dBackward",
    args: ["gy", "argmax", "gx", "planes", "H", "W", "OH", "OW"],
    derive: (a) => Object.assign(a, { H: a.g.H, W: a.g.W, OH: a.g.OH, OW: a.g.OW }),
    operands: [
      input("gy", (a) => a.planes * a.g.OH * a.g.OW, planesOut),
      input("argmax", (a) => a.planes * a.g.OH * a.g.OW, planesOut, i32),
      output("gx", (a) => a.planes * a.g.H * a.g.W, planesIn),
    ],
    // The kernel skips (and counts) indices outside the plane rather than write into another one.
    result: (bad, a) => {
      if (bad === 0) return undefined;
      const ny = a.planes * a.g.OH * a.g.OW;
      const HW = a.g.H * a.g.W;
      const i = (a.argmax as Int32Array).findIndex((v, j) => j < ny && !(v >= 0 && v < HW));
      throw new RangeError(`wasm backend: maxPool2dBackward: argmax[${i}] = ${a.argmax[i]} is not an index in a ${a.g.H}×${a.g.W} plane (${bad} such entries)`);
    },
  },
  ...(["avgPool2dForward", "avgPool2dBackward"] as const).map(
    (method): KernelRow => {
      const [from, to] = method === "avgPool2dForward" ? (["x", "y"] as const) : (["gy", "gx"] as const);
      const planesIn = (a: Args) => `${a.planes} planes of ${a.w.H}×${a.w.W}`;
      const planesOut = (a: Args) => `${a.planes} planes of ${a.w.OH}×${a.w.OW}`;
      const [fromSize, toSize] = method === "avgPool2dForward" ? [planesIn, planesOut] : [planesOut, planesIn];
      const size = (what: (a: Args) => string) => (what === planesIn ? (a: Args) => a.planes * a.w.H * a.w.W : (a: Args) => a.planes * a.w.OH * a.w.OW);
      return {
        method,
        params: [from, to, "planes", "w"],
        export: method,
        args: [from, to, "planes", "H", "W", "OH", "OW", "rows", "cols", "work"],
        check: (a) => checkPoolWindows(method, a.w),
        derive: (a) => Object.assign(a, { H: a.w.H, W: a.w.W, OH: a.w.OH, OW: a.w.OW }),
        operands: [
          input(from, size(fromSize), fromSize),
          { name: "rows", role: "input", type: "i32", size: (a) => 3 * a.OH, from: (a) => a.w.rows },
          { name: "cols", role: "input", type: "i32", size: (a) => 3 * a.OW, from: (a) => a.w.cols },
          output(to, size(toSize), toSize),
          workspace("work", (a, k) => k.avgPool2dWorkspaceBytes(a.H, a.OW)),
        ],
      };
    },
  ),
  unary("sigmoid"),
  binary("sigmoidBackward", "y"),
  unary("relu"),
  binary("reluBackward", "x"),
  {
    method: "softmaxCrossEntropy",
    params: ["logits", "targets", "N", "C", "probs"],
    export: "softmaxCrossEntropy",
    args: ["logits", "targets", "N", "C", "probs"],
    check: (a) => checkTargets(a.targets, a.N, a.C),
    operands: [
      input("logits", (a) => a.N * a.C, (a) => `(N, C) = (${a.N}, ${a.C})`),
      input("targets", (a) => a.N, undefined, i32),
      output("probs", (a) => a.N * a.C, (a) => `(N, C) = (${a.N}, ${a.C})`),
    ],
  },
  {
    method: "addInPlace",
    params: ["dst", "src"],
    export: "addInPlace",
    args: ["dst", "src", "n"],
    derive: (a) => (a.n = a.dst.length),
    operands: [update("dst", (a) => a.n), input("src", (a) => a.n, (a) => `${a.n} elements, as dst`)],
  },
  {
    method: "fill",
    params: ["dst", "value"],
    export: "fillValues",
    args: ["dst", "n", "value"],
    derive: (a) => (a.n = a.dst.length),
    operands: [output("dst", (a) => a.n)],
    // Over shared memory a JavaScript fill takes ~0.3 ns an element, the kernel call ~0.5 µs and ~0.05 ns an element.
    js: { run: ([dst, value]) => dst.fill(value), below: 2048 },
  },
  {
    method: "copy",
    params: ["dst", "src"],
    export: "copyValues",
    args: ["dst", "src", "n"],
    derive: (a) => (a.n = a.dst.length),
    operands: [output("dst", (a) => a.n), input("src", (a) => a.n, (a) => `${a.n} elements, as dst`)],
    // Over shared memory a JavaScript copy takes ~0.2 ns an element, the kernel call ~0.5 µs and ~0.05 ns an element.
    js: {
      run: ([dst, src]) => {
        need(src, dst.length, "copy", "src", `${dst.length} elements, as dst`);
        dst.set(src.length === dst.length ? src : src.subarray(0, dst.length));
      },
      below: 4096,
    },
  },
  {
    // concat's rows: dst is an update (only the blocks are written); n, the elements copied, picks JavaScript for small calls.
    method: "copyRows",
    params: ["dst", "src", "rows", "len", "dstStride", "srcStride"],
    export: "copyRows",
    args: ["dst", "src", "rows", "len", "dstStride", "srcStride"],
    derive: (a) => (a.n = a.rows * a.len),
    check: (a) => copyRowsChecks(a.rows, a.len, a.dstStride, a.srcStride),
    skip: (a) => a.n === 0,
    operands: [
      update("dst", (a) => (a.rows - 1) * a.dstStride + a.len, (a) => `${a.rows} blocks of ${a.len} at stride ${a.dstStride}`),
      input("src", (a) => (a.rows - 1) * a.srcStride + a.len, (a) => `${a.rows} blocks of ${a.len} at stride ${a.srcStride}`),
    ],
    js: {
      run: ([dst, src, rows, len, dstStride, srcStride]) => {
        copyRowsChecks(rows, len, dstStride, srcStride);
        if (rows <= 0) return;
        need(dst, (rows - 1) * dstStride + len, "copyRows", "dst", `${rows} blocks of ${len} at stride ${dstStride}`);
        need(src, (rows - 1) * srcStride + len, "copyRows", "src", `${rows} blocks of ${len} at stride ${srcStride}`);
        for (let r = 0; r < rows; r++) dst.set(src.subarray(r * srcStride, r * srcStride + len), r * dstStride);
      },
      below: 4096,
    },
  },
  {
    method: "countNonFinite",
    params: ["x"],
    export: "countNonFinite",
    args: ["x", "n"],
    derive: (a) => (a.n = a.x.length),
    operands: [input("x", (a) => a.n)],
  },
  {
    method: "sgdStep",
    params: ["param", "grad", "velocity", "firstStep", "lr", "momentum", "dampening", "weightDecay", "nesterov"],
    export: "sgdStep",
    args: ["param", "grad", "velocity", "n", "firstStep", "lr", "momentum", "dampening", "weightDecay", "nesterov"],
    derive: (a) => (a.n = a.param.length),
    operands: [
      update("param", (a) => a.n),
      input("grad", (a) => a.n, (a) => `${a.n} parameters`),
      // A first step overwrites the velocity without reading it.
      { name: "velocity", role: (a) => (a.firstStep ? "output" : "update"), size: (a) => a.n, what: (a) => `${a.n} parameters` },
    ],
  },
  {
    method: "sgdStepChecked",
    params: ["param", "grad", "velocity", "newParam", "newVelocity", "firstStep", "lr", "momentum", "dampening", "weightDecay", "nesterov"],
    export: "sgdStepChecked",
    args: ["param", "grad", "velocity", "newParam", "newVelocity", "n", "firstStep", "lr", "momentum", "dampening", "weightDecay", "nesterov", "i0", "i1"],
    derive: (a) => ((a.n = a.param.length), (a.i0 = 0), (a.i1 = a.n)),
    operands: [
      input("param", (a) => a.n),
      input("grad", (a) => a.n, (a) => `${a.n} parameters`),
      // A first step does not read the velocity.
      input("velocity", (a) => a.n, (a) => `${a.n} parameters`, { when: (a) => !a.firstStep }),
      output("newParam", (a) => a.n, (a) => `${a.n} parameters`),
      output("newVelocity", (a) => a.n, (a) => `${a.n} parameters`),
    ],
    // Each thread updates its own range of elements (the result: the shares' counts summed). An element
    // costs about what 8 multiply-adds of a GEMM do (memory-bound: ~0.3 ns), so from ~33,000 parameters up.
    split: {
      kernel: "sgdStepChecked",
      args: ["param", "grad", "velocity", "newParam", "newVelocity", "n", "firstStep", "lr", "momentum", "dampening", "weightDecay", "nesterov", "i0", "i1"],
      work: (a) => 8 * a.n,
      shares: (a, T) => splitRange(a.n, T, 16).map(([i0, i1]) => ({ i0, i1 })),
    },
  },
];
