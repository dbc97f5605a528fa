import type { Backend } from "./backend.js";
import { referenceBackend } from "./reference/index.js";
import { setStorageAllocator, type DType } from "./storage.js";

export type { Backend, PoolWindows, Window2d } from "./backend.js";
export { referenceBackend } from "./reference/index.js";

const registered = new Map<string, Backend>([["reference", referenceBackend]]);
let active: Backend = referenceBackend;

/** Make a backend selectable by name (a fast backend registers itself once initialized). */
export function registerBackend(backend: Backend): void {
  registered.set(backend.name, backend);
}

/** Select the backend for float32 work. float64 always runs on the reference backend. */
export function setBackend(name: string): void {
  const b = registered.get(name);
  if (b === undefined) {
    throw new Error(`unknown backend '${name}'; available: ${[...registered.keys()].join(", ")}`);
  }
  active = b;
  setStorageAllocator(b.storage ?? null);
}

export function getBackend(): Backend {
  return active;
}

/** The backend that runs kernels for `dtype`. */
export function backendFor(dtype: DType): Backend {
  return dtype === "float64" ? referenceBackend : active;
}
