/**
 * Multi-core wasm kernels in Node: starts the kernel worker threads of a
 * wasm backend with worker_threads (the browser equivalent would start Web
 * Workers running runKernelThread). The workers are unref'd: a process whose
 * work is done exits without stopping them.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { KernelThreadInit, ThreadSpawner, WasmBackend } from "../backend/wasm/index.js";

const workerUrl = new URL("./wasmThreadWorker.js", import.meta.url);

/** A ThreadSpawner for Node: one worker_threads Worker per team member. */
export const nodeThreadSpawner: ThreadSpawner = (init: KernelThreadInit) => {
  const worker = new Worker(workerUrl, { workerData: init });
  worker.unref();
  worker.on("error", (err) => {
    // A worker that dies leaves its share undone; the dispatcher would wait for it forever, so fail loudly.
    process.emitWarning(`covshift: a wasm kernel thread failed: ${err.message}`);
    process.exitCode = 1;
  });
  return worker;
};

/** The machine's cores as Node counts them (the default thread count). */
export function defaultThreadCount(): number {
  return availableParallelism();
}

/** Threads per job when `jobs` jobs share the machine: the cores left to each, at least 1. */
export function threadsPerJob(jobs: number): number {
  return Math.max(1, Math.floor(defaultThreadCount() / Math.max(1, jobs)));
}

/**
 * Share `backend`'s large kernels between `threads` threads (default: the
 * machine's cores). With a private memory (no SharedArrayBuffer) or one
 * thread, the backend stays single-threaded.
 */
export async function startWasmThreads(backend: WasmBackend, threads = defaultThreadCount()): Promise<number> {
  if (threads > 1 && !backend.sharedMemory) {
    throw new Error("covshift: --threads above 1 needs the wasm backend's shared memory, which this engine lacks");
  }
  await backend.startThreads(threads, nodeThreadSpawner);
  return backend.threads;
}
export { startDataParallel, nodeReplicaSpawner } from "./parallel.js";
