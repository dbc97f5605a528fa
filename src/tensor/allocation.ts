/**
 * Tensor storage allocation: every tensor buffer is born here, from the scope
 * pool, the backend's allocator or the JavaScript heap; and the optional
 * count of live buffers that the memory tests read. Tensors are contiguous,
 * row-major typed arrays; float32 is the default, float64 serves gradient
 * checks and exact reference math.
 */
import { ownerOf, storageAllocator, type DType, type Storage } from "../backend/storage.js";
import { inScope, noteAllocation, takeFromPool } from "./scope.js";
import { activationGroupRunning, takeForActivationGroup } from "./activationGroup.js";

let tracking = false;
let allocated = 0;
let freed = 0;
// Counts storages reclaimed by the garbage collector, so tests can show that
// training does not grow the set of live buffers. Registering costs about as
// much as the allocation itself, so it is off unless asked for.
const registry =
  typeof FinalizationRegistry !== "undefined"
    ? new FinalizationRegistry<number>(() => {
        freed++;
      })
    : null;

/**
 * Count every storage allocated from now on, and observe its reclamation,
 * for `liveBufferCount()`. For tests and diagnostics: it slows allocation.
 */
export function setBufferTracking(enabled: boolean): void {
  if (enabled && registry === null) throw new Error("setBufferTracking: this JavaScript engine has no FinalizationRegistry");
  tracking = enabled;
}

/**
 * A zero-filled storage of `n` elements; every tensor buffer is born here.
 * Inside `scope()` it comes from the pool of recycled buffers when one fits.
 */
export function allocate(dtype: DType, n: number): Storage {
  return allocateStorage(dtype, n, true);
}

/**
 * Storage of `n` elements whose contents are undefined, for an output that a
 * kernel overwrites whole: a recycled buffer is not zero-filled first (one
 * pass over memory saved). Outside a scope it is zero-filled like any new
 * typed array.
 */
export function allocateUninitialized(dtype: DType, n: number): Storage {
  return allocateStorage(dtype, n, false);
}

function allocateStorage(dtype: DType, n: number, zeroed: boolean): Storage {
  const pooled = takeFromPool(dtype, n, zeroed) ?? (dtype === "float32" ? takeForActivationGroup(n, zeroed) : null);
  if (pooled !== null) return pooled;
  // Inside a scope, float32 storage may come from the backend's own memory (see storageAllocator.ts).
  const allocator = dtype === "float32" && inScope() ? storageAllocator() : null;
  const s = allocator?.allocateFloat32(n, zeroed) ?? (dtype === "float64" ? new Float64Array(n) : new Float32Array(n));
  noteAllocation(s);
  if (tracking) {
    allocated++;
    registry!.register(s, 0);
  }
  return s;
}

/** Inputs shorter than this are not staged (the kernel call's own copy costs as much). */
const STAGE_MIN_LENGTH = 4096;

/**
 * `s`, an op's input that both its forward and its backward read, where the
 * backend's kernels use it in place: `s` itself when it lies there already,
 * or when an allocation now would not land there (outside any scope and
 * activation group, no backend memory, float64); else a copy there, made as
 * the op's output is (and recycled with it). One copy into the backend's
 * memory instead of one per kernel call (a user's batch on the JavaScript
 * heap, read by a layer's forward and again by its ∂ℓ/∂W); the backward
 * reads the values the forward saw.
 */
export function stagedStorage(s: Storage): Storage {
  if (!(s instanceof Float32Array) || s.length < STAGE_MIN_LENGTH || ownerOf(s) !== null) return s;
  if (!(inScope() || activationGroupRunning()) || storageAllocator() === null) return s;
  const copy = allocateUninitialized("float32", s.length);
  copy.set(s);
  return copy;
}

/** Storage of the given dtype holding a copy of `values`. */
export function storageFrom(dtype: DType, values: ArrayLike<number>): Storage {
  const s = allocateUninitialized(dtype, values.length); // every element is written just below
  s.set(values as ArrayLike<number>);
  return s;
}

/**
 * Buffers allocated since `setBufferTracking(true)` and not yet reclaimed.
 * Reclamation is observed through a FinalizationRegistry, so call the GC and
 * yield to the event loop first when an exact count matters.
 */
export function liveBufferCount(): number {
  if (!tracking) throw new Error("liveBufferCount: call setBufferTracking(true) first, before the allocations to be counted");
  return allocated - freed;
}
