/**
 * The body of one kernel worker thread (Node worker_threads): joins the team
 * described by its workerData and serves dispatches until stopped. Started
 * by wasmThreads.ts.
 */
import { workerData } from "node:worker_threads";
import { runKernelThread, type KernelThreadInit } from "../backend/wasm/threads.js";

runKernelThread(workerData as KernelThreadInit);
