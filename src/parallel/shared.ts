/**
 * The shared memory of a data-parallel group and the synchronous collectives
 * over it. Everything here is SharedArrayBuffer + Atomics, so it runs in Node
 * worker_threads and in browser Web Workers alike; nothing is sent as a
 * message while training (a collective costs stores, a barrier and loads).
 *
 * Blocking waits (Atomics.wait) are made in slices of WAIT_SLICE_MS, between
 * which the abort flag is read: when one member fails, every other member's
 * collective throws instead of waiting forever.
 */
import type { CollectiveGroup } from "../nn/syncBatchNorm.js";

// Int32 fields of the control block.
export const GENERATION = 0; // bumped by every command of the coordinator; members wait on it
export const COMMAND = 1;
export const DONE = 2; // members that finished the current command
export const FAILED = 3; // 1 + rank of the first member that failed, else 0
export const ABORT = 4; // 1 once any member failed: every wait throws
export const BATCH = 5; // rows of the current mini-batch
export const READY = 6; // members that have built their replica
const BARRIER_COUNT = 7;
const BARRIER_GENERATION = 8;
export const MESSAGE_BYTES = 9; // bytes of the failure message
const FAILURE_CLAIM = 10; // 1 once a member is writing the failure message (FAILED is set when it is complete)
export const CONTROL_FIELDS = 16;

/** Commands of the coordinator. */
export const enum Command {
  Step = 1,
  Pull = 2,
  GatherStates = 3,
  Push = 4,
  Report = 5,
  Listen = 6,
  Stop = 7,
}

/** Room for a failure message (UTF-8). */
export const MESSAGE_CAPACITY = 4096;

const WAIT_SLICE_MS = 100;
/** Spins on a flag before sleeping: a barrier reached by all members within microseconds costs no wake-up. */
const SPIN = 4000;

/** The buffers every member and the coordinator share, all SharedArrayBuffers (can be posted to workers). */
export interface GroupMemory {
  size: number;
  control: SharedArrayBuffer;
  /** Float32 rows of the current mini-batch: maxBatchSize × prod(inputShape). */
  input: SharedArrayBuffer;
  /** Float64 targets of the current mini-batch: maxBatchSize × prod(targetShape). */
  target: SharedArrayBuffer;
  /** Float64 per member: its shard's loss. */
  losses: SharedArrayBuffer;
  /** Float64, 2 × size × collectiveCapacity: the SyncBN collectives (two halves used in turn). */
  collective: SharedArrayBuffer;
  collectiveCapacity: number;
  /** Float64, size × slotLength: gradients (and, on request, each member's state). */
  slots: SharedArrayBuffer;
  slotLength: number;
  /** Float64: one replica's parameters then buffers, in stateDict order. */
  state: SharedArrayBuffer;
  /** UTF-8 failure message. */
  message: SharedArrayBuffer;
}

export function allocateGroupMemory(o: {
  size: number;
  inputSize: number;
  targetSize: number;
  maxBatchSize: number;
  collectiveCapacity: number;
  slotLength: number;
  stateLength: number;
}): GroupMemory {
  if (typeof SharedArrayBuffer === "undefined") {
    throw new Error(
      "DataParallel: needs SharedArrayBuffer, which this engine lacks (a browser gives it only to cross-origin-isolated pages: serve them with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)",
    );
  }
  return {
    size: o.size,
    control: new SharedArrayBuffer(CONTROL_FIELDS * 4),
    input: new SharedArrayBuffer(o.maxBatchSize * o.inputSize * 4),
    target: new SharedArrayBuffer(o.maxBatchSize * o.targetSize * 8),
    losses: new SharedArrayBuffer(o.size * 8),
    collective: new SharedArrayBuffer(2 * o.size * o.collectiveCapacity * 8),
    collectiveCapacity: o.collectiveCapacity,
    slots: new SharedArrayBuffer(o.size * o.slotLength * 8),
    slotLength: o.slotLength,
    state: new SharedArrayBuffer(o.stateLength * 8),
    message: new SharedArrayBuffer(MESSAGE_CAPACITY),
  };
}

/** Thrown in a member whose collective was cut short because another member failed. */
export class GroupAborted extends Error {
  constructor() {
    super("DataParallel: another replica failed; this one stopped its collective");
  }
}

/**
 * Wait until `ctrl[index]` is no longer `value`: spin a little, then sleep in
 * slices, throwing GroupAborted when the group is aborted (if `abortable`).
 */
export function waitWhile(ctrl: Int32Array, index: number, value: number, abortable: boolean): void {
  for (let i = 0; i < SPIN; i++) if (Atomics.load(ctrl, index) !== value) return;
  while (Atomics.load(ctrl, index) === value) {
    if (abortable && Atomics.load(ctrl, ABORT) !== 0) throw new GroupAborted();
    Atomics.wait(ctrl, index, value, WAIT_SLICE_MS);
  }
}

/** Record the first failure of the group (its message in shared memory) and wake everyone. */
export function reportFailure(memory: GroupMemory, rank: number, message: string): void {
  const ctrl = new Int32Array(memory.control);
  if (Atomics.compareExchange(ctrl, FAILURE_CLAIM, 0, 1) === 0) {
    const bytes = new TextEncoder().encode(message);
    const room = new Uint8Array(memory.message);
    const n = Math.min(bytes.length, room.length);
    room.set(bytes.subarray(0, n));
    Atomics.store(ctrl, MESSAGE_BYTES, n);
    // Published last: whoever sees FAILED reads a complete message.
    Atomics.store(ctrl, FAILED, rank + 1);
  }
  Atomics.store(ctrl, ABORT, 1);
  for (const i of [GENERATION, DONE, READY, BARRIER_GENERATION]) Atomics.notify(ctrl, i);
}

/** The failure recorded by reportFailure, or null. */
export function readFailure(memory: GroupMemory): { rank: number; message: string } | null {
  const ctrl = new Int32Array(memory.control);
  const failed = Atomics.load(ctrl, FAILED);
  if (failed === 0) return null;
  const n = Atomics.load(ctrl, MESSAGE_BYTES);
  // TextDecoder refuses views of shared memory: copy first.
  const message = new TextDecoder().decode(new Uint8Array(memory.message).slice(0, n));
  return { rank: failed - 1, message };
}

/**
 * One member's view of the group: the CollectiveGroup that SyncBatchNorm
 * calls inside forward and backward, plus the gradient all-reduce of
 * DataParallel. Every collective is synchronous; every member calls the same
 * collectives in the same order, and every member reads the contributions
 * in rank order, so all get the same bits.
 */
export class ProcessGroup implements CollectiveGroup {
  readonly size: number;
  private readonly ctrl: Int32Array;
  private readonly collective: Float64Array;
  private readonly capacity: number;
  private readonly slots: Float64Array;
  private readonly slotLength: number;
  /** Collectives run so far: which half of the collective buffer the next one uses. */
  private calls = 0;

  constructor(
    readonly rank: number,
    private readonly memory: GroupMemory,
  ) {
    this.size = memory.size;
    this.ctrl = new Int32Array(memory.control);
    this.collective = new Float64Array(memory.collective);
    this.capacity = memory.collectiveCapacity;
    this.slots = new Float64Array(memory.slots);
    this.slotLength = memory.slotLength;
  }

  /**
   * Every member arrives before any leaves (a sense-reversing barrier: the
   * last to arrive resets the count and bumps the generation).
   */
  barrier(): void {
    const generation = Atomics.load(this.ctrl, BARRIER_GENERATION);
    if (Atomics.add(this.ctrl, BARRIER_COUNT, 1) === this.size - 1) {
      Atomics.store(this.ctrl, BARRIER_COUNT, 0);
      Atomics.add(this.ctrl, BARRIER_GENERATION, 1);
      Atomics.notify(this.ctrl, BARRIER_GENERATION);
    } else {
      waitWhile(this.ctrl, BARRIER_GENERATION, generation, true);
    }
  }

  /**
   * Write `values` into this member's part of the collective buffer, wait for
   * all, and return the views of every member's part (valid until the
   * collective after next: the buffer has two halves used in turn, and a
   * member can only start writing a half again after everyone passed the
   * barrier of the collective in between, i.e. finished reading).
   */
  private exchange(values: Float64Array): Float64Array[] {
    if (values.length > this.capacity) {
      throw new Error(
        `ProcessGroup: a collective of ${values.length} values exceeds the group's capacity of ${this.capacity}; start DataParallel with a larger collectiveCapacity`,
      );
    }
    const half = (this.calls++ & 1) * this.size * this.capacity;
    this.collective.set(values, half + this.rank * this.capacity);
    this.barrier();
    return Array.from({ length: this.size }, (_, r) => this.collective.subarray(half + r * this.capacity, half + r * this.capacity + values.length));
  }

  allGather(values: Float64Array): Float64Array[] {
    return this.exchange(values).map((part) => part.slice());
  }

  allReduceSum(values: Float64Array): void {
    const parts = this.exchange(values);
    values.fill(0);
    for (const part of parts) for (let i = 0; i < values.length; i++) values[i] += part[i];
  }

  /** This member's slot (gradients, states): fill it, then call reduceSlots or gatherSlots. */
  slot(rank = this.rank): Float64Array {
    return this.slots.subarray(rank * this.slotLength, (rank + 1) * this.slotLength);
  }

  /** After every member filled its slot: out[i] ← Σ over members, in rank order, of slot[i], for i < out.length. */
  reduceSlots(out: Float64Array): void {
    this.barrier();
    out.fill(0);
    for (let r = 0; r < this.size; r++) {
      const s = this.slot(r);
      for (let i = 0; i < out.length; i++) out[i] += s[i];
    }
  }
}
