/**
 * covshift: Batch Normalization (Ioffe & Szegedy, 2015) in TypeScript.
 * The core (tensors, autograd, kernels, nn, optim) uses no Node-only API and
 * runs in browsers; data loaders and the CLI live at the edges.
 */
import { loadDefaultBackend } from "./backend/default.js";

// The fast kernels are the default: the best wasm build this engine runs (see backend/default.ts).
await loadDefaultBackend();

export { Tensor, tensor, zeros, ones, full } from "./tensor/tensor.js";
export type { TensorOptions, GradNode } from "./tensor/tensor.js";
export type { DType, Storage } from "./backend/storage.js";
export { liveBufferCount, setBufferTracking } from "./tensor/allocation.js";
export { noGrad, isGradEnabled } from "./tensor/autograd.js";
export { scope, scopeStats, clearPool } from "./tensor/scope.js";
export { Generator, manualSeed, defaultGenerator } from "./tensor/random.js";
export { setBackend, getBackend, registerBackend } from "./backend/index.js";
export type { Backend } from "./backend/index.js";
export * as ops from "./ops/index.js";
export * as nn from "./nn/index.js";
export * as optim from "./optim/index.js";
export { summary } from "./nn/summary.js";
export type { SummaryOptions } from "./nn/summary.js";
export { DataLoader } from "./data/dataLoader.js";
export type { Batch, DataLoaderOptions, InMemoryDataset } from "./data/dataLoader.js";
export { saveSafetensors, loadSafetensors, readSafetensors } from "./interop/safetensors.js";
export type { SafetensorsContents, SafetensorsDType } from "./interop/safetensors.js";
export { exportOnnx } from "./interop/onnx/export.js";
export type { OnnxExportOptions } from "./interop/onnx/export.js";
export { DataParallel, ProcessGroup } from "./parallel/index.js";
export type { DataParallelOptions, Replica, ReplicaContext, ReplicaFactory, ReplicaOptimizer } from "./parallel/index.js";
