import { setFlagsFromString } from "node:v8";
import { getBackend, setBackend } from "../backend/index.js";
import type { WasmBackend } from "../backend/wasm/index.js";
import { startWasmThreads } from "../node/wasmThreads.js";

/**
 * Node 20 ships WebAssembly relaxed SIMD (fused multiply-add, ~1.5× the GEMM
 * throughput) behind a V8 flag; set it before the first wasm compile. V8
 * flags are per process, so worker threads started later see it too. Newer
 * engines have the feature on and ignore this.
 */
export function enableRelaxedSimd(): void {
  setFlagsFromString("--experimental-wasm-relaxed-simd");
}

/**
 * Select the kernel backend by name: "reference", "wasm", or "auto" (wasm
 * when it can be loaded, else reference), with `threads` threads for the
 * wasm backend's large kernels (default 1). Returns a description of what is
 * in use, e.g. "wasm (relaxed-simd, 2 threads)".
 */
export async function useBackend(name: string, options: { threads?: number } = {}): Promise<string> {
  const threads = options.threads ?? 1;
  if (name === "reference") {
    setBackend("reference");
    return "reference";
  }
  if (name !== "wasm" && name !== "auto") {
    throw new Error(`unknown backend "${name}"; choose auto, wasm or reference`);
  }
  let backend: WasmBackend;
  try {
    enableRelaxedSimd();
    const wasm = await import("../backend/wasm/index.js");
    backend = await wasm.initWasmBackend();
  } catch (err) {
    if (name === "wasm") throw new Error(`the wasm backend could not be loaded: ${(err as Error).message}`);
    setBackend("reference");
    return "reference";
  }
  // Asked-for threads that cannot start are an error, not a silent fall-back.
  if (threads > 1) await startWasmThreads(backend, threads);
  setBackend("wasm");
  return `wasm (${backend.variant}${backend.threads > 1 ? `, ${backend.threads} threads` : ""})`;
}

/**
 * Run `fn` on the backend `name` (as {@link useBackend}, with the threads
 * already running), then select again the backend in use before — so that a
 * command's own evaluation in the calling thread (adabn, batchsize) does not
 * change the caller's backend. Returns what `fn` returns.
 */
export async function withBackend<T>(name: string, fn: () => T): Promise<T> {
  const previous = getBackend().name;
  await useBackend(name);
  try {
    return fn();
  } finally {
    setBackend(previous);
  }
}
