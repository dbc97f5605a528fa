// The covshift kernels module: the float32 kernels of the Backend interface
// (src/backend/backend.ts), compiled twice by scripts/build-wasm.mjs, with
// and without SIMD. Every pointer is a byte offset into linear memory; the
// JavaScript glue (src/backend/wasm/) owns that memory and lays out operands
// and workspaces past heapBase(). No kernel allocates.

export { gemm, gemmBlock, gemmWorkspaceBytes } from "./gemm";
export { col2im, conv2dBackward, conv2dForward, conv2dWorkspaceBytes, im2col, im2colWorkspaceBytes } from "./conv";
export { copyRows } from "./concat";
export { conv2dWinograd, conv2dWinogradWeight, winogradWeightWorkspaceBytes, winogradWorkspaceBytes } from "./winograd";
export { avgPool2dBackward, avgPool2dForward, avgPool2dWorkspaceBytes, maxPool2dBackward, maxPool2dForward, maxPool2dWorkspaceBytes } from "./pool";
export {
  batchNormWorkspaceBytes,
  channelAffine,
  channelAffineActivated,
  channelGradInput,
  channelGradInputActivated,
  channelGradSums,
  channelGradSumsActivated,
  channelMoments,
} from "./batchnorm";
export {
  addInPlace,
  addRowVector,
  copyValues,
  countNonFinite,
  fillValues,
  relu,
  reluBackward,
  sgdStep,
  sgdStepChecked,
  sigmoid,
  sigmoidBackward,
  softmaxCrossEntropy,
  sumRows,
  sumRowsWorkspaceBytes,
} from "./elementwise";

/** The first byte past the module's static data: the glue's arena starts here. */
export function heapBase(): usize {
  return __heap_base;
}
