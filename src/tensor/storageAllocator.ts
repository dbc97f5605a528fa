import type { DType, Storage } from "./dtype.js";

/**
 * Where the float32 buffers of training steps live. By default every
 * storage is an ordinary typed array on the JavaScript heap. A backend that
 * computes in memory of its own (the wasm backend with a shared linear
 * memory) installs an allocator here so that the buffers allocated inside
 * `scope()` — a training step's activations and gradients, which the pool
 * then recycles step after step — are created in that memory, and its
 * kernels read and write them in place instead of copying them in and out.
 *
 * Only scoped allocations use it: the scope pool owns those buffers and
 * knows when they die. A buffer that outlives its scopes (a parameter's
 * gradient, a tensor returned from the outermost scope) is `adopt`ed and
 * released when the garbage collector reclaims it.
 */
export interface StorageAllocator {
  /** n zeroed float32 elements in the backend's memory, or null to fall back to the JavaScript heap. */
  allocateFloat32(n: number): Float32Array | null;
  /** Whether `s` was allocated here. */
  owns(s: Storage): boolean;
  /** Give `s` back (it must not be used afterwards). */
  release(s: Storage): void;
  /** `s` outlives every scope: release it once it is garbage-collected. */
  adopt(s: Storage): void;
}

let current: StorageAllocator | null = null;
/** Every allocator ever installed: storage made by one stays its own after another backend is selected. */
const known: StorageAllocator[] = [];

/** Install (or with null remove) the allocator for scoped float32 storage. Storages made earlier stay valid. */
export function setStorageAllocator(allocator: StorageAllocator | null): void {
  current = allocator;
  if (allocator !== null && !known.includes(allocator)) known.push(allocator);
}

/** The allocator that made `s`, if any. */
export function ownerOf(s: Storage): StorageAllocator | null {
  if (known.length === 0 || s instanceof Float64Array) return null;
  for (const a of known) if (a.owns(s)) return a;
  return null;
}

export function storageAllocator(): StorageAllocator | null {
  return current;
}

/**
 * Zeroed storage for a buffer that lives as long as its owner, not one step
 * (an optimizer's momentum): in the backend's memory where there is an
 * allocator (released once garbage-collected), else on the JavaScript heap.
 * Only for a few long-lived buffers: the garbage collector does not see the
 * backend's memory, so short-lived ones belong in scope().
 */
export function allocatePersistent(dtype: DType, n: number): Storage {
  if (dtype === "float32" && current !== null) {
    const s = current.allocateFloat32(n);
    if (s !== null) {
      current.adopt(s);
      return s;
    }
  }
  return dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
}
