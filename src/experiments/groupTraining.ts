/**
 * A trainer's side of a DataParallel group (`--workers N` of figure1 and
 * table): the trainer keeps its data order, its measurements and its
 * checkpoints, and hands each mini-batch to the group, whose replicas train
 * on its shards. `model` is the group's coordinator copy; it lags the
 * replicas after a step until `pull()`, which evaluation and saving call
 * first. The optimizer's state lives in the replicas, so saving and loading
 * it are asynchronous (messages to rank 0, and to every replica).
 */
import type { Module } from "../nn/module.js";
import type { SGDState } from "../optim/index.js";
import type { DataParallel } from "../parallel/index.js";
import type { Tensor } from "../tensor/tensor.js";

export class GroupTraining {
  private stale = false;

  constructor(readonly group: DataParallel) {}

  get model(): Module {
    return this.group.module;
  }

  /** One synchronized step over the whole batch; the mean loss over it. */
  step(x: Tensor | Float32Array, y: ArrayLike<number>): number {
    const loss = this.group.step(x, y);
    this.stale = true;
    return loss;
  }

  /** Rank 0's parameters and running statistics into `model` (nothing to do when it is current). */
  pull(): void {
    if (!this.stale) return;
    this.group.pull();
    this.stale = false;
  }

  /** Rank 0's SGD state (the replicas' are identical), with `model` brought up to date. */
  async optimizerState(): Promise<SGDState> {
    this.pull();
    return (await this.group.optimizerState()) as SGDState;
  }

  /** After `model` was loaded from a checkpoint: its parameters and buffers, and `optimizer`, into every replica. */
  async restore(optimizer: SGDState): Promise<void> {
    this.group.push();
    this.stale = false;
    await this.group.loadOptimizerState(optimizer);
  }
}

/**
 * --workers and --no-sync-bn, for commands that split every batch over
 * data-parallel workers (figure1, table): each message names the option,
 * what it got and what it accepts.
 */
export function checkWorkers(command: string, c: { workers?: number; syncBatchNorm?: boolean; batchSize: number }): void {
  const workers = c.workers ?? 1;
  if (typeof workers !== "number" || !Number.isInteger(workers) || workers < 1) {
    throw new Error(`${command}: --workers must be a whole number ≥ 1 (data-parallel workers per run); got ${JSON.stringify(workers)}`);
  }
  if (c.batchSize % workers !== 0) {
    const divisors = Array.from({ length: c.batchSize }, (_, i) => i + 1).filter((d) => c.batchSize % d === 0 && d <= 16);
    throw new Error(
      `${command}: --workers ${workers} does not divide --batch-size ${c.batchSize}: every worker trains on an equal shard of each batch; use a divisor of ${c.batchSize} (${divisors.join(", ")}, …) or change --batch-size`,
    );
  }
  if (c.syncBatchNorm === false && c.batchSize / workers < 2) {
    throw new Error(
      `${command}: --no-sync-bn with --workers ${workers} leaves ${c.batchSize / workers} example per worker, and BN on its own shard needs at least 2; use fewer workers or keep SyncBN`,
    );
  }
}

/** The CLI's --no-sync-bn (commander's syncBn false) with one worker would change nothing: refused rather than ignored. */
export function checkNoSyncBnFlag(command: string, workers: number, syncBn: boolean): void {
  if (!syncBn && workers === 1) {
    throw new Error(`${command}: --no-sync-bn needs --workers ≥ 2 (with one worker BN already sees the whole batch); got --workers 1`);
  }
}

/** The settings a run records: workers (1 when unset) and whether BN was synchronized across them. */
export function parallelSettings(c: { workers?: number; syncBatchNorm?: boolean }): { workers: number; syncBatchNorm: boolean } {
  const workers = c.workers ?? 1;
  return { workers, syncBatchNorm: workers > 1 && c.syncBatchNorm !== false };
}
