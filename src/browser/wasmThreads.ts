/**
 * Multi-core wasm kernels in a browser: starts the kernel worker threads of
 * a wasm backend as module Web Workers (the counterpart of
 * src/node/wasmThreads.ts, which uses worker_threads). Web APIs only.
 *
 * Threads need the backend's shared memory, i.e. SharedArrayBuffer, which
 * browsers give only to cross-origin-isolated pages (served with
 * `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp`).
 *
 * The worker's script (wasmThreadWorker.ts and runKernelThread, 1 KB) is
 * inlined: the build bundles it into a string (scripts/bundle-kernel-worker.mjs)
 * and the workers start from a blob: URL of it. So there is no worker file
 * for a bundler to find or drop — an app bundled by esbuild, Vite or webpack
 * gets threads as it is (test/browser/bundle.test.ts bundles one with
 * esbuild) — and no second request to serve with the isolation headers (a
 * blob worker inherits the page's). A page whose Content-Security-Policy
 * forbids blob: workers needs `worker-src blob:`.
 */
import type { KernelThreadInit, ThreadSpawner, WasmBackend } from "../backend/wasm/index.js";
import { KERNEL_WORKER_SOURCE } from "./generated/kernelWorker.js";

let workerUrl: string | null = null;

/** One blob: URL of the inlined worker script, made on first use and kept for the page's life. */
function kernelWorkerUrl(): string {
  workerUrl ??= URL.createObjectURL(new Blob([KERNEL_WORKER_SOURCE], { type: "text/javascript" }));
  return workerUrl;
}

/** A ThreadSpawner for browsers: one Web Worker per team member, handed its init (module + shared memory) by postMessage. */
export const webWorkerSpawner: ThreadSpawner = (init: KernelThreadInit) => {
  const worker = new Worker(kernelWorkerUrl(), { name: `covshift-kernels-${init.index}` });
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
