/**
 * The body of one kernel worker thread in a browser (a Web Worker started by
 * wasmThreads.ts from this file bundled into a string by
 * scripts/bundle-kernel-worker.mjs): its first message is the KernelThreadInit;
 * it joins the team and serves dispatches until stopped (runKernelThread
 * blocks in Atomics.wait, which workers may do).
 */
import { runKernelThread, type KernelThreadInit } from "../backend/wasm/threads.js";

self.addEventListener("message", (event: MessageEvent<KernelThreadInit>) => runKernelThread(event.data), { once: true });
