/**
 * Which examples go into which mini-batch, epoch after epoch: the shuffling
 * that §4.2.1 item 6 of the paper is about ("shuffle training examples more
 * thoroughly, so the same examples do not keep landing in one mini-batch
 * together"). Three modes, one family:
 *
 * - `"thorough"`: every epoch is a fresh uniform permutation of all
 *   examples, cut into consecutive batches. Two given examples share a batch
 *   in an epoch with probability (B−1)/(N−1) — 0.14% for N = 45,000, B = 64.
 * - `"shard"`: once, from the seed, the examples are dealt into fixed shards
 *   of `shardSize` (a permutation cut into consecutive runs, like the record
 *   files of a sharded data set). Every epoch visits the shards in a new
 *   order and shuffles each shard's examples among themselves only, then cuts
 *   every shard into batches, so a batch never mixes two shards. Two examples
 *   of one shard meet in an epoch with probability (B−1)/(S−1) — about 6%
 *   for the default S = 16·B = 1,024 and B = 64, 44× the thorough rate — and
 *   examples of different shards never meet.
 * - `"fixed"`: one seeded permutation, drawn once, repeated every epoch: the
 *   same batches in the same order (what REFERENCE_RUNS' Inception baseline
 *   did, "the same batch order every epoch").
 *
 * How they relate: `"thorough"` is `"shard"` with one shard holding
 * everything; `"shard"` with `shardSize = batchSize` keeps every batch's
 * members forever and only reorders the batches; `"fixed"` also keeps their
 * order. So going thorough → shard → fixed, the same examples keep meeting
 * more and more.
 *
 * The incomplete last batch of an epoch is dropped, so every mode yields
 * floor(N / B) batches per epoch (shard sizes are whole batches, see
 * {@link BatchSamplerOptions.shardSize}). Under `"thorough"` and `"shard"`
 * the N mod B left-over examples differ from epoch to epoch; under `"fixed"`
 * the same ones (8 of the 45,000 for B = 64) are never visited.
 *
 * Pure TypeScript without `node:` imports: runs in browsers too.
 */
import { Generator } from "../tensor/random.js";

/** How examples are shuffled into batches; see the module comment. */
export type ShuffleMode = "thorough" | "shard" | "fixed";

export const SHUFFLE_MODES: readonly ShuffleMode[] = Object.freeze(["thorough", "shard", "fixed"] as const);

/** Options of {@link BatchSampler}. */
export interface BatchSamplerOptions {
  /** Number of examples N; indices run over 0 … N−1. */
  count: number;
  /** Examples per batch B. */
  batchSize: number;
  /** See the module comment. */
  mode: ShuffleMode;
  /**
   * Examples per shard S in `"shard"` mode (the last shard holds the
   * N mod S rest). Must be a whole number of batches, so that batches never
   * straddle two shards and every mode yields the same floor(N / B) batches
   * per epoch. Default 16·B (1,024 for B = 64: 44 shards of the 45,000
   * training images, 16 batches each), which keeps the within-shard meeting
   * rate (B−1)/(S−1) ≈ 6% per epoch — high enough for the same examples to
   * keep meeting over the 4–5 epochs of REFERENCE_RUNS' 3,000 steps, while a
   * shard still has 16 different batches to make. Ignored by other modes.
   */
  shardSize?: number;
  /** Seeds the shard layout, the fixed order, and every epoch's shuffle. */
  seed: number;
}

/**
 * A {@link BatchSampler}'s checkpoint: plain JSON (`JSON.stringify` and back
 * restores it exactly). The epoch's order is not stored but re-drawn from the
 * generator state saved at the start of the epoch, so the state stays small.
 */
export interface BatchSamplerState {
  mode: ShuffleMode;
  count: number;
  batchSize: number;
  /** The shard size in use (`count` — one shard — for modes other than "shard"). */
  shardSize: number;
  seed: number;
  /** The current epoch, 0-based. */
  epoch: number;
  /** How many batches of the current epoch have been handed out. */
  batchInEpoch: number;
  /** The generator's state just before the current epoch's order was drawn. */
  epochRng: JsonGeneratorState;
}

/** A {@link Generator} state as plain JSON: its NaN ("no spare normal") becomes null. */
export type JsonGeneratorState = (number | null)[];

/** `g.getState()` in a form that survives `JSON.stringify` (which turns NaN into null). */
export function generatorStateToJson(g: Generator): JsonGeneratorState {
  return g.getState().map((v) => (Number.isNaN(v) ? null : v));
}

/** Restores a state made by {@link generatorStateToJson}. */
export function generatorStateFromJson(g: Generator, state: JsonGeneratorState): void {
  if (!Array.isArray(state) || state.length !== 5) {
    throw new Error(`a generator state must be an array of 5 numbers (or null last); got ${JSON.stringify(state)}`);
  }
  g.setState(state.map((v) => (v === null ? NaN : v)));
}

/**
 * Fisher–Yates shuffle of `a[from … to−1]` in place; on an identity range it
 * draws exactly what `gen.permutation(to − from)` draws.
 */
export function shuffleInPlace(a: Int32Array, gen: Generator, from = 0, to = a.length): void {
  for (let i = to - 1; i > from; i--) {
    const j = from + gen.randint(i - from + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/**
 * Hands out batches of example indices, epoch after epoch, in one of the
 * three {@link ShuffleMode}s. `next()` returns a view that the next call
 * overwrites; no allocation happens per batch.
 */
export class BatchSampler {
  readonly mode: ShuffleMode;
  readonly count: number;
  readonly batchSize: number;
  readonly shardSize: number;
  readonly seed: number;
  /** floor(count / batchSize): the incomplete last batch is dropped. */
  readonly batchesPerEpoch: number;

  private readonly gen: Generator;
  /** Example indices grouped by shard: shard k is `layout[k·S … min((k+1)·S, N) − 1]`. */
  private readonly layout: Int32Array;
  private readonly shardCount: number;
  /** The current epoch's order of all N examples. */
  private readonly order: Int32Array;
  /** Where in `order` each batch of the current epoch starts. */
  private readonly batchStarts: Int32Array;
  private readonly shardOrder: Int32Array;
  private readonly batch: Int32Array;
  private epochIndex = 0;
  private position = 0;
  private epochRng: JsonGeneratorState = [];

  constructor(opts: BatchSamplerOptions) {
    const { count, batchSize, mode, seed } = opts;
    if (!SHUFFLE_MODES.includes(mode)) {
      const modes = SHUFFLE_MODES.map((m) => `"${m}"`).join(", ");
      throw new Error(`shuffle mode must be one of ${modes}; got ${JSON.stringify(mode)}`);
    }
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`batchSize must be a whole number of examples, 1 or more; got ${batchSize}`);
    }
    if (!Number.isInteger(count) || count < batchSize) {
      throw new Error(
        `a batch sampler needs at least one full batch: count must be a whole number ≥ batchSize ` +
          `(${batchSize}); got ${count}`,
      );
    }
    if (!Number.isFinite(seed)) throw new Error(`seed must be a finite number; got ${seed}`);
    let shardSize = count;
    if (mode === "shard") {
      shardSize = opts.shardSize ?? 16 * batchSize;
      if (!Number.isInteger(shardSize) || shardSize < batchSize || shardSize % batchSize !== 0) {
        throw new Error(
          `shardSize must be a whole number of batches (a multiple of batchSize ${batchSize}), so batches never ` +
            `straddle two shards; got ${shardSize}. Try ${Math.max(1, Math.round(shardSize / batchSize)) * batchSize}.`,
        );
      }
    }
    this.mode = mode;
    this.count = count;
    this.batchSize = batchSize;
    this.shardSize = shardSize;
    this.seed = seed;
    this.batchesPerEpoch = Math.floor(count / batchSize);
    this.shardCount = Math.ceil(count / shardSize);

    this.gen = new Generator(seed);
    // The layout is drawn once: for "fixed" it is the order of every epoch,
    // for "shard" it deals the examples into shards, for "thorough" it is
    // unused (every epoch shuffles from the identity).
    this.layout = mode === "thorough" ? identity(count) : this.gen.permutation(count);
    this.order = new Int32Array(count);
    this.batchStarts = new Int32Array(this.batchesPerEpoch);
    this.shardOrder = new Int32Array(this.shardCount);
    this.batch = new Int32Array(batchSize);
    this.startEpoch(0);
  }

  /** Rebuilds a sampler from a checkpoint alone. */
  static fromState(state: BatchSamplerState): BatchSampler {
    const s = new BatchSampler({
      count: state.count,
      batchSize: state.batchSize,
      mode: state.mode,
      shardSize: state.shardSize,
      seed: state.seed,
    });
    s.setState(state);
    return s;
  }

  /** The epoch (0-based) the most recently handed-out batch belongs to. */
  get epoch(): number {
    return this.epochIndex;
  }

  /** Batches of the current epoch handed out so far. */
  get batchInEpoch(): number {
    return this.position;
  }

  /**
   * The shard of each example (all 0 outside `"shard"` mode): fixed for the
   * sampler's life, and every batch lies within one shard.
   */
  shardOf(): Int32Array {
    const of = new Int32Array(this.count);
    if (this.mode !== "shard") return of;
    for (let i = 0; i < this.count; i++) of[this.layout[i]] = Math.floor(i / this.shardSize);
    return of;
  }

  /**
   * The indices of the next batch (`batchSize` of them), starting a new epoch
   * when the current one is used up. The returned array is reused: the next
   * call overwrites it.
   */
  next(): Int32Array {
    if (this.position === this.batchesPerEpoch) this.startEpoch(this.epochIndex + 1);
    const start = this.batchStarts[this.position++];
    const { batch, order } = this;
    for (let i = 0; i < batch.length; i++) batch[i] = order[start + i];
    return batch;
  }

  getState(): BatchSamplerState {
    return {
      mode: this.mode,
      count: this.count,
      batchSize: this.batchSize,
      shardSize: this.shardSize,
      seed: this.seed,
      epoch: this.epochIndex,
      batchInEpoch: this.position,
      epochRng: this.epochRng.slice(),
    };
  }

  /**
   * Continues from a checkpoint of a sampler built with the same options:
   * the following batches are identical to those the checkpointed sampler
   * would have produced.
   */
  setState(state: BatchSamplerState): void {
    const mine = this.getState();
    for (const key of ["mode", "count", "batchSize", "shardSize", "seed"] as const) {
      if (state[key] !== mine[key]) {
        throw new Error(
          `the checkpoint is of a sampler with ${key} ${JSON.stringify(state[key])}, this one has ` +
            `${JSON.stringify(mine[key])}: build the sampler with the checkpoint's options ` +
            `(or use BatchSampler.fromState)`,
        );
      }
    }
    if (!Number.isInteger(state.epoch) || state.epoch < 0) {
      throw new Error(`checkpoint epoch must be a whole number ≥ 0; got ${state.epoch}`);
    }
    if (!Number.isInteger(state.batchInEpoch) || state.batchInEpoch < 0 || state.batchInEpoch > this.batchesPerEpoch) {
      throw new Error(`checkpoint batchInEpoch must be 0 … ${this.batchesPerEpoch}; got ${state.batchInEpoch}`);
    }
    generatorStateFromJson(this.gen, state.epochRng);
    this.startEpoch(state.epoch);
    this.position = state.batchInEpoch;
  }

  /** Draws epoch `e`'s order from the generator's current state. */
  private startEpoch(e: number): void {
    this.epochRng = generatorStateToJson(this.gen);
    this.epochIndex = e;
    this.position = 0;
    const { order, batchStarts, batchSize } = this;
    switch (this.mode) {
      case "fixed":
        order.set(this.layout);
        fillStarts(batchStarts, 0, 0, this.batchesPerEpoch, batchSize);
        break;
      case "thorough":
        order.set(this.layout);
        shuffleInPlace(order, this.gen);
        fillStarts(batchStarts, 0, 0, this.batchesPerEpoch, batchSize);
        break;
      case "shard": {
        const { shardOrder, shardSize, layout } = this;
        for (let k = 0; k < shardOrder.length; k++) shardOrder[k] = k;
        shuffleInPlace(shardOrder, this.gen);
        let at = 0;
        let b = 0;
        for (const k of shardOrder) {
          const from = k * shardSize;
          const len = Math.min(shardSize, this.count - from);
          order.set(layout.subarray(from, from + len), at);
          shuffleInPlace(order, this.gen, at, at + len);
          // Only the short last shard can leave a partial batch, which is dropped.
          const n = Math.floor(len / batchSize);
          fillStarts(batchStarts, b, at, n, batchSize);
          b += n;
          at += len;
        }
        break;
      }
    }
  }
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

function fillStarts(starts: Int32Array, first: number, offset: number, n: number, batchSize: number): void {
  for (let i = 0; i < n; i++) starts[first + i] = offset + i * batchSize;
}
