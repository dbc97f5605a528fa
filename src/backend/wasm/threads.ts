/**
 * Multi-core kernels: a team of threads, each with its own instance of the
 * kernels module over the one shared linear memory, splitting one kernel
 * call between them. The calling thread is member 0 and computes a share
 * itself; the others are workers parked in Atomics.wait on a control block
 * in linear memory, so a dispatch costs a store, a notify and a wake-up —
 * no message passing, no copies (the operands are already in the memory
 * every instance sees).
 *
 * Only kernels written to compute a share of their output are dispatched
 * (PARALLEL_KERNELS: they take the bounds of that share as arguments), and
 * the shares are cut on tile boundaries, so a result has the same bits
 * whatever the number of threads.
 *
 * This file uses nothing but WebAssembly and Atomics, so it runs in browsers
 * (in Web Workers) as in Node; how a worker is started is the caller's
 * (see src/node/wasmThreads.ts for worker_threads).
 */
import { callWith } from "./callWith.js";

/** The kernels a team can split, by index in dispatches. */
export const PARALLEL_KERNELS = ["gemmBlock", "conv2dForward", "conv2dBackward", "conv2dWinograd", "conv2dWinogradWeight", "sgdStepChecked"] as const;
export type ParallelKernel = (typeof PARALLEL_KERNELS)[number];

/** Slots of each member's argument list: the arguments, then the slot its share's result is left in. */
const MAX_ARGS = 32;
const RESULT = MAX_ARGS - 1;

// The control block: Int32 fields, then one Float64 argument list per member.
const GENERATION = 0; // bumped by every dispatch (and the stop command); workers wait on it
const PENDING = 1; // workers that have not finished the current dispatch
const COMMAND = 2; // RUN or STOP
const KERNEL = 3; // index into PARALLEL_KERNELS
const ARG_COUNT = 4;
const FAILED = 5; // 1 + index of a worker whose kernel threw, else 0
const READY = 8; // READY + i: worker i has instantiated the module
const RUN = 0;
const STOP = 1;

/** Bytes of the control block of a team of `size` members. */
export function controlBytes(size: number): number {
  return argsOffset(size) + size * MAX_ARGS * 8;
}

function argsOffset(size: number): number {
  return Math.ceil(((READY + size) * 4) / 64) * 64;
}

/** What a worker needs to join a team (all of it can be posted to a worker). */
export interface KernelThreadInit {
  /** The compiled kernels module (the build the calling thread runs). */
  module: WebAssembly.Module;
  /** The shared linear memory. */
  memory: WebAssembly.Memory;
  /** Byte offset of the control block. */
  control: number;
  /** Members in the team, the calling thread included. */
  size: number;
  /** This worker's member index, 1 … size − 1. */
  index: number;
}

/**
 * Starts a worker that calls runKernelThread(init); returns a way to stop it
 * for good and, optionally, to tell that it failed before it joined (then
 * the team's start fails at once instead of waiting out its deadline).
 */
export type ThreadSpawner = (init: KernelThreadInit) => SpawnedThread;

export interface SpawnedThread {
  terminate(): unknown;
  /** Why the worker ended, once it has (an error, an exit), else null. */
  failure?(): string | null;
}

/** Whether the worker `init` describes has joined its team (instantiated the module and said so). */
export function kernelThreadJoined(init: KernelThreadInit): boolean {
  return Atomics.load(new Int32Array(init.memory.buffer, init.control, READY + init.size), READY + init.index) === 1;
}

/**
 * How long a worker spins on the generation before it sleeps, in loads
 * (~9 ns each on the development machine: 200,000 ≈ 2 ms): long enough to
 * stay awake across a training step's single-threaded parts (a §4.1 MLP step
 * is ~0.6 ms), since waking a sleeping worker costs tens of microseconds on a
 * virtual machine and the caller then waits for its late share. 20,000
 * (≈ 0.2 ms) measured the MLP step 8–12% slower with two threads, both
 * builds in one process taking turns (1,456–1,513 against 1,603–1,631
 * steps/s best of 20 rounds). OpenMP runtimes spin likewise before sleeping.
 */
const SPIN = 200_000;

/** How long the calling thread spins on the workers' shares before it sleeps (≈ 0.2 ms: the shares end about together). */
const CALLER_SPIN = 20_000;

/**
 * A worker's life: instantiate the module over the shared memory, say
 * ready, then run its share of each dispatch until told to stop.
 */
export function runKernelThread(init: KernelThreadInit): void {
  const { module, memory, control, size, index } = init;
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const exports = instance.exports as Record<string, (...args: number[]) => unknown>;
  const kernels = PARALLEL_KERNELS.map((name) => exports[name]);
  const ctrl = new Int32Array(memory.buffer, control, READY + size);
  const args = new Float64Array(memory.buffer, control + argsOffset(size) + index * MAX_ARGS * 8, MAX_ARGS);
  let seen = Atomics.load(ctrl, GENERATION);
  Atomics.store(ctrl, READY + index, 1);
  Atomics.notify(ctrl, READY + index);
  for (;;) {
    for (let i = 0; i < SPIN && Atomics.load(ctrl, GENERATION) === seen; i++);
    Atomics.wait(ctrl, GENERATION, seen);
    const now = Atomics.load(ctrl, GENERATION);
    if (now === seen) continue; // a spurious wake-up
    seen = now;
    if (Atomics.load(ctrl, COMMAND) === STOP) return;
    try {
      const result = callWith(kernels[ctrl[KERNEL]], args, ctrl[ARG_COUNT]);
      args[RESULT] = typeof result === "number" ? result : 0;
    } catch {
      Atomics.store(ctrl, FAILED, index + 1);
    }
    if (Atomics.sub(ctrl, PENDING, 1) === 1) Atomics.notify(ctrl, PENDING);
  }
}

/** The calling thread's side of a team. */
export class ThreadTeam {
  readonly size: number;
  private readonly ctrl: Int32Array;
  private readonly args: Float64Array[];
  private readonly workers: SpawnedThread[] = [];
  private readonly canBlock: boolean;
  private stopped = false;

  /**
   * A team of `size` members (this thread and size − 1 workers started by
   * `spawn`, at once); the control block (controlBytes(size) bytes) at
   * `control`. It can run kernels once {@link allJoined} — which needs no
   * turn of the event loop, so a synchronous training loop started right
   * after can pick the team up; {@link joined} waits for it.
   */
  static spawn(module: WebAssembly.Module, memory: WebAssembly.Memory, control: number, size: number, spawn: ThreadSpawner): ThreadTeam {
    const team = new ThreadTeam(memory, control, size);
    for (let index = 1; index < size; index++) team.workers.push(spawn({ module, memory, control, size, index }));
    return team;
  }

  /** Whether every worker has instantiated the module and joined. */
  allJoined(): boolean {
    for (let index = 1; index < this.size; index++) if (Atomics.load(this.ctrl, READY + index) === 0) return false;
    return true;
  }

  /**
   * Resolves once every worker has joined; a worker that failed before it
   * joined, or none joining within `timeoutMs`, stops the team and rejects.
   */
  async joined(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const size = this.size;
    for (let index = 1; index < size; index++) {
      while (Atomics.load(this.ctrl, READY + index) === 0) {
        if (this.stopped) throw new Error("wasm threads: the team was stopped before its workers joined");
        const failure = this.workers[index - 1].failure?.() ?? null;
        if (failure !== null) {
          this.stop();
          throw new Error(`wasm threads: worker ${index} of ${size - 1} failed before it started: ${failure}`);
        }
        if (Date.now() > deadline) {
          this.stop();
          throw new Error(`wasm threads: worker ${index} of ${size - 1} did not start within ${timeoutMs / 1000} s`);
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
  }

  private constructor(memory: WebAssembly.Memory, control: number, size: number) {
    this.size = size;
    this.ctrl = new Int32Array(memory.buffer, control, READY + size);
    this.ctrl.fill(0);
    this.args = Array.from({ length: size }, (_, i) => new Float64Array(memory.buffer, control + argsOffset(size) + i * MAX_ARGS * 8, MAX_ARGS));
    this.canBlock = blockingWaitAllowed(this.ctrl);
  }

  /**
   * Run `kernel` once per member, member i with shares[i] as its arguments
   * (all of the same length): the workers run theirs while this thread runs
   * shares[0] through `self`, and the call returns when all are done, with
   * the sum of the shares' results (a kernel that returns a count of what it
   * found in its share; 0 for kernels that return nothing).
   */
  run(kernel: ParallelKernel, shares: number[][], self: (...args: number[]) => unknown): number {
    if (this.stopped) throw new Error("wasm threads: the team was stopped");
    if (shares.length !== this.size) throw new Error(`wasm threads: ${shares.length} shares for a team of ${this.size}`);
    const n = shares[0].length;
    if (n > RESULT) throw new Error(`wasm threads: ${kernel} takes ${n} arguments; at most ${RESULT} fit`);
    for (let i = 1; i < this.size; i++) this.args[i].set(shares[i]);
    const ctrl = this.ctrl;
    ctrl[KERNEL] = PARALLEL_KERNELS.indexOf(kernel);
    ctrl[ARG_COUNT] = n;
    ctrl[COMMAND] = RUN;
    Atomics.store(ctrl, FAILED, 0);
    Atomics.store(ctrl, PENDING, this.size - 1);
    Atomics.add(ctrl, GENERATION, 1);
    Atomics.notify(ctrl, GENERATION);
    let error: unknown = null;
    let sum = 0;
    try {
      const result = callWith(self, shares[0]);
      if (typeof result === "number") sum = result;
    } catch (err) {
      error = err;
    }
    for (let spins = 0; ; spins++) {
      const pending = Atomics.load(ctrl, PENDING);
      if (pending === 0) break;
      if (spins >= CALLER_SPIN && this.canBlock) Atomics.wait(ctrl, PENDING, pending, 50);
    }
    if (error !== null) throw error;
    const failed = Atomics.load(ctrl, FAILED);
    if (failed !== 0) throw new Error(`wasm threads: ${kernel} failed in worker ${failed - 1} (a trap: an operand outside linear memory?)`);
    for (let i = 1; i < this.size; i++) sum += this.args[i][RESULT];
    return sum;
  }

  /** Stop and end the workers; the team cannot run anything afterwards. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.ctrl, COMMAND, STOP);
    Atomics.add(this.ctrl, GENERATION, 1);
    Atomics.notify(this.ctrl, GENERATION);
    for (const w of this.workers) w.terminate();
  }
}

/** Whether this thread may block in Atomics.wait (not on a browser's main thread). */
function blockingWaitAllowed(ctrl: Int32Array): boolean {
  try {
    Atomics.wait(ctrl, COMMAND, -1, 0); // the value differs: returns "not-equal" at once where waiting is allowed
    return true;
  } catch {
    return false;
  }
}

/**
 * Cut [0, total) into `parts` contiguous ranges whose inner bounds are
 * multiples of `align` (the tile size of the kernel), as evenly as that
 * allows; trailing ranges may be empty.
 */
export function splitRange(total: number, parts: number, align: number): [number, number][] {
  const units = Math.ceil(total / align);
  const ranges: [number, number][] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const endUnits = Math.round((units * (p + 1)) / parts);
    const end = Math.min(total, endUnits * align);
    ranges.push([start, Math.max(start, end)]);
    start = Math.max(start, end);
  }
  return ranges;
}
