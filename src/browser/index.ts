/**
 * covshift/browser: what a browser app needs beyond the core — the wasm
 * kernels on several Web Workers (wasmThreads.ts) and data-parallel training
 * over Web Workers (parallel.ts). Web APIs only.
 */
export { defaultThreadCount, startWasmThreadsInBrowser, webWorkerSpawner } from "./wasmThreads.js";
export { browserDataParallelProblems, DataParallel, serveReplica, startDataParallelInBrowser, webWorkerReplicaSpawner } from "./parallel.js";
export type { BrowserDataParallelOptions } from "./parallel.js";
export type { Replica, ReplicaContext, ReplicaFactory, ReplicaOptimizer } from "../parallel/index.js";
