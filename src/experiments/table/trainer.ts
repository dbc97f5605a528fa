/**
 * One row of the Inception table: the network of inception.ts trained on
 * CIFAR-10 crops with SGD (momentum, L2 weight decay, stepwise exponential
 * learning-rate decay), its validation accuracy measured as it trains, and
 * its test accuracy at the end. Pure computation: no files, no clock, no
 * threads — the caller drives `trainStep()` and decides when to evaluate and
 * checkpoint (the experiment runner does it for the command). With
 * `parallel` (`table --workers N`: a DataParallel group of table/replica.ts
 * replicas), each batch is trained by the group's workers on its shards.
 */
import type { ChannelStats } from "../../data/augment.js";
import { generatorStateFromJson, generatorStateToJson } from "../../data/batches.js";
import {
  CheckpointFields,
  modelStateFrom,
  modelTensors,
  sgdStateFrom,
  sgdTensors,
  type CheckpointContents,
} from "../runner/checkpointState.js";
import type { CifarSplit } from "../../data/cifar10.js";
import { CifarPipeline, evalBatches, type CifarPipelineState } from "../../data/pipeline.js";
import { nn, noGrad, optim, Tensor } from "../../index.js";
import { Generator } from "../../tensor/random.js";
import { scope } from "../../tensor/scope.js";
import { buildInception } from "./inception.js";
import type { DataParallel } from "../../parallel/index.js";
import { GroupTraining } from "../groupTraining.js";
import { ROW_NAMES, type DerivedRow, type RowId, type RowSettings, type TableConfig } from "./rows.js";

/** The three splits and the training set's per-channel statistics (computed once by the caller). */
export interface TableData {
  train: CifarSplit;
  validation: CifarSplit;
  test: CifarSplit;
  stats: ChannelStats;
}

/** The measurements of one row, as table.json stores them. */
export interface TableRowResult {
  id: RowId;
  name: string;
  settings: RowSettings;
  /** Every difference from the Inception row, in words. */
  differences: string[];
  /** Steps at which the validation accuracy was measured. */
  steps: number[];
  /** Validation accuracy (center crop, inference mode) at each of `steps`, a fraction. */
  validationAccuracy: number[];
  /** Mean training loss over the steps since the previous measurement. */
  trainLoss: number[];
  /** Learning rate of the last step before each measurement. */
  learningRate: number[];
  /** Test accuracy after the last step; null until then. */
  testAccuracy: number | null;
  /** The kernel backend the row ran on, set by the caller ("" until then). */
  backend: string;
  /** Seconds spent in training steps (evaluations excluded), kept by the caller. */
  trainSeconds: number;
  /** Seconds of wall time, evaluations and checkpoints included, kept by the caller. */
  wallSeconds: number;
}

/** A row whose loss or gradients stopped being finite. */
export class RowDivergedError extends Error {
  constructor(
    readonly row: RowId,
    readonly step: number,
    detail: string,
    lr: number,
  ) {
    super(
      `${ROW_NAMES[row]}: the run diverged at step ${step} (${detail}). Lower its initial learning rate (${lr}): ` +
        `--lr for the base rate, or per row in a --config file, e.g. {"overrides": {"${row}": {"lr": ${Number((lr / 3).toPrecision(2))}}}}; ` +
        `with --resume the other rows then continue from their checkpoints.`,
    );
    this.name = "RowDivergedError";
  }
}

/** The final network's softmax outputs, count × classes row-major, per evaluated split. */
export interface TableRowOutputs {
  classes: number;
  validation: Float32Array;
  test: Float32Array;
}

/** CIFAR-10's classes. */
const CLASSES = 10;

/**
 * softmax of each row of `logits` (rows × classes) into `out` from `offset`:
 * p_j = e^(z_j − max z) / Σ_k e^(z_k − max z), in double precision (subtracting the
 * maximum keeps every exponent ≤ 0, so nothing overflows).
 */
export function softmaxRows(logits: ArrayLike<number>, rows: number, classes: number, out: Float32Array, offset = 0): void {
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let j = 0; j < classes; j++) max = Math.max(max, logits[r * classes + j]);
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += Math.exp(logits[r * classes + j] - max);
    for (let j = 0; j < classes; j++) out[offset + r * classes + j] = Math.exp(logits[r * classes + j] - max) / sum;
  }
}

/** Examples per evaluation batch: large enough to amortize per-call costs, small enough to bound memory. */
const EVAL_BATCH = 250;

/** Seeds derived from config.seed, one per random stream, so that changing one stream leaves the others alone. */
export const SEED_OFFSET = { init: 0, data: 1_000_003, dropout: 2_000_029 } as const;

/** A row's network with its initial weights (seeded by config.seed), its Dropout drawing from `dropoutGenerator`. */
export function buildRowNetwork(settings: RowSettings, config: TableConfig, dropoutGenerator: Generator): nn.Sequential {
  return buildInception({
    width: config.width,
    stemStride: config.stemStride,
    bn: settings.bn,
    activation: settings.activation,
    lrn: settings.lrn,
    dropout: settings.dropout,
    init: config.init,
    generator: new Generator(config.seed + SEED_OFFSET.init),
    dropoutGenerator,
  });
}

export class TableTrainer {
  readonly model: nn.Sequential;
  readonly result: TableRowResult;
  readonly settings: RowSettings;
  step = 0;
  private readonly optimizer: optim.SGD;
  /** lr0 · lrDecay^⌊step / lrDecayEvery⌋ (rows.ts): one ExponentialLR step per lrDecayEvery training steps. */
  private readonly schedule: optim.ExponentialLR;
  private readonly pipeline: CifarPipeline;
  private readonly dropoutGenerator: Generator;
  private readonly lossFn = new nn.CrossEntropyLoss();
  private lossSum = 0;
  private lossCount = 0;
  private readonly parallel: GroupTraining | null;

  constructor(
    readonly row: DerivedRow,
    readonly config: TableConfig,
    private readonly data: TableData,
    options: { parallel?: DataParallel } = {},
  ) {
    const s = row.settings;
    this.settings = s;
    this.dropoutGenerator = new Generator(config.seed + SEED_OFFSET.dropout);
    this.parallel = options.parallel ? new GroupTraining(options.parallel) : null;
    // A group's coordinator copy was built by the same function from the same seed: the same initial bits.
    this.model = this.parallel ? (this.parallel.model as nn.Sequential) : buildRowNetwork(s, config, this.dropoutGenerator);
    this.optimizer = new optim.SGD(this.model.parameters(), { lr: s.lr, momentum: s.momentum, weightDecay: s.weightDecay });
    this.schedule = new optim.ExponentialLR(this.optimizer, { gamma: s.lrDecay });
    this.pipeline = new CifarPipeline(data.train, {
      batchSize: config.batchSize,
      crop: config.crop,
      flip: true,
      distortion: s.distortion,
      shuffle: s.shuffle,
      seed: config.seed + SEED_OFFSET.data,
      stats: data.stats,
    });
    this.result = {
      id: row.id,
      name: row.name,
      settings: s,
      differences: row.differences,
      steps: [],
      validationAccuracy: [],
      trainLoss: [],
      learningRate: [],
      testAccuracy: null,
      backend: "",
      trainSeconds: 0,
      wallSeconds: 0,
    };
  }

  get done(): boolean {
    return this.step >= this.config.steps;
  }

  /**
   * The learning rate of the next step: the schedule is caught up to
   * ⌊step / lrDecayEvery⌋ decays first (it is a function of the step alone,
   * so a restored trainer gets there the same way as an uninterrupted one).
   */
  get lr(): number {
    return this.syncSchedule();
  }

  private syncSchedule(): number {
    const decays = Math.floor(this.step / this.settings.lrDecayEvery);
    while (this.schedule.lastEpoch < decays) this.schedule.step();
    return this.optimizer.lr;
  }

  /**
   * One SGD step on the next mini-batch; returns its loss. A non-finite loss
   * or gradient is a {@link RowDivergedError} naming the row, thrown before
   * any parameter changes.
   */
  trainStep(): number {
    // The pipeline refills the same arrays for the next batch, after this step is done with them.
    const batch = this.pipeline.nextBatch();
    const x = new Tensor(batch.x, this.pipeline.shape);
    this.syncSchedule();
    let value: number;
    try {
      if (this.parallel) {
        // The replicas follow the same schedule from their own step count (table/replica.ts).
        value = this.parallel.step(x, batch.y);
        if (!Number.isFinite(value)) throw new RowDivergedError(this.row.id, this.step + 1, `the training loss is ${value}`, this.settings.lr);
      } else {
        value = this.localStep(x, batch.y);
      }
    } catch (err) {
      if (err instanceof RowDivergedError) throw err;
      // SGD refuses non-finite gradients and BN non-finite statistics, each with its own message.
      const message = (err as Error).message;
      if (/diverged|not finite|non-finite/.test(message)) throw new RowDivergedError(this.row.id, this.step + 1, message, this.settings.lr);
      throw err;
    }
    this.lossSum += value;
    this.lossCount++;
    this.step++;
    return value;
  }

  private localStep(x: Tensor, y: Int32Array): number {
    this.model.train();
    // Inside scope() with gradients zeroed in place, a step reuses the buffers of the one before.
    return scope(() => {
      this.optimizer.zeroGrad({ setToNone: false });
      const loss = this.lossFn.forward(this.model.forward(x), y);
      const v = loss.item();
      if (!Number.isFinite(v)) throw new RowDivergedError(this.row.id, this.step + 1, `the training loss is ${v}`, this.settings.lr);
      loss.backward();
      this.optimizer.step();
      return v;
    });
  }

  /** Accuracy on every example of `split`: center crops normalized with the training statistics, inference mode. */
  accuracy(split: CifarSplit): number {
    return this.evaluate(split, false).accuracy;
  }

  /**
   * The class probabilities softmax(z) of every example of `split` (row-major,
   * count × 10, the form an ensemble averages) and the accuracy of their argmax,
   * under the same protocol as {@link accuracy}.
   */
  probabilities(split: CifarSplit): { accuracy: number; probabilities: Float32Array } {
    const { accuracy, probabilities } = this.evaluate(split, true);
    return { accuracy, probabilities: probabilities! };
  }

  private evaluate(split: CifarSplit, keepProbabilities: boolean): { accuracy: number; probabilities: Float32Array | null } {
    this.parallel?.pull();
    const wasTraining = this.model.training;
    this.model.eval();
    let correct = 0;
    const probabilities = keepProbabilities ? new Float32Array(split.count * CLASSES) : null;
    let offset = 0;
    noGrad(() => {
      const { crop } = this.config;
      for (const b of evalBatches(split, { stats: this.data.stats, crop, batchSize: EVAL_BATCH })) {
        // Each batch in its own scope: its activations' buffers serve the next batch.
        scope(() => {
          const logits = this.model.forward(new Tensor(b.x, [b.count, 3, crop, crop])).data;
          for (let r = 0; r < b.count; r++) {
            let best = 0;
            for (let j = 1; j < CLASSES; j++) if (logits[r * CLASSES + j] > logits[r * CLASSES + best]) best = j;
            if (best === b.y[r]) correct++;
          }
          if (probabilities) softmaxRows(logits, b.count, CLASSES, probabilities, offset);
        });
        offset += b.count * CLASSES;
      }
    });
    this.model.train(wasTraining);
    return { accuracy: split.count === 0 ? NaN : correct / split.count, probabilities };
  }

  /** Measure the validation accuracy and append it, with the mean training loss since the last measurement. */
  record(): void {
    const r = this.result;
    r.steps.push(this.step);
    r.validationAccuracy.push(this.accuracy(this.data.validation));
    r.trainLoss.push(this.lossCount > 0 ? this.lossSum / this.lossCount : NaN);
    r.learningRate.push(this.optimizer.lr); // the rate of the last step (the initial one before any)
    this.lossSum = 0;
    this.lossCount = 0;
  }

  /**
   * After the last step: the test accuracy, and the final network's class
   * probabilities on the validation and test images (what an ensemble of rows
   * averages, §4.2.3; kept beside table.json rather than in it).
   */
  finish(): TableRowOutputs {
    const validation = this.probabilities(this.data.validation);
    const test = this.probabilities(this.data.test);
    this.result.testAccuracy = test.accuracy;
    return { classes: CLASSES, validation: validation.probabilities, test: test.probabilities };
  }

  /** Everything needed to continue exactly where it stopped: the tensors in binary, the rest as JSON (see runner/checkpoint.ts). */
  checkpoint(): CheckpointContents {
    if (this.parallel) throw new Error("TableTrainer: a data-parallel trainer's optimizer state is in its workers; use checkpointAsync()");
    return this.checkpointOf(this.optimizer.stateDict());
  }

  /** {@link checkpoint} for either kind of trainer (a data-parallel one asks rank 0 for the optimizer's state). */
  async checkpointAsync(): Promise<CheckpointContents> {
    if (!this.parallel) return this.checkpoint();
    return this.checkpointOf(await this.parallel.optimizerState());
  }

  private checkpointOf(opt: optim.SGDState): CheckpointContents {
    return {
      tensors: { ...modelTensors(this.model.stateDict()), ...sgdTensors(opt) },
      state: {
        row: this.row.id,
        step: this.step,
        optimizerSteps: opt.steps,
        pipeline: this.pipeline.getState(),
        dropoutRng: generatorStateToJson(this.dropoutGenerator),
        lossSum: this.lossSum,
        lossCount: this.lossCount,
        result: structuredClone(this.result),
      },
    };
  }

  /**
   * Continue from a checkpoint: the row then proceeds exactly as if never
   * interrupted. Every field is checked first (`path` names the file in
   * errors): the row and its settings, 0 ≤ step < steps, one measurement
   * per evaluation so far, finite numbers, every tensor the model and
   * optimizer need and no other; the pipeline checks its own state.
   */
  restore(c: CheckpointContents, path = "(checkpoint)"): void {
    if (this.parallel) throw new Error("TableTrainer: a data-parallel trainer loads its workers' optimizer state; use restoreAsync()");
    this.restoreFields(c, path);
  }

  /** {@link restore} for either kind of trainer (a data-parallel one loads the state into every replica). */
  async restoreAsync(c: CheckpointContents, path = "(checkpoint)"): Promise<void> {
    const optimizerState = this.restoreFields(c, path);
    await this.parallel?.restore(optimizerState);
  }

  private restoreFields(c: CheckpointContents, path: string): optim.SGDState {
    const f = new CheckpointFields(path, c.state);
    const row = f.str("row");
    if (row !== this.row.id) f.fail("row", `is ${JSON.stringify(row)}, but this is row ${this.row.id}`);
    const r = f.object("result");
    const settings = r.raw("settings");
    if (JSON.stringify(settings) !== JSON.stringify(this.settings)) {
      r.fail("settings", `are ${JSON.stringify(settings)}, but this run has ${JSON.stringify(this.settings)}; resume with the same options`);
    }
    const step = f.int("step", 0, this.config.steps - 1);
    const optimizerSteps = f.int("optimizerSteps", step, step);
    const dropoutRng = f.generator("dropoutRng");
    const lossCount = f.int("lossCount", 0, Math.min(step, this.config.evalEvery));
    const lossSum = f.num("lossSum");
    const pipeline = f.object("pipeline");
    pipeline.object("config");
    pipeline.object("sampler");
    pipeline.generator("augmentRng");
    const n = Math.floor(step / this.config.evalEvery);
    const steps = r.numbers("steps", n);
    steps.forEach((s, i) => s !== (i + 1) * this.config.evalEvery && r.fail(`steps[${i}]`, `is ${s}; evaluations happen every ${this.config.evalEvery} steps`));
    const validationAccuracy = r.numbers("validationAccuracy", n, [0, 1]);
    const trainLoss = r.numbers("trainLoss", n, [0, Infinity]);
    const learningRate = r.numbers("learningRate", n, [0, Infinity]);
    const wallSeconds = r.num("wallSeconds", 0);
    const trainSeconds = r.num("trainSeconds", 0);
    if (r.raw("testAccuracy") !== null) r.fail("testAccuracy", "must be null before the last step");
    const params = this.optimizer.params.length;
    const wantVelocity = step > 0 && this.settings.momentum !== 0;
    for (const key of Object.keys(c.tensors)) {
      if (key.startsWith("model.")) continue;
      const m = /^optimizer\.velocity\.(\d+)$/.exec(key);
      if (m === null || Number(m[1]) >= params || !wantVelocity) f.fail(key, "is a tensor this run does not have");
    }
    for (let i = 0; wantVelocity && i < params; i++) {
      if (!(`optimizer.velocity.${i}` in c.tensors)) f.fail(`optimizer.velocity.${i}`, `(the momentum buffer of parameter ${i}) is missing`);
    }
    try {
      this.pipeline.setState(c.state.pipeline as CifarPipelineState);
    } catch (err) {
      f.fail("pipeline", `does not fit this run: ${(err as Error).message}`); // found by fuzzing: the pipeline's own error did not name the file
    }
    this.model.loadStateDict(modelStateFrom(c.tensors, this.model.stateDict()));
    const optimizerState = sgdStateFrom(c.tensors, params, optimizerSteps);
    this.optimizer.loadStateDict(optimizerState); // checked here in either case
    generatorStateFromJson(this.dropoutGenerator, dropoutRng);
    this.lossSum = lossSum;
    this.lossCount = lossCount;
    this.step = step;
    Object.assign(this.result, { steps, validationAccuracy, trainLoss, learningRate, wallSeconds, trainSeconds, testAccuracy: null });
    return optimizerState;
  }
}

/** {@link TableRowOutputs} as plain JSON: the float32 arrays as base64 of their little-endian bytes. */
export interface EncodedRowOutputs {
  classes: number;
  validation: string;
  test: string;
}

export function encodeRowOutputs(o: TableRowOutputs): EncodedRowOutputs {
  return { classes: o.classes, validation: toBase64(o.validation), test: toBase64(o.test) };
}

/** The inverse of {@link encodeRowOutputs}; `where` names the file in errors. */
export function decodeRowOutputs(e: EncodedRowOutputs, where: string): TableRowOutputs {
  if (e === null || typeof e !== "object" || !Number.isInteger(e.classes) || typeof e.validation !== "string" || typeof e.test !== "string") {
    throw new Error(`${where}: expected {"classes": n, "validation": base64, "test": base64} (a finished row's softmax outputs); rerun that row with --resume after deleting the file`);
  }
  return { classes: e.classes, validation: fromBase64(e.validation, "float32") as Float32Array, test: fromBase64(e.test, "float32") as Float32Array };
}

function toBase64(data: Float32Array | Float64Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

function fromBase64(b64: string, dtype: "float32" | "float64"): Float32Array | Float64Array {
  const bytes = Buffer.from(b64, "base64");
  // Copy into a fresh, aligned buffer: Buffer's pool may not be 8-byte aligned.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return dtype === "float64" ? new Float64Array(copy.buffer) : new Float32Array(copy.buffer);
}
