/**
 * Multi-core wasm kernels in a browser: starts the kernel worker threads of
 * a wasm backend as module Web Workers (the counterpart of
 * src/node/wasmThreads.ts, which uses worker_threads). Web APIs only.
 *
 * Threads need the backend's shared memory, i.e. SharedArrayBuffer, which
 * browsers give only to cross-origin-isolated pages (served with
 * `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp`). The worker script
 * (wasmThreadWorker.js, next to this module) must be served with the same
 * headers.
 */
import type { KernelThreadInit, ThreadSpawner, WasmBackend } from "../backend/wasm/index.js";

const workerUrl = new URL("./wasmThreadWorker.js", import.meta.url);

/** A ThreadSpawner for browsers: one module Web Worker per team member, handed its init (module + shared memory) by postMessage. */
export const webWorkerSpawner: ThreadSpawner = (init: KernelThreadInit) => {
  const worker = new Worker(workerUrl, { type: "module", name: `covshift-kernels-${init.index}` });
  worker.addEventListener("error", (event) => {
    // A worker that dies leaves its share undone (or never says it is ready): say so loudly.
    console.error(`covshift: wasm kernel thread ${init.index} failed: ${event.message || "the worker script did not load"}`);
  });
  worker.postMessage(init);
  return worker;
};

/** The cores the browser reports (the default thread count), at least 1. */
export function defaultThreadCount(): number {
  return Math.max(1, (typeof navigator !== "undefined" && navigator.hardwareConcurrency) || 1);
}

/**
 * Share `backend`'s large kernels between `threads` threads (default: the
 * cores the browser reports), the page's thread included. With a private
 * memory (a page that is not cross-origin isolated) only 1 thread is
 * possible; more is an error.
 */
export async function startWasmThreadsInBrowser(backend: WasmBackend, threads = defaultThreadCount()): Promise<number> {
  if (threads > 1 && !backend.sharedMemory) {
    throw new Error(
      "covshift: more than 1 wasm thread needs the backend's shared memory, which needs SharedArrayBuffer: serve the page cross-origin isolated (Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp)",
    );
  }
  await backend.startThreads(threads, webWorkerSpawner);
  return backend.threads;
}
