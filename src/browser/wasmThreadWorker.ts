/**
 * The body of one kernel worker thread in a browser (a module Web Worker
 * started by wasmThreads.ts): its first message is the KernelThreadInit;
 * it joins the team and serves dispatches until stopped (runKernelThread
 * blocks in Atomics.wait, which workers may do).
 */
import { runKernelThread, type KernelThreadInit } from "../backend/wasm/threads.js";

self.addEventListener("message", (event: MessageEvent<KernelThreadInit>) => runKernelThread(event.data), { once: true });
