import type { Storage, StorageAllocator } from "../storage.js";
import type { LinearMemory } from "./linearMemory.js";

/**
 * Most bytes of long-lived storage (parameters and gradients made inside
 * scopes, tensors returned from them) kept in linear memory at one time;
 * the parameters and gradients of networks far larger than the paper's fit.
 */
export const DEFAULT_ADOPT_BUDGET = 64 * 2 ** 20;

/**
 * Tensor storage in a shared linear memory (see tensor/storageAllocator.ts):
 * float32 arrays over the memory's SharedArrayBuffer, which the kernels then
 * use in place. The scope pool recycles these arrays step after step; one
 * that outlives its scopes is released when the garbage collector reclaims it,
 * up to `adoptBudgetBytes` of such storage at a time (see StorageAllocator.adopt).
 * `zero` fills a storage with zeros (the kernels' bulk fill: a JavaScript
 * fill of shared memory is about ten times slower).
 */
export function linearStorageAllocator(
  heap: LinearMemory,
  adoptBudgetBytes = DEFAULT_ADOPT_BUDGET,
  zero: (s: Float32Array) => void = (s) => s.fill(0),
): StorageAllocator {
  if (!heap.shared) throw new Error("wasm backend: tensor storage in linear memory needs a shared memory");
  let adoptedBytes = 0;
  const finalizer =
    typeof FinalizationRegistry !== "undefined"
      ? new FinalizationRegistry<{ p: number; bytes: number }>(({ p, bytes }) => {
          heap.release(p, bytes);
          adoptedBytes -= bytes;
        })
      : null;
  return {
    allocateFloat32(n: number, zeroed = true): Float32Array {
      const bytes = n * 4;
      const p = heap.allocate(bytes);
      const s = new Float32Array(heap.buffer, p, n);
      if (zeroed) zero(s); // a reused block holds its previous contents
      return s;
    },
    owns(s: Storage): boolean {
      return s instanceof Float32Array && heap.holds(s);
    },
    release(s: Storage): void {
      heap.release(s.byteOffset, s.byteLength);
    },
    adopt(s: Storage): boolean {
      if (finalizer === null || adoptedBytes + s.byteLength > adoptBudgetBytes) return false;
      finalizer.register(s, { p: s.byteOffset, bytes: s.byteLength }, s); // s is its own unregister token
      adoptedBytes += s.byteLength;
      return true;
    },
    transferAdoption(from: Storage, to: Storage): boolean {
      if (finalizer === null || from.byteLength !== to.byteLength || !finalizer.unregister(from)) return false;
      finalizer.register(to, { p: to.byteOffset, bytes: to.byteLength }, to);
      return true;
    },
  };
}
