import type { Backend } from "../backend.js";
import type { StorageAllocator } from "../storage.js";
import { Arena } from "./arena.js";
import type { KernelExports } from "./generated/exports.js";
import { kernelMethod, type CallContext } from "./kernelCall.js";
import { KERNELS } from "./kernelTable.js";
import { controlBytes, ThreadTeam, type ThreadSpawner } from "./threads.js";
import type { LinearMemory } from "./linearMemory.js";

export type { KernelExports } from "./generated/exports.js";

/** Which build of the kernels: with relaxed SIMD (fused multiply-add), plain SIMD, or scalar. */
export type WasmVariant = "relaxed-simd" | "simd" | "scalar";

/** The wasm backend: the Backend kernels, plus the build that runs them. */
export interface WasmBackend extends Backend {
  /** The build: "wasm-relaxed-simd", "wasm-simd" or "wasm-scalar" (each also selectable as "wasm"). */
  readonly name: `wasm-${WasmVariant}`;
  readonly variant: WasmVariant;
  /** Whether linear memory is shared: then the tensors of training steps live in it (zero-copy). */
  readonly sharedMemory: boolean;
  /** Bytes of linear memory in use past the static data (tensor storage and kernel scratch), for diagnostics. */
  linearMemoryBytesInUse(): number;
  /** Threads that share the large kernels (this one included); 1 until startThreads(). */
  readonly threads: number;
  /**
   * The smallest kernel, in multiply-adds, that is split between the threads
   * (smaller ones run on the calling thread alone, where waking the others
   * would cost more than it saves). See DEFAULT_MIN_PARALLEL_WORK.
   */
  minParallelWork: number;
  /**
   * Share the large kernels (GEMM, convolution) between `count` threads:
   * this one and count − 1 workers started by `spawn`, each running
   * runKernelThread (src/node/wasmThreads.ts starts them in Node). Needs the
   * shared memory. Results keep their bits whatever the count. Replaces any
   * earlier team; count 1 stops it.
   */
  startThreads(count: number, spawn: ThreadSpawner): Promise<void>;
  /** Back to one thread; the workers end. */
  stopThreads(): void;
}

/**
 * Kernels below this many multiply-adds run on one thread. With workers
 * that stay awake between dispatches (threads.ts), `npm run bench -- --only
 * threads` on the idle 2-core machine (2026-12-03) measured a GEMM of 48³
 * (1.1·10⁵) at 0.98× on two threads and 64³ (2.6·10⁵) at 1.25×, 96³ 1.53×;
 * the §4.1 MLP step, whose 100 → 100 layers (6·10⁵) now split too, ran
 * 5–11% faster than with the former 2²¹ (both builds in one process taking
 * turns). Before the workers stayed awake a dispatch to a sleeping worker
 * cost tens of microseconds and 64³ measured 0.77×.
 */
export const DEFAULT_MIN_PARALLEL_WORK = 1 << 18;

/** What one backend instance owns besides its kernels' exports. */
export interface WasmBackendContext {
  heap: LinearMemory;
  /** The compiled module, for worker threads to instantiate over the same memory. */
  module: WebAssembly.Module;
  /** Present with a shared memory: tensor storage in linear memory. */
  storage?: StorageAllocator;
}

/**
 * The Backend over one instance of the kernels module. Each call places its
 * operands with the arena: storage that lives in linear memory (allocated
 * there by the storage allocator, see index.ts) is used in place, anything
 * else is copied in and the results copied out. The convolution and pooling
 * kernels take the whole batch in one call, so their intermediates (column
 * matrices, padded planes) never leave linear memory.
 */
export function createWasmBackend(k: KernelExports, variant: WasmVariant, wasmContext: WasmBackendContext): WasmBackend {
  const { heap, module, storage } = wasmContext;
  const arena = new Arena(heap);
  /** The team the kernels split between. */
  let team: ThreadTeam | null = null;
  /**
   * A team started but not yet joined by all its workers: installed by the
   * first kernel call (or `threads` read) that finds it joined, without
   * waiting for the event loop — a synchronous loop started right after
   * `startThreads` (the Node entry's background start) gets the threads as
   * soon as they are up. A later startThreads or stopThreads stops it.
   */
  let pending: ThreadTeam | null = null;
  const installIfJoined = (): void => {
    if (pending !== null && pending.allJoined()) {
      team = pending;
      pending = null;
    }
  };
  let minParallelWork = DEFAULT_MIN_PARALLEL_WORK;
  /** The threads a kernel of `work` multiply-adds is split between. */
  const teamFor = (work: number): number => {
    if (pending !== null) installIfJoined();
    return team !== null && work >= minParallelWork ? team.size : 1;
  };
  const context: CallContext = { k, arena, holds: (s) => heap.holds(s), team: () => team, teamFor };
  // Every kernel method, from its row of the kernel table.
  const kernels = Object.fromEntries(KERNELS.map((row) => [row.method, kernelMethod(row, context)]));

  return {
    name: `wasm-${variant}`,
    variant,
    sharedMemory: heap.shared,
    storage,
    linearMemoryBytesInUse: () => heap.bytesInUse(),

    get threads() {
      if (pending !== null) installIfJoined();
      return team?.size ?? 1;
    },

    get minParallelWork() {
      return minParallelWork;
    },

    set minParallelWork(value: number) {
      if (!(value >= 0)) throw new RangeError(`wasm backend: minParallelWork must be a number of multiply-adds ≥ 0; got ${value}`);
      minParallelWork = value;
    },

    async startThreads(count, spawn) {
      if (!Number.isInteger(count) || count < 1) throw new RangeError(`wasm backend: the thread count must be an integer ≥ 1; got ${count}`);
      if (count > 1 && !heap.shared) {
        throw new Error("wasm backend: threads need the shared memory (initWasmBackend({ sharedMemory: true }); in browsers a cross-origin-isolated page)");
      }
      this.stopThreads();
      if (count === 1) return;
      // The control block is never given back (see stopThreads), not even when a spawn throws partway.
      const started = ThreadTeam.spawn(module, heap.memory, heap.allocate(controlBytes(count)), count, spawn);
      pending = started;
      try {
        await started.joined();
      } catch (err) {
        // Superseded: a later startThreads or stopThreads stopped this team; that call's choice stands.
        if (pending !== started) return;
        pending = null; // (its control block is kept: see stopThreads)
        throw err;
      }
      if (pending === started) installIfJoined();
    },

    stopThreads() {
      // A stopped team's control block is not given back to the heap: a worker still on its way out (asleep
      // when stop() notified it, or not yet started) reads it once more, and a block reused by tensor data
      // could look to it like a dispatch. A few hundred bytes per stopped team.
      if (pending !== null) {
        pending.stop();
        pending = null;
      }
      if (team === null) return;
      team.stop();
      team = null;
    },

    ...kernels,
  } as WasmBackend;
}
