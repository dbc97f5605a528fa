/**
 * The ground floor of tensor memory: element types, raw storage, and where
 * float32 storage is allocated. Kernels read and write `Storage`; the tensor
 * layer above builds tensors, scopes and autograd on it.
 */

export type DType = "float32" | "float64";
/** Contiguous row-major values of one tensor. */
export type Storage = Float32Array | Float64Array;

export function dtypeOf(s: Storage): DType {
  return s instanceof Float64Array ? "float64" : "float32";
}

/**
 * Where float32 tensor storage lives. By default every storage is an
 * ordinary typed array on the JavaScript heap. A backend that computes in
 * memory of its own (the wasm backend with a shared linear memory) installs
 * an allocator here so that tensors — a training step's activations and
 * gradients inside `scope()`, parameters, gradients and optimizer state
 * outside — are created in that memory, and its kernels read and write them
 * in place instead of copying them in and out.
 *
 * Storage made inside a scope is owned by the scope pool, which knows when
 * it dies. Storage that outlives its scopes, or is made outside any (a
 * parameter, its gradient, a tensor of a plain training loop), is `adopt`ed
 * and released when the garbage collector reclaims it — within a budget,
 * past which such buffers live on the JavaScript heap instead.
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
   * so a synchronous loop that lets storage escape every step must not grow
   * that memory without bound. The caller then uses the JavaScript heap.
   */
  adopt(s: Storage): boolean;
  /**
   * Move the adoption of `from` (adopted earlier) to `to`, of the same
   * length: `from` becomes ordinary storage again (the scope pool's to
   * recycle), `to` is released once garbage-collected. False (nothing done)
   * when this allocator cannot.
   */
  transferAdoption(from: Storage, to: Storage): boolean;
}

let current: StorageAllocator | null = null;
/** Every allocator ever installed: storage made by one stays its own after another backend is selected. */
const known: StorageAllocator[] = [];

/** Install (or with null remove) the allocator for float32 storage. Storages made earlier stay valid. */
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
