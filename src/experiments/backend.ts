import { setBackend } from "../backend/index.js";

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
