import type { Storage } from "../../tensor/dtype.js";
import type { StorageAllocator } from "../../tensor/storageAllocator.js";
import type { LinearMemory } from "./linearMemory.js";

/**
 * Tensor storage in a shared linear memory (see tensor/storageAllocator.ts):
 * float32 arrays over the memory's SharedArrayBuffer, which the kernels then
 * use in place. The scope pool recycles these arrays step after step; one
 * that outlives its scopes is released when the garbage collector reclaims it.
 */
export function linearStorageAllocator(heap: LinearMemory): StorageAllocator {
  if (!heap.shared) throw new Error("wasm backend: tensor storage in linear memory needs a shared memory");
  const finalizer =
    typeof FinalizationRegistry !== "undefined"
      ? new FinalizationRegistry<{ p: number; bytes: number }>(({ p, bytes }) => heap.release(p, bytes))
      : null;
  return {
    allocateFloat32(n: number): Float32Array {
      const bytes = n * 4;
      const p = heap.allocate(bytes);
      const s = new Float32Array(heap.buffer, p, n);
      s.fill(0); // a reused block holds its previous contents
      return s;
    },
    owns(s: Storage): boolean {
      return s instanceof Float32Array && heap.holds(s);
    },
    release(s: Storage): void {
      heap.release(s.byteOffset, s.byteLength);
    },
    adopt(s: Storage): void {
      // Without a FinalizationRegistry the block is never reused: memory, not correctness.
      finalizer?.register(s, { p: s.byteOffset, bytes: s.byteLength });
    },
  };
}
