import { DataLoader, nn, noGrad, optim, scope, Tensor } from "../../index.js";
import { Generator } from "../../tensor/random.js";
import type { Figure1Config, NetworkKind } from "./config.js";
import { buildFigure1Network } from "./network.js";
import { percentiles } from "./percentile.js";

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
  /** BN network only: final accuracy with exact population statistics (Algorithm 2). */
  finalTestAccuracyPopulation?: number;
  /** The kernel backend the run trained on, e.g. "wasm (simd)". */
  backend?: string;
  wallSeconds: number;
}

/** Everything needed to continue a run exactly where it stopped. */
export interface Figure1Checkpoint {
  network: NetworkKind;
  seed: number;
  step: number;
  model: Record<string, number[]>;
  optimizer: optim.SGDState;
  dataGenerator: number[];
  epochGenerator: number[];
  cursor: number;
  lossSum: number;
  lossCount: number;
  result: Figure1RunResult;
}

const INPUT = 784;
const EVAL_CHUNK = 1000;

/**
 * One training run of §4.1 for one network and seed. Pure computation: no
 * files, no clock, no threads — the caller drives `step()` and decides when
 * to evaluate and checkpoint. Same seed ⇒ same initial weights and the same
 * order of mini-batches for both networks.
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

  constructor(
    readonly network: NetworkKind,
    readonly seed: number,
    readonly config: Figure1Config,
    private readonly train: ImageSet,
    private readonly test: ImageSet,
  ) {
    const initGenerator = new Generator(seed);
    const built = buildFigure1Network(network, config, initGenerator);
    this.model = built.model;
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
    this.batchX = new Tensor(new Float32Array(config.batchSize * INPUT), [config.batchSize, INPUT]);
    this.batchY = new Int32Array(config.batchSize);
    this.result = {
      network,
      seed,
      steps: [],
      testAccuracy: [],
      trainLoss: [],
      sigmoidInput: { p15: [], p50: [], p85: [] },
      wallSeconds: 0,
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
   * One SGD step on the next mini-batch; returns the loss. Inside scope()
   * with gradients zeroed in place, a step allocates no new buffers once warm.
   */
  trainStep(): number {
    this.nextBatch();
    this.model.train();
    const value = scope(() => {
      this.optimizer.zeroGrad({ setToNone: false });
      const loss = this.lossFn.forward(this.model.forward(this.batchX), this.batchY);
      loss.backward();
      this.optimizer.step();
      return loss.item();
    });
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

  private measure(): { accuracy: number; probeValues: Float64Array } {
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
          let h = new Tensor(this.test.images.subarray(start * INPUT, (start + rows) * INPUT), [rows, INPUT]);
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

  checkpoint(): Figure1Checkpoint {
    const model: Record<string, number[]> = {};
    for (const [k, t] of Object.entries(this.model.stateDict())) model[k] = Array.from(t.data);
    return {
      network: this.network,
      seed: this.seed,
      step: this.step,
      model,
      optimizer: this.optimizer.stateDict(),
      dataGenerator: this.dataGenerator.getState(),
      epochGenerator: this.epochGenerator,
      cursor: this.cursor,
      lossSum: this.lossSum,
      lossCount: this.lossCount,
      result: structuredClone(this.result),
    };
  }

  /** Continue from a checkpoint: the run then proceeds exactly as if never interrupted. */
  restore(c: Figure1Checkpoint): void {
    if (c.network !== this.network || c.seed !== this.seed) {
      throw new Error(`checkpoint is for ${c.network} seed ${c.seed}, not ${this.network} seed ${this.seed}`);
    }
    const own = this.model.stateDict();
    const state: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(c.model)) {
      const like = own[k];
      const data = like?.dtype === "float64" ? Float64Array.from(v) : Float32Array.from(v);
      state[k] = new Tensor(data, like?.shape ?? [v.length]);
    }
    this.model.loadStateDict(state);
    this.optimizer.loadStateDict(c.optimizer);
    const epochGen = new Generator(0);
    epochGen.setState(c.epochGenerator);
    this.permutation = epochGen.permutation(this.train.count);
    this.epochGenerator = c.epochGenerator;
    this.dataGenerator.setState(c.dataGenerator);
    this.cursor = c.cursor;
    this.lossSum = c.lossSum;
    this.lossCount = c.lossCount;
    this.step = c.step;
    Object.assign(this.result, structuredClone(c.result));
  }
}
