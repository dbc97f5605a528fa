/**
 * Data-parallel training in Node: DataParallel with its workers as
 * worker_threads (the browser counterpart is src/browser/parallel.ts, as for
 * the wasm kernel threads).
 */
import { Worker } from "node:worker_threads";
import { DataParallel, type DataParallelOptions, type ReplicaSpawner } from "../parallel/dataParallel.js";
import type { ReplicaInit } from "../parallel/replica.js";

const workerUrl = new URL("./replicaWorker.js", import.meta.url);

/** A ReplicaSpawner for Node: one worker_threads Worker per replica (unref'd: a finished process exits without closing the group). */
export const nodeReplicaSpawner: ReplicaSpawner = (init: ReplicaInit, onError) => {
  const worker = new Worker(workerUrl, { workerData: init });
  worker.unref();
  worker.on("error", onError);
  return {
    postMessage: (message) => worker.postMessage(message),
    onMessage: (listener) => worker.on("message", listener),
    terminate: () => worker.terminate(),
  };
};

/**
 * Start a data-parallel group of `options.workers` worker threads:
 *
 *     const dp = await startDataParallel({ replica: new URL("./replica.js", import.meta.url), workers: 2, inputShape: [784], maxBatchSize: 60 });
 *     const loss = dp.step(x, labels);   // one synchronized SGD step over the whole batch
 *     const model = dp.pull();           // rank 0's parameters and buffers, for evaluation
 *     await dp.close();
 */
export async function startDataParallel<O>(options: DataParallelOptions<O>): Promise<DataParallel> {
  if (typeof options?.replica === "function") {
    throw new Error(
      'startDataParallel: replica must be the URL of the module exporting the replica factory (e.g. new URL("./replica.js", import.meta.url)): every worker thread imports it, and a function cannot be sent to a thread',
    );
  }
  return DataParallel.start(options, nodeReplicaSpawner);
}

export { DataParallel };
