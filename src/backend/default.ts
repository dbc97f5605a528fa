/**
 * The backend that `import "covshift"` gives: the best build of the wasm
 * kernels this engine validates (relaxed SIMD, SIMD, scalar), selected when
 * the package's entry module loads, unless a backend was already chosen
 * with setBackend; the reference backend where WebAssembly is missing or
 * the kernels do not load. `getBackend().name` says which runs.
 */
import { backendChosen, getBackend, selectDefaultBackend, type Backend } from "./index.js";
import { initWasmBackend, initWasmBackendSync, type WasmBackend } from "./wasm/index.js";

interface NodeProcess {
  getBuiltinModule?: (id: string) => unknown;
}

/**
 * Node 20 keeps WebAssembly relaxed SIMD (fused multiply-add, the fastest
 * build) behind --experimental-wasm-relaxed-simd; turn the flag on before
 * the first compile, through process.getBuiltinModule (Node ≥ 20.16), so
 * that nothing imports node:v8 where there is no Node. Newer engines have
 * the feature on; elsewhere this does nothing. Returns whether it set it.
 */
export function enableRelaxedSimdInNode(): boolean {
  const proc = (globalThis as { process?: NodeProcess }).process;
  if (typeof proc?.getBuiltinModule !== "function") return false;
  try {
    const v8 = proc.getBuiltinModule("node:v8") as { setFlagsFromString?: (flags: string) => void } | undefined;
    if (typeof v8?.setFlagsFromString !== "function") return false;
    v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
    return true;
  } catch {
    return false;
  }
}

/**
 * Load and select the default backend (see the file comment). Compiles
 * synchronously where the engine allows it (Node, workers), otherwise
 * asynchronously (a browser's main thread); never throws.
 */
export function loadDefaultBackend(): Backend | Promise<Backend> {
  if (backendChosen() || typeof WebAssembly !== "object") return getBackend();
  enableRelaxedSimdInNode();
  let backend: WasmBackend;
  try {
    backend = initWasmBackendSync();
  } catch {
    return initWasmBackend().then(
      (b) => (selectDefaultBackend(b), getBackend()),
      () => getBackend(),
    );
  }
  selectDefaultBackend(backend);
  return getBackend();
}
