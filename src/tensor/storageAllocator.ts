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
 * released when the garbage collector reclaims it — within a budget, past
 * which such buffers are copied to the JavaScript heap instead.
 */
export interface StorageAllocator {
  /** n float32 elements in the backend's memory (zero-filled unless `zeroed` is false), or null to fall back to the JavaScript heap. */
  allocateFloat32(n: number, zeroed?: boolean): Float32Array | null;
  /** Whether `s` was allocated here. */
  owns(s: Storage): boolean;
  /** Give `s` back (it must not be used afterwards). */
  release(s: Storage): void;
  /**
   * `s` outlives every scope: keep it, and release it once it is
   * garbage-collected. Returns false (and keeps nothing) when the budget
   * for such storage is spent: the garbage collector does not see the
   * backend's memory, and its finalizers run only when the event loop turns,
   * so a synchronous loop that lets storage escape every step (say,
   * zeroGrad() dropping gradients that the next backward pass makes anew)
   * must not grow that memory without bound. The caller then copies `s`
   * to the JavaScript heap.
   */
  adopt(s: Storage): boolean;
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
      if (current.adopt(s)) return s;
      current.release(s);
    }
  }
  return dtype === "float64" ? new Float64Array(n) : new Float32Array(n);
}
