/**
 * A batch iterator shaped like PyTorch's `torch.utils.data.DataLoader` over
 * an in-memory data set: batch size, shuffling with a seeded generator,
 * drop-last, and a transform hook. Pure TypeScript without `node:` imports:
 * it runs in browsers too.
 *
 *     const train = await loadMnist({ split: "train" });      // from "covshift/data"
 *     const loader = new DataLoader(train, { batchSize: 60, shuffle: true, generator: new Generator(0) });
 *     for (let epoch = 0; epoch < 3; epoch++) {
 *       for (const { x, y } of loader) { ... }                // x: Tensor [60, 1, 28, 28], y: Int32Array
 *     }
 */
import type { DType } from "../backend/storage.js";
import { defaultGenerator, Generator } from "../tensor/random.js";
import { Tensor } from "../tensor/tensor.js";

/**
 * Examples held in memory: `shape[0]` examples of `shape.slice(1)` values
 * each, row-major in `images`, with one class index each in `labels` — what
 * `loadMnist` and `loadCifar10` of `covshift/data` return.
 */
export interface InMemoryDataset {
  images: Float32Array | Float64Array;
  labels: ArrayLike<number>;
  /** [N, …example shape], e.g. [60000, 1, 28, 28]. */
  shape: readonly number[];
}

/** One mini-batch. */
export interface Batch {
  /** The inputs, [batch, …example shape]. */
  x: Tensor;
  /** The class index of each example of the batch. */
  y: Int32Array;
  /** Which examples of the data set the batch holds, in batch order. */
  indices: Int32Array;
}

/** Options of {@link DataLoader}. */
export interface DataLoaderOptions {
  /** Examples per batch (default 1, as PyTorch's). */
  batchSize?: number;
  /** Draw a fresh random order of all examples at the start of every epoch (default false: in order). */
  shuffle?: boolean;
  /** Leave out the last batch of an epoch if it is smaller than `batchSize` (default false). */
  dropLast?: boolean;
  /** The random source of the shuffling (default: the global generator, seeded by `manualSeed`). */
  generator?: Generator;
  /** The dtype of the batches' `x` (default float32). */
  dtype?: DType;
  /**
   * Called on every batch before it is handed out; returns the batch to hand
   * out (e.g. with `x` augmented or normalized). Runs inside the iteration,
   * so it may use the loader's generator or its own.
   */
  transform?: (batch: Batch) => Batch;
}

/**
 * Iterating a DataLoader runs one epoch: `for (const { x, y } of loader)`.
 * With `shuffle`, each epoch's order is `generator.permutation(N)` drawn when
 * the epoch starts, so a seeded generator gives the same batches on every
 * run. Every batch is a new tensor the caller may keep.
 */
export class DataLoader implements Iterable<Batch> {
  readonly dataset: InMemoryDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly generator: Generator;
  readonly dtype: DType;
  private readonly transform: ((batch: Batch) => Batch) | null;
  private readonly count: number;
  private readonly exampleSize: number;

  constructor(dataset: InMemoryDataset, options: DataLoaderOptions = {}) {
    const { batchSize = 1, shuffle = false, dropLast = false, dtype = "float32", transform } = options;
    if (dataset === null || typeof dataset !== "object" || !ArrayBuffer.isView(dataset.images) || !Array.isArray(dataset.shape)) {
      throw new Error(
        `DataLoader: the data set must be { images: Float32Array, labels, shape: [N, …] } (what loadMnist / loadCifar10 of covshift/data return); got ${describe(dataset)}`,
      );
    }
    const { images, labels, shape } = dataset;
    if (shape.length < 1 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`DataLoader: shape must be [N, …example shape] of whole numbers; got [${shape.join(", ")}]`);
    }
    const count = shape[0];
    const exampleSize = shape.slice(1).reduce((p, d) => p * d, 1);
    if (images.length !== count * exampleSize) {
      throw new Error(
        `DataLoader: shape [${shape.join(", ")}] needs ${count * exampleSize} values in images, but it holds ${images.length}`,
      );
    }
    if (labels === null || labels === undefined || labels.length !== count) {
      throw new Error(`DataLoader: ${count} examples need ${count} labels; got ${labels?.length ?? labels}`);
    }
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(`DataLoader: batchSize must be a whole number ≥ 1; got ${batchSize}`);
    }
    if (dropLast && count < batchSize) {
      throw new Error(`DataLoader: with dropLast, ${count} examples make no full batch of ${batchSize}; lower batchSize or set dropLast: false`);
    }
    if (transform !== undefined && typeof transform !== "function") {
      throw new Error(`DataLoader: transform must be a function (batch) => batch; got ${describe(transform)}`);
    }
    if (dtype !== "float32" && dtype !== "float64") throw new Error(`DataLoader: dtype must be "float32" or "float64"; got ${JSON.stringify(dtype)}`);
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.generator = options.generator ?? defaultGenerator;
    this.dtype = dtype;
    this.transform = transform ?? null;
    this.count = count;
    this.exampleSize = exampleSize;
  }

  /** Batches per epoch: ⌊N / B⌋ with `dropLast`, else ⌈N / B⌉. */
  get length(): number {
    return this.dropLast ? Math.floor(this.count / this.batchSize) : Math.ceil(this.count / this.batchSize);
  }

  /** One epoch of batches. */
  *[Symbol.iterator](): Iterator<Batch> {
    const order = this.epochOrder();
    for (let b = 0; b < this.length; b++) {
      const start = b * this.batchSize;
      yield this.batch(order.subarray(start, Math.min(start + this.batchSize, this.count)));
    }
  }

  /** The order of the next epoch's examples (draws from the generator when shuffling). */
  epochOrder(): Int32Array {
    if (this.shuffle) return this.generator.permutation(this.count);
    const order = new Int32Array(this.count);
    for (let i = 0; i < this.count; i++) order[i] = i;
    return order;
  }

  /** The batch of the examples `indices`, in that order (a new tensor and label array). */
  batch(indices: ArrayLike<number>): Batch {
    const n = indices.length;
    const x = this.dtype === "float64" ? new Float64Array(n * this.exampleSize) : new Float32Array(n * this.exampleSize);
    const y = new Int32Array(n);
    const picked = Int32Array.from(indices);
    this.fillBatch(picked, x, y);
    const batch: Batch = { x: new Tensor(x, [n, ...this.dataset.shape.slice(1)]), y, indices: picked };
    return this.transform === null ? batch : this.transform(batch);
  }

  /**
   * Copies the examples `indices` into caller-owned arrays — `x` (at least
   * indices.length × example size values) and `y` — without allocating: the
   * form for a training loop that reuses one batch buffer every step (figure1
   * does). The transform hook is not applied.
   */
  fillBatch(indices: ArrayLike<number>, x: Float32Array | Float64Array, y: Int32Array): void {
    const { images, labels } = this.dataset;
    const size = this.exampleSize;
    const n = indices.length;
    if (x.length < n * size || y.length < n) {
      throw new Error(`DataLoader.fillBatch: ${n} examples need ${n * size} values in x and ${n} in y; got ${x.length} and ${y.length}`);
    }
    for (let b = 0; b < n; b++) {
      const i = indices[b];
      if (!(i >= 0 && i < this.count)) throw new Error(`DataLoader.batch: index ${i} is outside the data set's 0 … ${this.count - 1}`);
      x.set(images.subarray(i * size, (i + 1) * size), b * size);
      y[b] = labels[i];
    }
  }
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v !== "object") return `${typeof v} ${String(v)}`;
  return `an object with keys ${Object.keys(v).join(", ") || "(none)"}`;
}
