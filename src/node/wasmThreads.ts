/**
 * Multi-core wasm kernels in Node: starts the kernel worker threads of a
 * wasm backend with worker_threads (the browser equivalent would start Web
 * Workers running runKernelThread). The workers are unref'd: a process whose
 * work is done exits without stopping them.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { isMainThread, Worker } from "node:worker_threads";
import type { Backend } from "../backend/index.js";
import { kernelThreadJoined } from "../backend/wasm/threads.js";
import type { KernelThreadInit, ThreadSpawner, WasmBackend } from "../backend/wasm/index.js";

const workerUrl = new URL("./wasmThreadWorker.js", import.meta.url);

/**
 * A ThreadSpawner for Node: one worker_threads Worker per team member. Its
 * execArgv is empty: the parent's Node options (--input-type, --import
 * preloads, --test) are not for a thread that only runs the kernels, and
 * some of them stop a worker from starting at all. A worker that fails
 * before it joins the team fails the team's start at once; one that dies
 * after it joined would leave a share of a kernel undone (the dispatcher
 * would wait for it forever), so that is a warning and a failing exit code.
 */
export const nodeThreadSpawner: ThreadSpawner = (init: KernelThreadInit) => {
  const worker = new Worker(workerUrl, { workerData: init, execArgv: [] });
  worker.unref();
  let failure: string | null = null;
  worker.on("error", (err) => {
    failure ??= err.message;
    if (kernelThreadJoined(init)) {
      process.emitWarning(`covshift: a wasm kernel thread failed: ${err.message}`);
      process.exitCode = 1;
    }
  });
  worker.on("exit", (code) => {
    failure ??= `it exited (code ${code})`;
  });
  return { terminate: () => worker.terminate(), failure: () => failure };
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
/**
 * The thread count COVSHIFT_THREADS asks for: a whole number ≥ 1, or
 * undefined when unset or empty. Anything else is an error naming the
 * variable, what it holds and what it accepts.
 */
export function threadsFromEnv(env: Record<string, string | undefined> = process.env): number | undefined {
  const text = env.COVSHIFT_THREADS;
  if (text === undefined || text.trim() === "") return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`covshift: COVSHIFT_THREADS must be a whole number ≥ 1 (threads of the wasm kernels; 1 for one); got ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * What `import "covshift"` does in Node besides selecting the fast kernels
 * (src/node/entry.ts): on the process's main thread, when the default
 * backend is a wasm build with shared memory, the large kernels (GEMM,
 * convolution) are shared with one worker thread per further core — as
 * PyTorch uses every core by default. The workers start in the background:
 * the kernels run on this thread alone until they are ready (the same bits
 * either way), and a later startWasmThreads or stopThreads replaces the
 * team. COVSHIFT_THREADS=n sets the count (1: no workers). Not on worker
 * threads (an experiment's jobs, DataParallel's replicas choose their own),
 * nor where the worker script is missing (an app bundled into one file),
 * nor with a backend chosen before the import. Resolves to the thread
 * count, or null when nothing was started; a failed start is a warning and
 * leaves one thread.
 */
export function startDefaultWasmThreads(backend: Backend, env: Record<string, string | undefined> = process.env): Promise<number> | null {
  if (!isMainThread) return null;
  const wasm = backend as Partial<WasmBackend>;
  if (!backend.name.startsWith("wasm-") || wasm.sharedMemory !== true || typeof wasm.startThreads !== "function" || (wasm.threads ?? 1) > 1) return null;
  let count: number;
  try {
    count = threadsFromEnv(env) ?? defaultThreadCount();
  } catch (err) {
    process.emitWarning(`${(err as Error).message}; running the kernels on one thread`);
    return null;
  }
  if (count <= 1 || !existsSync(fileURLToPath(workerUrl))) return null;
  const started = backend as WasmBackend;
  return (defaultStart = started.startThreads(count, nodeThreadSpawner).then(
    () => started.threads,
    (err: Error) => {
      process.emitWarning(`covshift: the wasm kernel threads did not start (${err.message}); running on one thread`);
      return 1;
    },
  ));
}

let defaultStart: Promise<number> | null = null;

/** The Node entry's start of the kernel threads (startDefaultWasmThreads), resolving to the thread count; null when it started none. */
export function defaultWasmThreadsStart(): Promise<number> | null {
  return defaultStart;
}

export { startDataParallel, nodeReplicaSpawner } from "./parallel.js";
