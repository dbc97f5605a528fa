/**
 * The body of one data-parallel worker (Node worker_threads), started by
 * parallel.ts: runs the replica described by its workerData.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runReplica, type ReplicaInit } from "../parallel/replica.js";

void runReplica(workerData as ReplicaInit, {
  post: (message) => parentPort!.postMessage(message),
  onMessage: (listener) => parentPort!.on("message", listener),
});
