/**
 * Data-parallel training in a browser: DataParallel with its workers as
 * module Web Workers (the counterpart of src/node/parallel.ts). Needs
 * SharedArrayBuffer, i.e. a cross-origin-isolated page (see wasmThreads.ts),
 * and the coordinator must be allowed to block: run it in a Web Worker of
 * its own, not on the page's main thread.
 */
import { DataParallel, type DataParallelOptions, type ReplicaSpawner } from "../parallel/dataParallel.js";
import type { ReplicaInit } from "../parallel/replica.js";

const workerUrl = new URL("./replicaWorker.js", import.meta.url);

/** A ReplicaSpawner for browsers: one module Web Worker per replica, handed its init by postMessage. */
export const webWorkerReplicaSpawner: ReplicaSpawner = (init: ReplicaInit, onError) => {
  const worker = new Worker(workerUrl, { type: "module", name: `covshift-replica-${init.rank}` });
  worker.addEventListener("error", (event) => onError(new Error(event.message || "the worker script did not load")));
  worker.postMessage(init);
  return {
    postMessage: (message) => worker.postMessage(message),
    onMessage: (listener) => worker.addEventListener("message", (e: MessageEvent) => listener(e.data)),
    terminate: () => worker.terminate(),
  };
};

/** Start a data-parallel group of `options.workers` Web Workers (see DataParallel). */
export function startDataParallelInBrowser<O>(options: DataParallelOptions<O>): Promise<DataParallel> {
  return DataParallel.start(options, webWorkerReplicaSpawner);
}
