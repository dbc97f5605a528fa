import type { Backend } from "./backend.js";
import { referenceBackend } from "./reference/index.js";
import { setStorageAllocator, type DType } from "./storage.js";

export type { Backend, FusedActivation, PoolWindows, Window2d } from "./backend.js";
export { referenceBackend } from "./reference/index.js";

const registered = new Map<string, Backend>([["reference", referenceBackend]]);
let active: Backend = referenceBackend;
/** Whether someone chose the backend with setBackend (the default selection then leaves it alone). */
let chosen = false;

/**
 * Make a backend selectable by name (a fast backend registers itself once
 * initialized). A wasm build ("wasm-relaxed-simd", "wasm-simd",
 * "wasm-scalar") is also selectable as "wasm": the one registered last.
 */
export function registerBackend(backend: Backend): void {
  registered.set(backend.name, backend);
  if (backend.name.startsWith("wasm-")) registered.set("wasm", backend);
}

/** Select the backend for float32 work. float64 always runs on the reference backend. */
export function setBackend(name: string): void {
  const b = registered.get(name);
  if (b === undefined) {
    throw new Error(`unknown backend '${name}'; available: ${[...registered.keys()].join(", ")}`);
  }
  chosen = true;
  activate(b);
}

/**
 * Make `backend` the active one unless a backend was already chosen with
 * setBackend (which the default selection at `import "covshift"` must not
 * undo). Returns whether it became active.
 */
export function selectDefaultBackend(backend: Backend): boolean {
  registerBackend(backend);
  if (chosen) return false;
  activate(backend);
  return true;
}

/** Whether a backend was chosen by name with setBackend. */
export function backendChosen(): boolean {
  return chosen;
}

function activate(b: Backend): void {
  active = b;
  setStorageAllocator(b.storage ?? null);
}

/**
 * The backend running float32 work: `getBackend().name` is "reference" or
 * the wasm build ("wasm-relaxed-simd", "wasm-simd", "wasm-scalar").
 */
export function getBackend(): Backend {
  return active;
}

/** The backend that runs kernels for `dtype`. */
export function backendFor(dtype: DType): Backend {
  return dtype === "float64" ? referenceBackend : active;
}
