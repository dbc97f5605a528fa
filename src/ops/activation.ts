import { backendFor } from "../backend/index.js";
import { allocateUninitialized } from "../tensor/allocation.js";
import { record, Tensor } from "../tensor/tensor.js";

/** σ(x) = 1 / (1 + e^(−x)); σ'(x) = σ(x)·(1 − σ(x)), computed from the output. */
export function sigmoid(x: Tensor): Tensor {
  const kernels = backendFor(x.dtype);
  const y = new Tensor(allocateUninitialized(x.dtype, x.size), x.shape); // the kernels write every element
  kernels.sigmoid(x.data, y.data);
  return record(y, "sigmoid", [x], (g) => {
    const dx = allocateUninitialized(x.dtype, x.size);
    kernels.sigmoidBackward(y.data, g, dx);
    return [dx];
  });
}

/** max(0, x); the derivative at 0 is taken as 0, as in PyTorch. */
export function relu(x: Tensor): Tensor {
  const kernels = backendFor(x.dtype);
  const y = new Tensor(allocateUninitialized(x.dtype, x.size), x.shape);
  kernels.relu(x.data, y.data);
  return record(y, "relu", [x], (g) => {
    const dx = allocateUninitialized(x.dtype, x.size);
    kernels.reluBackward(x.data, g, dx);
    return [dx];
  });
}
