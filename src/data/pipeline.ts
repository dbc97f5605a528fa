/**
 * The CIFAR-10 input pipeline of the Inception experiment (§4.2 in
 * miniature, REFERENCE_RUNS.md): batches of randomly cropped, flipped,
 * photometrically distorted and per-channel normalized training images, in
 * one of the shuffling modes §4.2.1 contrasts, with checkpoints that resume
 * bit for bit; and center-cropped evaluation batches normalized with the
 * training statistics.
 *
 * Batches are raw typed arrays, B × 3 × crop × crop floats and B labels;
 * wrap them with `new Tensor(x, [B, 3, crop, crop])` (src/tensor/tensor.ts).
 * Keeping tensors out of here keeps the data layer below the engine.
 *
 * Pure TypeScript without `node:` imports: runs in browsers too.
 */
import { allocatePersistent } from "../backend/storage.js";
import { Generator } from "../tensor/random.js";
import {
  centerWindow,
  channelStats,
  cropInto,
  distortAndNormalizeInPlace,
  normalizeTable,
  randomWindow,
  unitTable,
  type ChannelStats,
  type CropWindow,
  type PixelTable,
} from "./augment.js";
import {
  BatchSampler,
  generatorStateFromJson,
  generatorStateToJson,
  type BatchSamplerState,
  type JsonGeneratorState,
  type ShuffleMode,
} from "./batches.js";
import type { CifarSplit } from "./cifar10.js";

/** CIFAR-10 images are 32 × 32. */
const SIZE = 32;
const CHANNELS = 3;
const IMAGE = CHANNELS * SIZE * SIZE;

/** Options of {@link CifarPipeline}. */
export interface CifarPipelineOptions {
  /** Examples per batch (64 in REFERENCE_RUNS). */
  batchSize: number;
  /** Side of the square crop (28 in REFERENCE_RUNS; 32 with `pad` 4 is the other common recipe). */
  crop: number;
  /** Black border added on every side before cropping (default 0). */
  pad?: number;
  /** Mirror each crop horizontally with probability 0.5. */
  flip: boolean;
  /**
   * Photometric distortion strength s ∈ [0, 1], see `distortInPlace`:
   * 1 is ±0.4 brightness/contrast/saturation jitter (Inception in
   * REFERENCE_RUNS), 0.25 is ±0.1 (BN-x5's "fewer distortions"), 0 is none.
   */
  distortion: number;
  /** How examples are shuffled into batches; see batches.ts. */
  shuffle: ShuffleMode;
  /** Examples per shard for `shuffle: "shard"` (a multiple of batchSize; default 16 × batchSize). */
  shardSize?: number;
  /** Seeds the shuffling and, independently, the augmentations. */
  seed: number;
  /** Normalization statistics; default: {@link channelStats} of the split given. */
  stats?: ChannelStats;
}

/** One training batch; both arrays are reused by the next `nextBatch()`. */
export interface Batch {
  /** batchSize × 3 × crop × crop, normalized. */
  x: Float32Array;
  /** Class of each example, 0–9. */
  y: Int32Array;
}

/** One evaluation batch; the arrays are reused by the next one. */
export interface EvalBatch extends Batch {
  /** Examples in this batch: batchSize, except possibly in the last. */
  count: number;
}

/** Options of {@link evalBatches}. */
export interface EvalOptions {
  /** The training statistics to normalize with. */
  stats: ChannelStats;
  /** Side of the center crop. */
  crop: number;
  /** Examples per batch; the last batch holds the rest. */
  batchSize: number;
}

/** What must be equal for a checkpoint to apply to a pipeline. */
interface PipelineConfig {
  count: number;
  batchSize: number;
  crop: number;
  pad: number;
  flip: boolean;
  distortion: number;
  shuffle: ShuffleMode;
  shardSize: number;
  seed: number;
  stats: ChannelStats;
}

/** A {@link CifarPipeline}'s checkpoint: plain JSON. */
export interface CifarPipelineState {
  config: PipelineConfig;
  sampler: BatchSamplerState;
  /** The augmentation generator's state. */
  augmentRng: JsonGeneratorState;
}

/**
 * Training batches from a CIFAR-10 split. Per example, in this order: a
 * random crop window (offsets uniform, over the padded image) and flip coin,
 * the crop read onto the 0–1 scale, the photometric distortions, then
 * normalization with the per-channel statistics. With distortion 0 the crop
 * is normalized as it is read (one pass), exactly as {@link evalBatches} does.
 *
 * `nextBatch()` allocates nothing once constructed: it refills the same
 * output arrays.
 */
export class CifarPipeline {
  readonly batchSize: number;
  readonly crop: number;
  readonly pad: number;
  readonly flip: boolean;
  readonly distortion: number;
  readonly stats: ChannelStats;
  /** floor(count / batchSize): the incomplete last batch is dropped. */
  readonly batchesPerEpoch: number;

  private readonly split: CifarSplit;
  private readonly sampler: BatchSampler;
  private readonly augmentGen: Generator;
  private readonly config: PipelineConfig;
  private readonly batch: Batch;
  /** One view per example slot of `batch.x`, made once. */
  private readonly slots: Float32Array[];
  private readonly unit: PixelTable;
  private readonly normalized: PixelTable;
  private readonly window: CropWindow = { top: 0, left: 0, flip: false };

  constructor(train: CifarSplit, opts: CifarPipelineOptions) {
    checkSplit(train);
    const pad = opts.pad ?? 0;
    const { batchSize, crop, distortion } = opts;
    if (!Number.isInteger(pad) || pad < 0) throw new Error(`pad must be a whole number of pixels ≥ 0; got ${pad}`);
    if (!Number.isInteger(crop) || crop < 1 || crop > SIZE + 2 * pad) {
      throw new Error(
        `crop must be a whole number of pixels from 1 to ${SIZE + 2 * pad} (32 + 2 × pad ${pad}); got ${crop}`,
      );
    }
    if (!(distortion >= 0 && distortion <= 1)) {
      throw new Error(
        `distortion must be a strength in [0, 1] (1 ↔ ±0.4 jitter, 0.25 ↔ ±0.1); got ${distortion}`,
      );
    }
    if (!Number.isFinite(opts.seed)) throw new Error(`seed must be a finite number; got ${opts.seed}`);
    // Two independent streams, so that changing the augmentation does not
    // change the batch order and vice versa.
    const seeds = new Generator(opts.seed);
    const samplerSeed = seeds.nextUint32();
    const augmentSeed = seeds.nextUint32();
    this.sampler = new BatchSampler({
      count: train.count,
      batchSize,
      mode: opts.shuffle,
      shardSize: opts.shardSize,
      seed: samplerSeed,
    });
    this.augmentGen = new Generator(augmentSeed);

    this.split = train;
    this.batchSize = batchSize;
    this.crop = crop;
    this.pad = pad;
    this.flip = opts.flip;
    this.distortion = distortion;
    this.stats = opts.stats ?? channelStats(train.images, train.count);
    this.batchesPerEpoch = this.sampler.batchesPerEpoch;
    this.config = {
      count: train.count,
      batchSize,
      crop,
      pad,
      flip: opts.flip,
      distortion,
      shuffle: opts.shuffle,
      shardSize: this.sampler.shardSize,
      seed: opts.seed,
      stats: { mean: [...this.stats.mean], std: [...this.stats.std] },
    };

    this.unit = unitTable();
    this.normalized = normalizeTable(this.stats.mean, this.stats.std);
    const per = CHANNELS * crop * crop;
    // Where the kernels read it (the backend's memory, when it has its own): the first convolution's forward
    // and its weight gradient use the batch in place instead of copying 600 KB in twice a step.
    this.batch = { x: allocatePersistent("float32", batchSize * per) as Float32Array, y: new Int32Array(batchSize) };
    this.slots = Array.from({ length: batchSize }, (_, b) => this.batch.x.subarray(b * per, (b + 1) * per));
  }

  /** The shape of `nextBatch().x`: [batchSize, 3, crop, crop]. */
  get shape(): [number, number, number, number] {
    return [this.batchSize, CHANNELS, this.crop, this.crop];
  }

  /** The epoch (0-based) of the most recent batch. */
  get epoch(): number {
    return this.sampler.epoch;
  }

  /** The next training batch. Its arrays are the same objects every call, overwritten each time. */
  nextBatch(): Batch {
    const { images, labels } = this.split;
    const { crop, pad, flip, distortion, augmentGen: gen, window, batch } = this;
    const indices = this.sampler.next();
    for (let b = 0; b < indices.length; b++) {
      const i = indices[b];
      batch.y[b] = labels[i];
      const slot = this.slots[b];
      randomWindow(SIZE, crop, pad, flip, gen, window);
      if (distortion === 0) {
        cropInto(slot, crop, images, SIZE, window, this.normalized, i * IMAGE);
      } else {
        cropInto(slot, crop, images, SIZE, window, this.unit, i * IMAGE);
        distortAndNormalizeInPlace(slot, distortion, gen, this.stats.mean, this.stats.std);
      }
    }
    return batch;
  }

  getState(): CifarPipelineState {
    return {
      config: copyConfig(this.config),
      sampler: this.sampler.getState(),
      augmentRng: generatorStateToJson(this.augmentGen),
    };
  }

  /**
   * Continues from a checkpoint of a pipeline built with the same options
   * and data: the following batches are bit-identical to those the
   * checkpointed pipeline would have produced.
   */
  setState(state: CifarPipelineState): void {
    const a = JSON.stringify(state.config);
    const b = JSON.stringify(this.config);
    if (a !== b) {
      throw new Error(
        `the checkpoint is of a pipeline with settings ${a}, this one has ${b}: ` +
          `build the pipeline with the checkpoint's options and the same training data`,
      );
    }
    this.sampler.setState(state.sampler);
    generatorStateFromJson(this.augmentGen, state.augmentRng);
  }

  /**
   * Evaluation batches of `split`: center crops (default this pipeline's
   * crop) normalized with this pipeline's training statistics.
   */
  evalBatches(split: CifarSplit, opts: { crop?: number; batchSize?: number } = {}): IterableIterator<EvalBatch> {
    const crop = opts.crop ?? this.crop;
    const batchSize = opts.batchSize ?? this.batchSize;
    return evalBatches(split, { stats: this.stats, crop, batchSize });
  }
}

/**
 * Every example of `split` once, in order, as center-cropped batches
 * normalized with `stats` (the training statistics). Unlike training, the
 * last batch is kept: it holds the count mod batchSize rest, as shorter
 * views (`count` says how many). The arrays are reused from batch to batch.
 */
export function* evalBatches(split: CifarSplit, opts: EvalOptions): IterableIterator<EvalBatch> {
  checkSplit(split);
  const { crop, batchSize } = opts;
  if (!Number.isInteger(crop) || crop < 1 || crop > SIZE) {
    throw new Error(`an evaluation crop must be a whole number of pixels from 1 to ${SIZE}; got ${crop}`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batchSize must be a whole number of examples, 1 or more; got ${batchSize}`);
  }
  const table = normalizeTable(opts.stats.mean, opts.stats.std);
  const window = centerWindow(SIZE, crop);
  const per = CHANNELS * crop * crop;
  const x = new Float32Array(batchSize * per);
  const y = new Int32Array(batchSize);
  const slots = Array.from({ length: batchSize }, (_, b) => x.subarray(b * per, (b + 1) * per));
  for (let start = 0; start < split.count; start += batchSize) {
    const count = Math.min(batchSize, split.count - start);
    for (let b = 0; b < count; b++) {
      const i = start + b;
      y[b] = split.labels[i];
      cropInto(slots[b], crop, split.images, SIZE, window, table, i * IMAGE);
    }
    yield count === batchSize ? { x, y, count } : { x: x.subarray(0, count * per), y: y.subarray(0, count), count };
  }
}

function checkSplit(split: CifarSplit): void {
  const { count, images, labels } = split;
  if (!Number.isInteger(count) || count < 0 || images.length !== count * IMAGE || labels.length < count) {
    throw new Error(
      `expected a CIFAR-10 split of count × 3 × 32 × 32 image bytes and count labels (as loadCifar10 returns); ` +
        `got count ${split.count}, ${split.images.length} image bytes and ${split.labels.length} labels`,
    );
  }
}

function copyConfig(c: PipelineConfig): PipelineConfig {
  return { ...c, stats: { mean: [...c.stats.mean], std: [...c.stats.std] } };
}
