/**
 * Data-parallel training in a browser: DataParallel with its workers as
 * module Web Workers (the counterpart of src/node/parallel.ts). Web APIs only.
 *
 * The replica workers' script is the app's own, not a file of this package:
 *
 *     // replicaWorker.js
 *     import { serveReplica } from "covshift/browser";
 *     import { createReplica } from "./replica.js";
 *     serveReplica(createReplica);
 *
 * and the coordinator is given the factory itself and a way to start that
 * script (`() => new Worker(new URL("./replicaWorker.js", import.meta.url),
 * { type: "module" })`, the form bundlers recognize). So a bundled app's
 * worker holds one copy of covshift, the one its replica module uses —
 * where a worker of ours that imported the user's module by URL would load
 * a second copy (its own backend state; SyncBN's conversion, which asks
 * `instanceof nn.BatchNorm1d`, would not recognize the model's layers).
 *
 * Needs SharedArrayBuffer, i.e. a cross-origin-isolated page, and the
 * coordinator blocks in step() (Atomics.wait), which a page's main thread may
 * not: it runs in a dedicated Web Worker of the app (the replica workers are
 * then nested workers). Both are checked up front with errors that say so.
 */
import { DataParallel, type DataParallelOptions, type ReplicaSpawner } from "../parallel/dataParallel.js";
import { runReplica, type ReplicaFactory, type ReplicaInit } from "../parallel/replica.js";

/** startDataParallelInBrowser's options: DataParallel's, with the factory itself and a way to start a replica worker. */
export interface BrowserDataParallelOptions<O = unknown> extends Omit<DataParallelOptions<O>, "replica" | "exportName"> {
  /** The replica factory: the function the workers' script passes to serveReplica. The coordinator builds its own copy with it (for pull() and evaluation). */
  replica: ReplicaFactory<O>;
  /**
   * Starts one replica worker, a module Web Worker whose script calls
   * serveReplica(replica): `() => new Worker(new URL("./replicaWorker.js", import.meta.url), { type: "module" })`.
   * Called once per worker.
   */
  worker: () => Worker;
}

/** A ReplicaSpawner for browsers: one Web Worker per replica from `start`, handed its init by postMessage. */
export function webWorkerReplicaSpawner(start: () => Worker): ReplicaSpawner {
  return (init: ReplicaInit, onError) => {
    const worker = start();
    if (worker === null || typeof worker !== "object" || typeof worker.postMessage !== "function" || typeof worker.addEventListener !== "function") {
      throw new Error(
        `startDataParallelInBrowser: the worker option must return a Worker (e.g. new Worker(new URL("./replicaWorker.js", import.meta.url), { type: "module" })); it returned ${worker === null ? "null" : typeof worker}`,
      );
    }
    worker.addEventListener("error", (event) => {
      event.preventDefault?.();
      onError(new Error(event.message || "its script did not load or threw before serving (does the worker option start a script that calls serveReplica?)"));
    });
    worker.addEventListener("messageerror", () => onError(new Error("it could not read the group's description (is the page cross-origin isolated?)")));
    worker.postMessage({ type: "covshift-replica-init", init });
    return {
      postMessage: (message) => worker.postMessage(message),
      onMessage: (listener) => worker.addEventListener("message", (e: MessageEvent) => listener(e.data)),
      terminate: () => worker.terminate(),
    };
  };
}

const isUrl = (v: unknown) => typeof v === "string" || v instanceof URL;

/** Whether this thread may block in Atomics.wait (a worker may; a page's main thread may not). */
function mayBlock(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0); // "not-equal" at once where waiting is allowed
    return true;
  } catch {
    return false;
  }
}

/** What stops a data-parallel group from running in this thread, or [] when nothing does. */
export function browserDataParallelProblems(): string[] {
  const problems: string[] = [];
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated;
  if (typeof SharedArrayBuffer === "undefined" || isolated === false) {
    problems.push(
      "it needs SharedArrayBuffer, which a browser gives only to cross-origin-isolated pages and their workers (crossOriginIsolated is false here): serve the page and its scripts with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp",
    );
  }
  if (!mayBlock()) {
    problems.push(
      'step() blocks in Atomics.wait, which a page\'s main thread may not do: run the training loop (the coordinator) in a dedicated Web Worker, e.g. new Worker(new URL("./trainer.js", import.meta.url), { type: "module" }), and post its results to the page',
    );
  }
  return problems;
}

/**
 * Start a data-parallel group of `options.workers` Web Workers (see
 * DataParallel), from a dedicated Web Worker of a cross-origin-isolated page:
 *
 *     const dp = await startDataParallelInBrowser({
 *       replica: createReplica,
 *       worker: () => new Worker(new URL("./replicaWorker.js", import.meta.url), { type: "module" }),
 *       workers: 2, inputShape: [784], maxBatchSize: 60,
 *     });
 */
export async function startDataParallelInBrowser<O>(options: BrowserDataParallelOptions<O>): Promise<DataParallel> {
  const problems = browserDataParallelProblems();
  if (problems.length > 0) throw new Error(`startDataParallelInBrowser: ${problems.join("; and ")}`);
  if (typeof options?.replica !== "function") {
    throw new Error(
      `startDataParallelInBrowser: replica must be the replica factory itself (the function the workers' script passes to serveReplica), not ${isUrl(options?.replica) ? "a module URL: in a bundled app, a worker that imported it by URL would load a second copy of covshift" : typeof options?.replica}`,
    );
  }
  if (typeof options.worker !== "function") {
    throw new Error(
      'startDataParallelInBrowser: worker must be a function that starts one replica worker, e.g. () => new Worker(new URL("./replicaWorker.js", import.meta.url), { type: "module" }), whose script calls serveReplica(createReplica)',
    );
  }
  const { worker, ...rest } = options;
  return DataParallel.start(rest, webWorkerReplicaSpawner(worker));
}

/**
 * The body of a replica worker's script: `serveReplica(createReplica)`, with
 * the same factory the coordinator is given. Waits for the coordinator's
 * description of the group (its first message), then builds the replica and
 * serves the group until it closes — blocked in Atomics.wait between
 * commands, which a worker may do.
 */
export function serveReplica<O>(factory: ReplicaFactory<O>): void {
  if (typeof factory !== "function") {
    throw new Error(`serveReplica: expected the replica factory (a function returning { model, loss, optimizer }); got ${factory === null ? "null" : typeof factory}`);
  }
  if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "undefined") {
    throw new Error("serveReplica: call it in the replica workers' script (the module Web Worker that startDataParallelInBrowser's worker option starts), not on a page");
  }
  const scope = globalThis as unknown as {
    addEventListener(type: "message", listener: (event: MessageEvent) => void, options?: { once: boolean }): void;
    postMessage(message: unknown): void;
  };
  scope.addEventListener(
    "message",
    (event: MessageEvent) => {
      const m = event.data as { type?: string; init?: ReplicaInit };
      if (m?.type !== "covshift-replica-init" || m.init === undefined) {
        throw new Error("serveReplica: the first message to a replica worker must come from startDataParallelInBrowser; this worker got another one");
      }
      void runReplica(m.init, {
        post: (message) => scope.postMessage(message),
        onMessage: (listener) => scope.addEventListener("message", (e: MessageEvent) => listener(e.data)),
      }, factory as ReplicaFactory);
    },
    { once: true },
  );
}

export { DataParallel };
