/**
 * Data-parallel training over the threads of one machine (see dataParallel.ts
 * and the README's "Data-parallel training"). Starting workers is the
 * platform's business: `startDataParallel` in covshift/node (worker_threads),
 * `startDataParallelInBrowser` in covshift/browser (Web Workers).
 */
export { DataParallel } from "./dataParallel.js";
export type { DataParallelOptions, ReplicaHandle, ReplicaSpawner } from "./dataParallel.js";
export { ProcessGroup } from "./shared.js";
export { runReplica } from "./replica.js";
export type { Replica, ReplicaContext, ReplicaFactory, ReplicaInit, ReplicaOptimizer, ReplicaPort } from "./replica.js";
