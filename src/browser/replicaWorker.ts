/**
 * The body of one data-parallel worker in a browser (a module Web Worker
 * started by parallel.ts): its first message is the ReplicaInit; later
 * messages go to the replica.
 */
import { runReplica, type ReplicaInit } from "../parallel/replica.js";

self.addEventListener(
  "message",
  (event: MessageEvent<ReplicaInit>) =>
    void runReplica(event.data, {
      post: (message) => self.postMessage(message),
      onMessage: (listener) => self.addEventListener("message", (e: MessageEvent) => listener(e.data)),
    }),
  { once: true },
);
