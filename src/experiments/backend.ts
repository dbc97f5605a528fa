import { setFlagsFromString } from "node:v8";
import { setBackend } from "../backend/index.js";

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
 * when it can be loaded, else reference). Returns the name in use.
 */
export async function useBackend(name: string): Promise<string> {
  if (name === "reference") {
    setBackend("reference");
    return "reference";
  }
  if (name !== "wasm" && name !== "auto") {
    throw new Error(`unknown backend "${name}"; choose auto, wasm or reference`);
  }
  try {
    enableRelaxedSimd();
    const wasm = await import("../backend/wasm/index.js");
    await wasm.initWasmBackend();
    setBackend("wasm");
    return `wasm (${wasm.wasmVariant()})`;
  } catch (err) {
    if (name === "wasm") throw new Error(`the wasm backend could not be loaded: ${(err as Error).message}`);
    setBackend("reference");
    return "reference";
  }
}
