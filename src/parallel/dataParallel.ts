/**
 * Data-parallel training over threads of one machine, shaped like PyTorch's
 * DistributedDataParallel: `workers` workers each hold a replica of the
 * model and train on an equal shard of every mini-batch; BatchNorm layers
 * become SyncBatchNorm over the group (unless syncBatchNorm is false), the
 * gradients are all-reduced in rank order after backward, and every replica
 * applies the same optimizer step to the same bits, so the replicas stay
 * bit-identical. See the README's "Data-parallel training" section.
 *
 * The calling thread is the coordinator: it writes each mini-batch into
 * shared memory and waits (Atomics.wait) for the replicas; it holds a copy
 * of the model of its own (`module`), brought up to date by `pull()`, for
 * evaluation and export. `step()` blocks, so the coordinator must be a thread
 * that may block: Node's main thread or any worker, or a Web Worker in a
 * browser (not a page's main thread).
 *
 * Workers are started by a ReplicaSpawner (src/node/parallel.ts: worker_threads;
 * src/browser/parallel.ts: Web Workers), the same arrangement as the wasm
 * kernel threads. Beyond one machine the route is not a network protocol of
 * our own: export the model (safetensors, ONNX) and train with PyTorch's
 * DistributedDataParallel.
 */
import { getBackend } from "../backend/index.js";
import type { Module } from "../nn/module.js";
import { Tensor } from "../tensor/tensor.js";
import {
  allocateGroupMemory,
  BATCH,
  Command,
  COMMAND,
  DONE,
  GENERATION,
  GroupAborted,
  GroupMemory,
  READY,
  readFailure,
  reportFailure,
  waitWhile,
} from "./shared.js";
import {
  loadReplicaFactory,
  readState,
  stateLength,
  stateTensors,
  type Replica,
  type ReplicaFactory,
  type ReplicaInit,
  type ReplicaMessage,
} from "./replica.js";

export interface DataParallelOptions<O = unknown> {
  /**
   * The replica factory: the URL of an ES module exporting it (e.g.
   * `new URL("./replica.js", import.meta.url)`: the coordinator and every
   * worker import it; Node's startDataParallel), or the function itself,
   * when the workers' script holds it too (a browser's replica worker calls
   * serveReplica(createReplica); startDataParallelInBrowser).
   */
  replica: string | URL | ReplicaFactory<O>;
  /** The factory's export name, when `replica` is a URL (default "createReplica"). */
  exportName?: string;
  /** Handed to the factory (structured-cloned to every worker): seeds, sizes, learning rates… */
  options?: O;
  /** Number of workers, each with a replica (an integer ≥ 1). */
  workers: number;
  /** Shape of one input example, e.g. [784] or [3, 32, 32]; inputs are float32. */
  inputShape: number[];
  /** Shape of one target: [] (default) for class indices, else a float tensor per example. */
  targetShape?: number[];
  /** Largest mini-batch that step() accepts (sizes the shared input buffer). */
  maxBatchSize: number;
  /** Convert BatchNorm1d/2d/3d to SyncBatchNorm over the workers (default true): BN sees the whole batch. */
  syncBatchNorm?: boolean;
  /** Without SyncBN, copy rank 0's buffers (running statistics) to all replicas after each step (default true, as DDP's broadcast_buffers). */
  broadcastBuffers?: boolean;
  /** Values one SyncBN collective may carry per worker (default 65,536; a BN layer of C channels needs 1 + 2C). */
  collectiveCapacity?: number;
  /** Kernel backend of the workers by name (default: the coordinator's current one). */
  backend?: string;
}

/** A worker as its spawner returns it. */
export interface ReplicaHandle {
  postMessage(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  terminate(): unknown;
}

/**
 * Starts a worker that calls runReplica(init, port) (see src/node/parallel.ts
 * and src/browser/parallel.ts); `onError` is for a worker that dies outside
 * runReplica (a script that does not load).
 */
export type ReplicaSpawner = (init: ReplicaInit, onError: (err: Error) => void) => ReplicaHandle;

const positiveInteger = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 1;

export class DataParallel {
  /** The coordinator's copy of the model (plain BN): up to date after pull(). */
  readonly module: Module;
  readonly workers: number;
  readonly syncBatchNorm: boolean;
  private readonly inputShape: number[];
  private readonly inputSize: number;
  private readonly targetShape: number[];
  private readonly targetSize: number;
  private readonly maxBatchSize: number;
  private readonly ctrl: Int32Array;
  private readonly input: Float32Array;
  private readonly target: Float64Array;
  private readonly losses: Float64Array;
  private readonly state: Float64Array;
  private readonly listeners: ((m: ReplicaMessage) => void)[] = [];
  private closed = false;

  private constructor(
    private readonly memory: GroupMemory,
    private readonly handles: ReplicaHandle[],
    local: Replica,
    options: Omit<DataParallelOptions, "replica">,
  ) {
    this.module = local.model;
    this.workers = options.workers;
    this.syncBatchNorm = options.syncBatchNorm ?? true;
    this.inputShape = [...options.inputShape];
    this.inputSize = options.inputShape.reduce((a, b) => a * b, 1);
    this.targetShape = options.targetShape ?? [];
    this.targetSize = this.targetShape.reduce((a, b) => a * b, 1);
    this.maxBatchSize = options.maxBatchSize;
    this.ctrl = new Int32Array(memory.control);
    this.input = new Float32Array(memory.input);
    this.target = new Float64Array(memory.target);
    this.losses = new Float64Array(memory.losses);
    this.state = new Float64Array(memory.state);
    for (const h of handles) h.onMessage((m) => this.listeners.shift()?.(m as ReplicaMessage));
  }

  /**
   * Build the coordinator's copy of the model from the factory, start the
   * workers, give every replica the coordinator's initial parameters and
   * buffers (as DDP broadcasts rank 0's), and resolve when all are ready.
   */
  static async start<O>(options: DataParallelOptions<O>, spawner: ReplicaSpawner): Promise<DataParallel> {
    validateOptions(options);
    const byUrl = typeof options.replica !== "function";
    const module = byUrl ? String(options.replica) : undefined;
    const exportName = byUrl ? (options.exportName ?? "createReplica") : undefined;
    const factory = byUrl ? await loadReplicaFactory(module!, exportName!) : (options.replica as ReplicaFactory<O>);
    const local = (await (factory as ReplicaFactory<O>)({ rank: -1, size: options.workers, options: options.options as O })) as Replica;
    const params = local.model.parameters();
    const numel = params.reduce((n, p) => n + p.size, 0);
    const length = stateLength(local.model);
    const memory = allocateGroupMemory({
      size: options.workers,
      inputSize: options.inputShape.reduce((a, b) => a * b, 1),
      targetSize: (options.targetShape ?? []).reduce((a, b) => a * b, 1),
      maxBatchSize: options.maxBatchSize,
      collectiveCapacity: options.collectiveCapacity ?? 65536,
      slotLength: Math.max(params.length + numel, length),
      stateLength: length,
    });
    const initial = new Float64Array(memory.state);
    let o = 0;
    for (const [, t] of stateTensors(local.model)) {
      initial.set(t.data, o);
      o += t.size;
    }
    const handles: ReplicaHandle[] = [];
    for (let rank = 0; rank < options.workers; rank++) {
      const init: ReplicaInit = {
        module,
        exportName,
        options: options.options,
        rank,
        memory,
        inputShape: [...options.inputShape],
        targetShape: [...(options.targetShape ?? [])],
        syncBatchNorm: options.syncBatchNorm ?? true,
        broadcastBuffers: options.broadcastBuffers ?? true,
        backend: options.backend ?? getBackend().name,
      };
      handles.push(spawner(init, (err) => reportFailure(memory, rank, `replica ${rank} failed: ${err.message}`)));
    }
    const dp = new DataParallel(memory, handles, local, options);
    const ctrl = new Int32Array(memory.control);
    // Not Atomics.wait: the workers' start-up may need this thread's event loop (a browser page, Node's error events).
    while (Atomics.load(ctrl, READY) < options.workers) {
      const failure = readFailure(memory);
      if (failure) {
        await dp.close();
        throw new Error(`DataParallel: ${failure.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return dp;
  }

  /** Issue a command to every replica and wait until all have done it. */
  private command(command: number): void {
    if (this.closed) throw new Error("DataParallel: this group was closed");
    this.throwIfFailed();
    Atomics.store(this.ctrl, DONE, 0);
    Atomics.store(this.ctrl, COMMAND, command);
    Atomics.add(this.ctrl, GENERATION, 1);
    Atomics.notify(this.ctrl, GENERATION);
    for (;;) {
      const done = Atomics.load(this.ctrl, DONE);
      if (done === this.workers) break;
      this.throwIfFailed();
      try {
        waitWhile(this.ctrl, DONE, done, true);
      } catch (err) {
        // GroupAborted: a replica failed (its message is in the group's record). Anything else —
        // Atomics.wait refused on a browser page's main thread — is not retried.
        if (!(err instanceof GroupAborted)) throw err;
        this.throwIfFailed();
      }
    }
  }

  private throwIfFailed(): void {
    const failure = readFailure(this.memory);
    if (failure) throw new Error(`DataParallel: ${failure.message}`);
  }

  /**
   * One training step on a mini-batch of B examples (B a multiple of the
   * workers, at most maxBatchSize): worker r trains on rows
   * [r·B/N, (r+1)·B/N). Returns the mean loss over the whole batch.
   */
  step(input: Tensor | Float32Array, target: ArrayLike<number> | Tensor): number {
    const data = input instanceof Tensor ? input.data : input;
    const rows = data.length / this.inputSize;
    if (input instanceof Tensor && input.shape.slice(1).join() !== this.inputShape.join()) {
      throw new Error(`DataParallel.step: expected inputs of shape [B, ${this.inputShape.join(", ")}]; got [${input.shape.join(", ")}]`);
    }
    if (!Number.isInteger(rows) || rows < 1) {
      throw new Error(`DataParallel.step: the input holds ${data.length} values, not a whole number ≥ 1 of examples of ${this.inputSize} values`);
    }
    if (rows > this.maxBatchSize) {
      throw new Error(`DataParallel.step: a batch of ${rows} exceeds maxBatchSize ${this.maxBatchSize}; start the group with a larger maxBatchSize`);
    }
    if (rows % this.workers !== 0) {
      throw new Error(
        `DataParallel.step: a batch of ${rows} does not split into ${this.workers} equal shards; use a batch size that is a multiple of the workers`,
      );
    }
    const t = target instanceof Tensor ? target.data : target;
    if (t.length !== rows * this.targetSize) {
      throw new Error(`DataParallel.step: expected ${rows * this.targetSize} target values for ${rows} examples; got ${t.length}`);
    }
    this.input.set(data);
    for (let i = 0; i < t.length; i++) this.target[i] = t[i];
    Atomics.store(this.ctrl, BATCH, rows);
    this.command(Command.Step);
    let loss = 0;
    for (let r = 0; r < this.workers; r++) loss += this.losses[r];
    return loss / this.workers;
  }

  /** Copy rank 0's parameters and buffers into `module` and return it. */
  pull(): Module {
    this.command(Command.Pull);
    readState(this.module, this.state);
    return this.module;
  }

  /** Load `module`'s parameters and buffers into every replica (e.g. after loading a checkpoint into it). */
  push(): void {
    let o = 0;
    for (const [, t] of stateTensors(this.module)) {
      this.state.set(t.data, o);
      o += t.size;
    }
    this.command(Command.Push);
  }

  /** Every replica's parameters and buffers (in `module.namedParameters()` then `namedBuffers()` order), by rank: to check they are identical. */
  replicaStates(): Float64Array[] {
    this.command(Command.GatherStates);
    const slots = new Float64Array(this.memory.slots);
    const n = this.state.length;
    return Array.from({ length: this.workers }, (_, r) => slots.slice(r * this.memory.slotLength, r * this.memory.slotLength + n));
  }

  private nextMessage(): Promise<ReplicaMessage> {
    return new Promise((resolve) => this.listeners.push(resolve));
  }

  /** Rank 0's optimizer state (its stateDict()), for checkpoints. */
  async optimizerState(): Promise<unknown> {
    const reply = this.nextMessage();
    this.command(Command.Report);
    const m = await this.orFailure(reply);
    if (m.type !== "report") throw new Error(`DataParallel: expected the optimizer's state; got ${m.type}`);
    return m.optimizer;
  }

  /** Load an optimizer state (from optimizerState()) into every replica's optimizer. */
  async loadOptimizerState(state: unknown): Promise<void> {
    this.command(Command.Listen); // the workers return to their event loops to take the message
    const replies = this.handles.map(() => this.nextMessage());
    for (const h of this.handles) h.postMessage({ type: "load", optimizer: state });
    for (const reply of replies) {
      const m = await this.orFailure(reply);
      if (m.type !== "loaded") throw new Error(`DataParallel: expected the replicas to load the optimizer's state; got ${m.type}`);
    }
  }

  /** `reply`, or a rejection as soon as the group fails (polled: the event loop is free while we await messages). */
  private orFailure<T>(reply: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setInterval(() => {
        try {
          this.throwIfFailed();
        } catch (err) {
          clearInterval(timer);
          reject(err);
        }
      }, 20);
      reply.then(
        (v) => {
          clearInterval(timer);
          resolve(v);
        },
        (err) => {
          clearInterval(timer);
          reject(err);
        },
      );
    });
  }

  /** Stop the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (readFailure(this.memory) === null) {
      try {
        this.command(Command.Stop);
      } catch {
        // stopping anyway
      }
    }
    this.closed = true;
    await Promise.all(this.handles.map((h) => h.terminate()));
  }
}

function validateOptions<O>(o: DataParallelOptions<O>): void {
  if (typeof o.replica !== "function" && typeof o.replica !== "string" && !(o.replica instanceof URL)) {
    throw new Error(
      `DataParallel: replica must be the URL of a module exporting the replica factory, or the factory itself; got ${o.replica === null ? "null" : typeof o.replica}`,
    );
  }
  if (!positiveInteger(o.workers)) {
    throw new Error(`DataParallel: workers must be an integer ≥ 1; got ${o.workers}`);
  }
  if (!positiveInteger(o.maxBatchSize)) {
    throw new Error(`DataParallel: maxBatchSize must be an integer ≥ 1; got ${o.maxBatchSize}`);
  }
  if (o.maxBatchSize < o.workers) {
    throw new Error(`DataParallel: maxBatchSize ${o.maxBatchSize} is below the ${o.workers} workers: each needs at least one example`);
  }
  for (const [name, shape] of [["inputShape", o.inputShape], ["targetShape", o.targetShape ?? []]] as const) {
    if (!Array.isArray(shape) || !shape.every(positiveInteger)) {
      throw new Error(`DataParallel: ${name} must be an array of integers ≥ 1 (the shape of one example); got ${JSON.stringify(shape)}`);
    }
  }
  if (o.collectiveCapacity !== undefined && !positiveInteger(o.collectiveCapacity)) {
    throw new Error(`DataParallel: collectiveCapacity must be an integer ≥ 1; got ${o.collectiveCapacity}`);
  }
}
