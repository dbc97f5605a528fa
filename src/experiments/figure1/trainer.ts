import { DataLoader, nn, noGrad, optim, scope, Tensor } from "../../index.js";
import { Generator } from "../../tensor/random.js";
import { allocatePersistent } from "../../backend/storage.js";
import type { Figure1Config, NetworkKind } from "./config.js";
import { buildFigure1Network } from "./network.js";
import { percentiles } from "./percentile.js";
import type { DataParallel } from "../../parallel/index.js";
import { GroupTraining } from "../groupTraining.js";
import { generatorStateFromJson, generatorStateToJson } from "../../data/batches.js";
import {
  CheckpointFields,
  modelStateFrom,
  modelTensors,
  sgdStateFrom,
  sgdTensors,
  type CheckpointContents,
} from "../runner/checkpointState.js";

/** Images as rows of 784 floats and their labels. */
export interface ImageSet {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

/** The measurements of one network and seed, as figure1.json stores them. */
export interface Figure1RunResult {
  network: NetworkKind;
  seed: number;
  steps: number[];
  testAccuracy: number[];
  trainLoss: number[];
  sigmoidInput: { p15: number[]; p50: number[]; p85: number[] };
  /** The training loss of each of the first {@link EARLY_STEPS} steps (to compare runs step by step, e.g. over --workers). */
  earlyLoss: number[];
  /** BN network only: final accuracy with exact population statistics (Algorithm 2). */
  finalTestAccuracyPopulation?: number;
  /** The kernel backend the run trained on, e.g. "wasm (simd)". */
  backend?: string;
  wallSeconds: number;
  /** Seconds spent in training steps (not evaluating or checkpointing). */
  trainSeconds: number;
}

const INPUT = 784;
const EVAL_CHUNK = 1000;
/** Steps whose losses are kept one by one (Figure1RunResult.earlyLoss). */
export const EARLY_STEPS = 100;

/**
 * One training run of §4.1 for one network and seed. Pure computation: no
 * files, no clock, no threads — the caller drives `step()` and decides when
 * to evaluate and checkpoint. Same seed ⇒ same initial weights and the same
 * order of mini-batches for both networks.
 *
 * With `parallel` (a DataParallel group whose replicas build this network:
 * figure1/replica.ts), each step runs on the group's workers, every one on
 * its shard of the same mini-batch; `model` is then the group's coordinator
 * copy, brought up to date (`pull`) before it is evaluated or saved, and
 * the optimizer's state lives in the replicas.
 */
export class Figure1Trainer {
  readonly model: nn.Sequential;
  readonly result: Figure1RunResult;
  step = 0;
  private readonly probeLayer: number;
  private readonly optimizer: optim.SGD;
  private readonly lossFn = new nn.CrossEntropyLoss();
  private readonly dataGenerator: Generator;
  private readonly loader: DataLoader;
  private epochGenerator: number[];
  private permutation: Int32Array;
  private cursor = 0;
  private lossSum = 0;
  private lossCount = 0;
  private readonly batchX: Tensor;
  private readonly batchY: Int32Array;
  private readonly parallel: GroupTraining | null;
  private testInKernelMemory: Float32Array | null = null;

  constructor(
    readonly network: NetworkKind,
    readonly seed: number,
    readonly config: Figure1Config,
    private readonly train: ImageSet,
    private readonly test: ImageSet,
    options: { parallel?: DataParallel } = {},
  ) {
    const initGenerator = new Generator(seed);
    const built = buildFigure1Network(network, config, initGenerator);
    this.parallel = options.parallel ? new GroupTraining(options.parallel) : null;
    // The group's coordinator copy was built by the same factory from the same seed: the same initial bits.
    this.model = this.parallel ? (this.parallel.model as nn.Sequential) : built.model;
    this.probeLayer = built.probeLayer;
    this.optimizer = new optim.SGD(this.model.parameters(), { lr: config.lr, momentum: config.momentum });
    // Seeded apart from the initialization, so that both networks of a seed see the same batches.
    this.dataGenerator = new Generator(1_000_003 + seed);
    // The batches are the core's DataLoader's: a fresh permutation of the training set every
    // epoch, the incomplete last batch dropped. The trainer keeps the epoch's order and its
    // position itself (they go into checkpoints) and fills one reused batch buffer.
    this.loader = new DataLoader(
      { images: train.images, labels: train.labels, shape: [train.count, INPUT] },
      { batchSize: config.batchSize, shuffle: true, dropLast: true, generator: this.dataGenerator },
    );
    this.epochGenerator = this.dataGenerator.getState();
    this.permutation = this.loader.epochOrder();
    // Where the kernels read it (the backend's memory, when it has its own): filled in place, never copied in.
    this.batchX = new Tensor(allocatePersistent("float32", config.batchSize * INPUT), [config.batchSize, INPUT]);
    this.batchY = new Int32Array(config.batchSize);
    this.result = {
      network,
      seed,
      steps: [],
      testAccuracy: [],
      trainLoss: [],
      earlyLoss: [],
      sigmoidInput: { p15: [], p50: [], p85: [] },
      wallSeconds: 0,
      trainSeconds: 0,
    };
  }

  get done(): boolean {
    return this.step >= this.config.steps;
  }

  /** Fill the batch from the shuffled training set; a new permutation each epoch (the incomplete tail is dropped). */
  private nextBatch(): void {
    const B = this.config.batchSize;
    if (this.cursor + B > this.train.count) {
      this.epochGenerator = this.dataGenerator.getState();
      this.permutation = this.loader.epochOrder();
      this.cursor = 0;
    }
    this.loader.fillBatch(this.permutation.subarray(this.cursor, this.cursor + B), this.batchX.data as Float32Array, this.batchY);
    this.cursor += B;
  }

  /**
   * One SGD step on the next mini-batch; returns the loss. Inside scope(),
   * a step allocates no new buffers once warm: each backward pass writes the
   * gradients into the storage of those zeroGrad() dropped (no zero-fill and
   * no sum into zeros).
   */
  trainStep(): number {
    this.nextBatch();
    let value: number;
    if (this.parallel) {
      value = this.parallel.step(this.batchX, this.batchY);
    } else {
      this.model.train();
      value = scope(() => {
        this.optimizer.zeroGrad();
        const loss = this.lossFn.forward(this.model.forward(this.batchX), this.batchY);
        loss.backward();
        this.optimizer.step();
        return loss.item();
      });
    }
    if (this.step < EARLY_STEPS) this.result.earlyLoss.push(value);
    this.lossSum += value;
    this.lossCount++;
    this.step++;
    return value;
  }

  /**
   * Test accuracy on all test images in inference mode (running statistics),
   * and the probed sigmoid input's 15th/50th/85th percentiles over them.
   */
  evaluate(): { accuracy: number; probe: number[] } {
    const { accuracy, probeValues } = this.measure();
    return { accuracy, probe: percentiles(probeValues, [15, 50, 85]) };
  }

  /**
   * The test images where the kernels read them (the backend's memory, when
   * it has its own), copied there at the first evaluation and kept: not
   * 31 MB copied in again at each of a run's evaluations.
   */
  private testImages(): Float32Array {
    if (this.testInKernelMemory === null) {
      const images = allocatePersistent("float32", this.test.count * INPUT) as Float32Array;
      images.set(this.test.images.subarray(0, this.test.count * INPUT));
      this.testInKernelMemory = images;
    }
    return this.testInKernelMemory;
  }

  private measure(): { accuracy: number; probeValues: Float64Array } {
    this.parallel?.pull();
    const wasTraining = this.model.training;
    this.model.eval();
    const n = this.test.count;
    const probeValues = new Float64Array(n);
    let correct = 0;
    noGrad(() => {
      for (let start = 0; start < n; start += EVAL_CHUNK) {
        const rows = Math.min(EVAL_CHUNK, n - start);
        // Each chunk in its own scope: the activations' buffers serve the next chunk.
        scope(() => {
          let h = new Tensor(this.testImages().subarray(start * INPUT, (start + rows) * INPUT), [rows, INPUT]);
          for (let l = 0; l < this.model.length; l++) {
            h = this.model.at(l).forward(h);
            if (l === this.probeLayer) {
              const width = h.shape[1];
              for (let r = 0; r < rows; r++) probeValues[start + r] = h.data[r * width + this.config.probeUnit];
            }
          }
          for (let r = 0; r < rows; r++) {
            let best = 0;
            for (let j = 1; j < 10; j++) if (h.data[r * 10 + j] > h.data[r * 10 + best]) best = j;
            if (best === this.test.labels[start + r]) correct++;
          }
        });
      }
    });
    this.model.train(wasTraining);
    return { accuracy: correct / n, probeValues };
  }

  /** Evaluate and append a row of measurements (the mean training loss since the last one). */
  record(): void {
    const { accuracy, probe } = this.evaluate();
    const r = this.result;
    r.steps.push(this.step);
    r.testAccuracy.push(accuracy);
    r.trainLoss.push(this.lossCount > 0 ? this.lossSum / this.lossCount : NaN);
    r.sigmoidInput.p15.push(probe[0]);
    r.sigmoidInput.p50.push(probe[1]);
    r.sigmoidInput.p85.push(probe[2]);
    this.lossSum = 0;
    this.lossCount = 0;
  }

  /**
   * After training, the BN network's accuracy with exact population
   * statistics: recompute them over `populationBatches` training batches
   * taken in order (Algorithm 2, step 10). The trained model is not altered:
   * the statistics are computed on a copy.
   */
  populationAccuracy(): number {
    this.parallel?.pull();
    const copy = nn.deepCopy(this.model);
    const B = this.config.batchSize;
    const batches = Math.min(this.config.populationBatches, Math.floor(this.train.count / B));
    const gen = function* (train: ImageSet) {
      for (let b = 0; b < batches; b++) {
        yield new Tensor(train.images.slice(b * B * INPUT, (b + 1) * B * INPUT), [B, INPUT]);
      }
    };
    nn.recomputeBatchNormStats(copy, gen(this.train));
    const original = this.model;
    (this as { model: nn.Sequential }).model = copy;
    try {
      return this.measure().accuracy;
    } finally {
      (this as { model: nn.Sequential }).model = original;
    }
  }

  /** Everything needed to continue exactly where it stopped: the tensors in binary, the rest as JSON (see runner/checkpoint.ts). */
  checkpoint(): CheckpointContents {
    if (this.parallel) throw new Error("Figure1Trainer: a data-parallel trainer's optimizer state is in its workers; use checkpointAsync()");
    return this.checkpointOf(this.optimizer.typedStateDict());
  }

  /** {@link checkpoint} for either kind of trainer (a data-parallel one asks rank 0 for the optimizer's state). */
  async checkpointAsync(): Promise<CheckpointContents> {
    if (!this.parallel) return this.checkpoint();
    return this.checkpointOf(await this.parallel.optimizerState());
  }

  private checkpointOf(opt: { steps: number; velocity: (ArrayLike<number> | null)[] }): CheckpointContents {
    return {
      tensors: { ...modelTensors(this.model.stateDict()), ...sgdTensors(opt) },
      state: {
        network: this.network,
        seed: this.seed,
        step: this.step,
        optimizerSteps: opt.steps,
        dataGenerator: generatorStateToJson(this.dataGenerator),
        epochGenerator: this.epochGenerator.map((v) => (Number.isNaN(v) ? null : v)),
        cursor: this.cursor,
        lossSum: this.lossSum,
        lossCount: this.lossCount,
        result: structuredClone(this.result),
      },
    };
  }

  /**
   * Continue from a checkpoint: the run then proceeds exactly as if never
   * interrupted. Every field is checked first (`path` names the file in
   * errors): the run it belongs to, 0 ≤ step ≤ steps, the data cursor within
   * the training set, one measurement per evaluation so far, finite numbers
   * everywhere, every tensor the model and optimizer need and no other.
   */
  restore(c: CheckpointContents, path = "(checkpoint)", options: { evaluations?: number } = {}): void {
    if (this.parallel) throw new Error("Figure1Trainer: a data-parallel trainer loads its workers' optimizer state; use restoreAsync()");
    this.restoreFields(c, path, options);
  }

  /** {@link restore} for either kind of trainer (a data-parallel one loads the state into every replica). */
  async restoreAsync(c: CheckpointContents, path = "(checkpoint)", options: { evaluations?: number } = {}): Promise<void> {
    const optimizerState = this.restoreFields(c, path, options);
    await this.parallel?.restore(optimizerState);
  }

  private restoreFields(c: CheckpointContents, path: string, options: { evaluations?: number }): optim.SGDState {
    const f = new CheckpointFields(path, c.state);
    const network = f.str("network");
    const seed = f.int("seed", 0, Number.MAX_SAFE_INTEGER);
    if (network !== this.network || seed !== this.seed) {
      f.fail("network", `and "seed" say ${network} seed ${seed}, but this run is ${this.network} seed ${this.seed}`);
    }
    const step = f.int("step", 0, this.config.steps);
    if (step === this.config.steps) f.fail("step", `is ${step}, the last step: a finished run leaves a result, not a checkpoint`);
    const optimizerSteps = f.int("optimizerSteps", step, step);
    const dataGenerator = f.generator("dataGenerator");
    const epochGenerator = f.generator("epochGenerator");
    const cursor = f.int("cursor", 0, this.train.count);
    const lossCount = f.int("lossCount", 0, step);
    const lossSum = f.num("lossSum");
    const r = f.object("result");
    if (r.str("network") !== this.network || r.int("seed", 0, Number.MAX_SAFE_INTEGER) !== this.seed) {
      r.fail("network", "and \"seed\" do not match the checkpoint's run");
    }
    // One measurement per evaluation so far (a caller that evaluates on its own, as jacobian does, records none here).
    const n = options.evaluations ?? Math.floor(step / this.config.evalEvery);
    const steps = r.numbers("steps", n);
    steps.forEach((s, i) => s !== (i + 1) * this.config.evalEvery && r.fail(`steps[${i}]`, `is ${s}; evaluations happen every ${this.config.evalEvery} steps`));
    const testAccuracy = r.numbers("testAccuracy", n, [0, 1]);
    const trainLoss = r.numbers("trainLoss", n, [0, Infinity]);
    const earlyLoss = r.numbers("earlyLoss", Math.min(step, EARLY_STEPS), [0, Infinity]);
    const probe = r.object("sigmoidInput");
    const sigmoidInput = { p15: probe.numbers("p15", n), p50: probe.numbers("p50", n), p85: probe.numbers("p85", n) };
    const wallSeconds = r.num("wallSeconds", 0);
    const trainSeconds = r.num("trainSeconds", 0);
    const params = this.optimizer.params.length;
    const wantVelocity = step > 0 && this.config.momentum !== 0;
    for (const key of Object.keys(c.tensors)) {
      const m = /^optimizer\.velocity\.(\d+)$/.exec(key);
      if (key.startsWith("model.")) continue;
      if (m === null || Number(m[1]) >= params || !wantVelocity) f.fail(key, "is a tensor this run does not have");
    }
    for (let i = 0; wantVelocity && i < params; i++) {
      if (!(`optimizer.velocity.${i}` in c.tensors)) f.fail(`optimizer.velocity.${i}`, `(the momentum buffer of parameter ${i}) is missing`);
    }
    this.model.loadStateDict(modelStateFrom(c.tensors, this.model.stateDict()));
    const optimizerState = sgdStateFrom(c.tensors, params, optimizerSteps);
    this.optimizer.loadStateDict(optimizerState); // checked here in either case
    // The generator as it was when this epoch began: its permutation is this epoch's order.
    const epochGen = new Generator(0);
    generatorStateFromJson(epochGen, epochGenerator);
    this.epochGenerator = epochGen.getState();
    this.permutation = epochGen.permutation(this.train.count);
    generatorStateFromJson(this.dataGenerator, dataGenerator);
    this.cursor = cursor;
    this.lossSum = lossSum;
    this.lossCount = lossCount;
    this.step = step;
    Object.assign(this.result, { steps, testAccuracy, trainLoss, earlyLoss, sigmoidInput, wallSeconds, trainSeconds });
    return optimizerState;
  }
}
