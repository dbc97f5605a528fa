import { backendFor, type PoolWindows } from "../backend/index.js";
import { allocateUninitialized } from "../tensor/allocation.js";
import { record, Tensor } from "../tensor/tensor.js";
import { Size2, toPair, WindowGeometry, windowGeometry } from "./conv.js";

export interface Pool2dOptions {
  /** Step of the window, one number or [h, w]. Default: the kernel size. */
  stride?: Size2;
  /** Implicit padding on each side, one number or [h, w], at most half the kernel. Default 0. */
  padding?: Size2;
}

/** Check the input and resolve kernel, stride and padding as PyTorch's pooling layers do. */
function poolGeometry(op: string, x: Tensor, kernelSize: Size2, options: Pool2dOptions): WindowGeometry {
  if (x.ndim !== 4) throw new Error(`${op}: expected an input of shape (N, C, H, W); got [${x.shape.join(", ")}]`);
  const kernel = toPair(kernelSize, `${op}: kernelSize`, 1);
  const stride = toPair(options.stride ?? kernel, `${op}: stride`, 1);
  const padding = toPair(options.padding ?? 0, `${op}: padding`, 0);
  if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2) {
    throw new Error(
      `${op}: padding [${padding.join(", ")}] must be at most half the kernel [${kernel.join(", ")}] (as in PyTorch), so that every window covers part of the input`,
    );
  }
  return windowGeometry(op, x, kernel, stride, padding);
}

/**
 * Max over each kh×kw window of x (N, C, H, W); the padding acts as −∞, so it
 * is never chosen. As PyTorch's CPU kernel: the window is scanned row by row
 * and a value replaces the running maximum only when strictly greater (or
 * NaN), so among ties the first maximum wins, and a NaN propagates.
 *
 * Backward: each output's gradient goes to the input position of its
 * maximum (the argmax, kept from the forward); an input that is the maximum
 * of several overlapping windows collects the sum.
 */
export function maxPool2d(x: Tensor, kernelSize: Size2, options: Pool2dOptions = {}): Tensor {
  const g = poolGeometry("maxPool2d", x, kernelSize, options);
  const [N, C] = x.shape;
  const planes = N * C;
  const kernels = backendFor(x.dtype);
  const y = new Tensor(allocateUninitialized(x.dtype, planes * g.OH * g.OW), [N, C, g.OH, g.OW]); // every window written
  // argmax[p, oh, ow]: the index within plane p of the input value chosen
  const argmax = new Int32Array(y.size);
  kernels.maxPool2dForward(x.data, y.data, argmax, planes, g);
  return record(y, "max_pool2d", [x], (gy) => {
    const gx = allocateUninitialized(x.dtype, x.size); // the kernel zeroes it before summing into it
    kernels.maxPool2dBackward(gy, argmax, gx, planes, g);
    return [gx];
  });
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /**
   * Divide by the whole window kh·kw, counting padded zeros (true, PyTorch's
   * default), or by the number of input values the window covers (false).
   */
  countIncludePad?: boolean;
}

/**
 * Mean over each kh×kw window of x (N, C, H, W), the padding counted as zeros:
 *   y = (1/d)·Σ_{window ∩ input} x,   d = kh·kw (countIncludePad) or |window ∩ input|.
 * Backward: each input in a window receives ∂ℓ/∂y / d.
 */
export function avgPool2d(x: Tensor, kernelSize: Size2, options: AvgPool2dOptions = {}): Tensor {
  const g = poolGeometry("avgPool2d", x, kernelSize, options);
  const countIncludePad = options.countIncludePad ?? true;
  return windowMean("avg_pool2d", x, g.OH, g.OW, (axis, o) => {
    const [size, k, s, p] = axis === 0 ? [g.H, g.kh, g.sh, g.ph] : [g.W, g.kw, g.sw, g.pw];
    const start = o * s - p;
    // Without ceil mode a window never runs past the padded input, so it
    // covers k positions counting the padding.
    return { start: Math.max(0, start), end: Math.min(size, start + k), count: countIncludePad ? k : -1 };
  });
}

/**
 * Mean over an adaptive grid of windows, so that any (H, W) maps to
 * (outH, outW), as PyTorch's `adaptive_avg_pool2d`: output row i averages
 * input rows ⌊i·H/outH⌋ .. ⌈(i+1)·H/outH⌉ − 1 (and likewise for columns).
 * An output size of 1 is the global average pooling at the top of Inception.
 */
export function adaptiveAvgPool2d(x: Tensor, outputSize: Size2): Tensor {
  if (x.ndim !== 4) throw new Error(`adaptiveAvgPool2d: expected an input of shape (N, C, H, W); got [${x.shape.join(", ")}]`);
  const [OH, OW] = toPair(outputSize, "adaptiveAvgPool2d: outputSize", 1);
  const [, , H, W] = x.shape;
  return windowMean("adaptive_avg_pool2d", x, OH, OW, (axis, o) => {
    const [size, out] = axis === 0 ? [H, OH] : [W, OW];
    return { start: Math.floor((o * size) / out), end: Math.ceil(((o + 1) * size) / out), count: -1 };
  });
}

/**
 * Average pooling of every kind: output (oh, ow) is the sum of input rows
 * [start, end) × columns [start, end) given by `window` for each axis,
 * divided by countH·countW (a count of −1 means end − start). The windows go
 * to the backend's avgPool2d kernels as tables (PoolWindows).
 */
function windowMean(
  name: string,
  x: Tensor,
  OH: number,
  OW: number,
  window: (axis: 0 | 1, o: number) => { start: number; end: number; count: number },
): Tensor {
  const [N, C, H, W] = x.shape;
  const planes = N * C;
  const table = (axis: 0 | 1, n: number): Int32Array => {
    const t = new Int32Array(3 * n);
    for (let o = 0; o < n; o++) {
      const r = window(axis, o);
      t[3 * o] = r.start;
      t[3 * o + 1] = r.end;
      t[3 * o + 2] = r.count < 0 ? r.end - r.start : r.count;
    }
    return t;
  };
  const windows: PoolWindows = { H, W, OH, OW, rows: table(0, OH), cols: table(1, OW) };
  const kernels = backendFor(x.dtype);
  const y = new Tensor(allocateUninitialized(x.dtype, planes * OH * OW), [N, C, OH, OW]); // every window written
  kernels.avgPool2dForward(x.data, y.data, planes, windows);
  return record(y, name, [x], (gy) => {
    const gx = allocateUninitialized(x.dtype, x.size); // the kernel zeroes it before summing into it
    kernels.avgPool2dBackward(gy, gx, planes, windows);
    return [gx];
  });
}
