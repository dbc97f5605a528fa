/**
 * One data-parallel worker's life (started by DataParallel through a
 * ReplicaSpawner: worker_threads in Node, Web Workers in browsers): build the
 * replica from the user's module, take the coordinator's initial state, then
 * serve the coordinator's commands — blocked in Atomics.wait between them,
 * never in the event loop while training.
 */
import { setBackend } from "../backend/index.js";
import { convertSyncBatchNorm } from "../nn/syncBatchNorm.js";
import type { Module } from "../nn/module.js";
import { scope } from "../tensor/scope.js";
import { Tensor } from "../tensor/tensor.js";
import {
  ABORT,
  BATCH,
  Command,
  COMMAND,
  DONE,
  GENERATION,
  GroupAborted,
  GroupMemory,
  ProcessGroup,
  READY,
  reportFailure,
  waitWhile,
} from "./shared.js";

/** What a replica factory is given. */
export interface ReplicaContext<O = unknown> {
  /** This worker's rank, 0 … size − 1; −1 for the coordinator's own copy (used for evaluation). */
  rank: number;
  size: number;
  /** DataParallelOptions.options, as given (structured-cloned). */
  options: O;
}

/** The optimizer methods DataParallel uses (optim.SGD, Adam and AdamW have them). */
export interface ReplicaOptimizer {
  step(): void;
  zeroGrad(options?: { setToNone?: boolean }): void;
  stateDict(): unknown;
  loadStateDict(state: never): void;
}

/** What a replica factory returns. */
export interface Replica {
  /** The model; its BatchNorm layers become SyncBatchNorm over the group unless syncBatchNorm is false. */
  model: Module;
  /** The loss of an output and its targets (class indices, or a float tensor when targetShape is given), averaged over the shard. */
  loss(output: Tensor, target: Int32Array | Tensor): Tensor;
  /** The optimizer over the model's parameters (made after the BN conversion, as with PyTorch's DDP). */
  optimizer(parameters: Tensor[]): ReplicaOptimizer;
}

/** A replica module exports a factory (under DataParallelOptions.exportName, default "createReplica"). */
export type ReplicaFactory<O = unknown> = (context: ReplicaContext<O>) => Replica | Promise<Replica>;

/** Everything a worker needs (all of it can be posted to a worker). */
export interface ReplicaInit {
  /**
   * URL of the module the worker imports the factory from (Node's worker
   * threads); absent when the worker's own script holds the factory (a
   * browser's replica worker calls serveReplica(createReplica)).
   */
  module?: string;
  /** The factory's export name in `module`. */
  exportName?: string;
  options: unknown;
  rank: number;
  memory: GroupMemory;
  inputShape: number[];
  /** [] for class indices. */
  targetShape: number[];
  syncBatchNorm: boolean;
  broadcastBuffers: boolean;
  /** Kernel backend by name (getBackend().name: "reference", "wasm-relaxed-simd", …): the coordinator's. */
  backend: string;
}

/** A worker's message channel to the coordinator. */
export interface ReplicaPort {
  post(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
}

export type ReplicaMessage = { type: "report"; optimizer: unknown } | { type: "loaded" };

/** The tensors of a model's state in a fixed order (parameters, then buffers) with their keys. */
export function stateTensors(model: Module): [string, Tensor][] {
  return [...model.namedParameters(), ...model.namedBuffers()];
}

export function stateLength(model: Module): number {
  return stateTensors(model).reduce((n, [, t]) => n + t.size, 0);
}

export function writeState(model: Module, out: Float64Array): void {
  let o = 0;
  for (const [, t] of stateTensors(model)) {
    out.set(t.data, o);
    o += t.size;
  }
}

export function readState(model: Module, from: Float64Array): void {
  let o = 0;
  for (const [, t] of stateTensors(model)) {
    t.data.set(from.subarray(o, o + t.size));
    o += t.size;
  }
}

/** Select the coordinator's backend by name: "reference", "wasm", or one wasm build ("wasm-relaxed-simd", "wasm-simd", "wasm-scalar"). */
async function selectBackend(name: string): Promise<void> {
  if (name === "wasm" || name.startsWith("wasm-")) {
    const wasm = await import("../backend/wasm/index.js");
    const build = name.slice("wasm-".length);
    const options = build === "relaxed-simd" ? { relaxed: true } : build === "simd" ? { simd: true, relaxed: false } : build === "scalar" ? { simd: false } : {};
    await wasm.initWasmBackend(options);
  }
  setBackend(name);
}

/** The replica factory that `module` exports as `exportName` (the coordinator's and each Node worker's way to it). */
export async function loadReplicaFactory(module: string, exportName: string): Promise<ReplicaFactory> {
  const exports = (await import(module)) as Record<string, unknown>;
  const factory = exports[exportName];
  if (typeof factory !== "function") {
    throw new Error(
      `DataParallel: ${module} exports no function "${exportName}" (found: ${Object.keys(exports).join(", ") || "nothing"}); export the replica factory under that name or pass exportName`,
    );
  }
  return factory as ReplicaFactory;
}

/**
 * Run a worker: build, report ready, serve. The factory is `factory` when
 * the worker's script holds it (serveReplica), else imported from
 * init.module. Failures go to the group's shared failure record.
 */
export async function runReplica(init: ReplicaInit, port: ReplicaPort, factory?: ReplicaFactory): Promise<void> {
  const { memory, rank } = init;
  const ctrl = new Int32Array(memory.control);
  let server: ReplicaServer;
  try {
    await selectBackend(init.backend);
    if (factory === undefined) {
      if (init.module === undefined) throw new Error("DataParallel: the worker was given neither a replica factory nor the URL of a module exporting one");
      factory = await loadReplicaFactory(init.module, init.exportName ?? "createReplica");
    }
    const replica = (await factory({ rank, size: memory.size, options: init.options })) as Replica;
    server = new ReplicaServer(init, replica, port);
  } catch (err) {
    reportFailure(memory, rank, `replica ${rank} could not start: ${(err as Error).message}`);
    return;
  }
  Atomics.add(ctrl, READY, 1);
  Atomics.notify(ctrl, READY);
  port.onMessage((message) => server.onMessage(message));
  server.serve();
}

class ReplicaServer {
  private readonly model: Module;
  private readonly optimizer: ReplicaOptimizer;
  private readonly group: ProcessGroup;
  private readonly ctrl: Int32Array;
  private readonly input: Float32Array;
  private readonly target: Float64Array;
  private readonly losses: Float64Array;
  private readonly state: Float64Array;
  private readonly inputSize: number;
  private readonly targetSize: number;
  private readonly params: Tensor[];
  private readonly sums: Float64Array;
  private seen: number;
  private shardInput: Tensor | null = null;

  constructor(
    private readonly init: ReplicaInit,
    private readonly replica: Replica,
    private readonly port: ReplicaPort,
  ) {
    const { memory } = init;
    this.group = new ProcessGroup(init.rank, memory);
    let model = replica.model;
    if (init.syncBatchNorm) model = convertSyncBatchNorm(model, this.group);
    this.model = model;
    this.params = model.parameters();
    this.optimizer = replica.optimizer(this.params);
    this.ctrl = new Int32Array(memory.control);
    this.input = new Float32Array(memory.input);
    this.target = new Float64Array(memory.target);
    this.losses = new Float64Array(memory.losses);
    this.state = new Float64Array(memory.state);
    this.inputSize = init.inputShape.reduce((a, b) => a * b, 1);
    this.targetSize = init.targetShape.reduce((a, b) => a * b, 1);
    const numel = this.params.reduce((n, p) => n + p.size, 0);
    if (stateLength(model) !== this.state.length || this.params.length + numel > memory.slotLength) {
      throw new Error(
        `the replica's model has ${stateLength(model)} state values, the coordinator's copy ${this.state.length}: the factory must build the same model for every rank`,
      );
    }
    this.sums = new Float64Array(this.params.length + numel);
    readState(model, this.state); // the coordinator's initial state: every replica starts from the same bits
    this.seen = Atomics.load(this.ctrl, GENERATION);
  }

  /** Serve commands until told to stop or to listen for a message. */
  serve(): void {
    for (;;) {
      waitWhile(this.ctrl, GENERATION, this.seen, false);
      this.seen = Atomics.load(this.ctrl, GENERATION);
      const command = Atomics.load(this.ctrl, COMMAND);
      if (Atomics.load(this.ctrl, ABORT) !== 0) return;
      try {
        this.run(command);
      } catch (err) {
        if (!(err instanceof GroupAborted)) reportFailure(this.init.memory, this.init.rank, `replica ${this.init.rank}: ${(err as Error).message}`);
        return;
      }
      if (command === Command.Stop || command === Command.Listen) {
        this.done();
        return;
      }
      this.done();
    }
  }

  private done(): void {
    Atomics.add(this.ctrl, DONE, 1);
    Atomics.notify(this.ctrl, DONE);
  }

  onMessage(message: unknown): void {
    const m = message as { type: string; optimizer?: unknown };
    try {
      if (m.type === "load") {
        if (m.optimizer !== undefined) this.optimizer.loadStateDict(m.optimizer as never);
        this.port.post({ type: "loaded" } satisfies ReplicaMessage);
      }
    } catch (err) {
      reportFailure(this.init.memory, this.init.rank, `replica ${this.init.rank}: ${(err as Error).message}`);
      return;
    }
    this.serve();
  }

  private run(command: number): void {
    switch (command) {
      case Command.Step:
        return this.step();
      case Command.Pull:
        if (this.init.rank === 0) writeState(this.model, this.state);
        return;
      case Command.Push:
        readState(this.model, this.state);
        return;
      case Command.GatherStates:
        writeState(this.model, this.group.slot());
        return;
      case Command.Report:
        if (this.init.rank === 0) this.port.post({ type: "report", optimizer: this.optimizer.stateDict() } satisfies ReplicaMessage);
        return;
      case Command.Listen:
      case Command.Stop:
        return;
      default:
        throw new Error(`unknown command ${command}`);
    }
  }

  private step(): void {
    const size = this.group.size;
    const rows = Atomics.load(this.ctrl, BATCH) / size;
    const first = this.init.rank * rows;
    if (this.shardInput === null || this.shardInput.shape[0] !== rows) {
      this.shardInput = new Tensor(new Float32Array(rows * this.inputSize), [rows, ...this.init.inputShape]);
    }
    const x = this.shardInput;
    x.data.set(this.input.subarray(first * this.inputSize, (first + rows) * this.inputSize));
    const t = this.target.subarray(first * this.targetSize, (first + rows) * this.targetSize);
    const target = this.init.targetShape.length === 0 ? Int32Array.from(t) : new Tensor(Float32Array.from(t), [rows, ...this.init.targetShape]);
    this.model.train();
    const loss = scope(() => {
      this.optimizer.zeroGrad({ setToNone: false });
      const value = this.replica.loss(this.model.forward(x), target);
      value.backward();
      this.allReduceGradients();
      this.optimizer.step();
      return value.item();
    });
    if (!this.init.syncBatchNorm && this.init.broadcastBuffers) this.broadcastBuffers();
    this.losses[this.init.rank] = loss;
  }

  /**
   * Every member's gradients, summed in rank order in float64 and divided by
   * the group's size (the gradient of the mean loss over the whole batch,
   * shards being equal): the same bits in every replica.
   */
  private allReduceGradients(): void {
    const slot = this.group.slot();
    const P = this.params.length;
    let o = P;
    for (let i = 0; i < P; i++) {
      const g = this.params[i].grad;
      slot[i] = g === null ? 0 : 1;
      if (g === null) slot.fill(0, o, o + this.params[i].size);
      else slot.set(g.data, o);
      o += this.params[i].size;
    }
    const sums = this.sums;
    this.group.reduceSlots(sums);
    const size = this.group.size;
    o = P;
    for (let i = 0; i < P; i++) {
      const p = this.params[i];
      const withGrad = sums[i];
      if (withGrad !== 0 && withGrad !== size) {
        throw new Error(
          `parameter ${i} (shape [${p.shape.join(", ")}]) got a gradient in ${withGrad} of ${size} replicas: every replica must use every parameter it trains in each step`,
        );
      }
      if (p.grad !== null) {
        const g = p.grad.data;
        for (let j = 0; j < p.size; j++) g[j] = sums[o + j] / size;
      }
      o += p.size;
    }
  }

  /** Without SyncBN the replicas' running statistics differ: rank 0's are copied to all (PyTorch DDP's broadcast_buffers). */
  private broadcastBuffers(): void {
    const buffers = this.model.buffers();
    if (this.init.rank === 0) {
      let o = 0;
      for (const b of buffers) {
        this.state.set(b.data, o);
        o += b.size;
      }
    }
    this.group.barrier();
    if (this.init.rank !== 0) {
      let o = 0;
      for (const b of buffers) {
        b.data.set(this.state.subarray(o, o + b.size));
        o += b.size;
      }
    }
  }
}
