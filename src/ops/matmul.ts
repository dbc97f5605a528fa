import { backendFor } from "../backend/index.js";
import { allocateUninitialized, stagedStorage } from "../tensor/allocation.js";
import type { Storage } from "../backend/storage.js";
import { record, Tensor } from "../tensor/tensor.js";

function expect2d(t: Tensor, op: string, what: string): void {
  if (t.ndim !== 2) throw new Error(`${op}: ${what} must be 2-d; got shape [${t.shape.join(", ")}]`);
}

/** C = A·B for A (M, K) and B (K, N). dA = dC·Bᵀ, dB = Aᵀ·dC. (Outputs are not zero-filled first: gemm with beta = 0 and sumRows overwrite.) */
export function matmul(a: Tensor, b: Tensor): Tensor {
  expect2d(a, "matmul", "the first operand");
  expect2d(b, "matmul", "the second operand");
  const [M, K] = a.shape;
  const [K2, N] = b.shape;
  if (K !== K2) throw new Error(`matmul: inner dimensions differ: [${a.shape.join(", ")}] · [${b.shape.join(", ")}]`);
  if (a.dtype !== b.dtype) throw new Error(`matmul: dtypes differ (${a.dtype}, ${b.dtype})`);
  const kernels = backendFor(a.dtype);
  const c = new Tensor(allocateUninitialized(a.dtype, M * N), [M, N]);
  kernels.gemm(false, false, M, N, K, 1, a.data, b.data, 0, c.data);
  return record(c, "matmul", [a, b], (g) => {
    let ga: Storage | null = null;
    let gb: Storage | null = null;
    if (a.requiresGrad) {
      ga = allocateUninitialized(a.dtype, M * K);
      kernels.gemm(false, true, M, K, N, 1, g, b.data, 0, ga);
    }
    if (b.requiresGrad) {
      gb = allocateUninitialized(b.dtype, K * N);
      kernels.gemm(true, false, K, N, M, 1, a.data, g, 0, gb);
    }
    return [ga, gb];
  });
}

/**
 * The affine map of a fully-connected layer, y = x·Wᵀ + b, for x (N, in),
 * W (out, in), b (out) or null. Backward: dx = dy·W, dW = dyᵀ·x, db = Σ_n dy.
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const [outF, inF] = weight.shape;
  if (x.ndim !== 2 || x.shape[1] !== inF) {
    throw new Error(
      `linear: expected input of shape [N, ${inF}] (in_features = ${inF}); got [${x.shape.join(", ")}]. Flatten images first (nn.Flatten).`,
    );
  }
  if (x.dtype !== weight.dtype) {
    throw new Error(`linear: input is ${x.dtype} but the weight is ${weight.dtype}; convert the input with .to("${weight.dtype}")`);
  }
  const N = x.shape[0];
  const kernels = backendFor(x.dtype);
  const xs = stagedStorage(x.data); // read by the forward and by ∂ℓ/∂W
  const y = new Tensor(allocateUninitialized(x.dtype, N * outF), [N, outF]);
  kernels.gemm(false, true, N, outF, inF, 1, xs, weight.data, 0, y.data);
  if (bias !== null) kernels.addRowVector(y.data, bias.data, y.data, N, outF);
  const inputs = bias === null ? [x, weight] : [x, weight, bias];
  return record(y, "linear", inputs, (g) => {
    let gx: Storage | null = null;
    let gw: Storage | null = null;
    let gb: Storage | null = null;
    if (x.requiresGrad) {
      gx = allocateUninitialized(x.dtype, N * inF);
      kernels.gemm(false, false, N, inF, outF, 1, g, weight.data, 0, gx);
    }
    if (weight.requiresGrad) {
      gw = allocateUninitialized(weight.dtype, outF * inF);
      kernels.gemm(true, false, outF, inF, N, 1, g, xs, 0, gw);
    }
    if (bias !== null && bias.requiresGrad) {
      gb = allocateUninitialized(bias.dtype, outF);
      kernels.sumRows(g, N, outF, gb);
    }
    return [gx, gw, gb];
  });
}
