import { MNIST_INPUTS, type MnistInput } from "../../data/mnistFormat.js";
import { checkWorkers } from "../groupTraining.js";

/** Every setting of the Figure 1 experiment (§4.1); all of it goes into figure1.json. */
export interface Figure1Config {
  /** SGD steps per network and seed (the paper: 50,000). */
  steps: number;
  /** Examples per mini-batch (the paper: 60). */
  batchSize: number;
  /** Evaluate every this many steps. */
  evalEvery: number;
  /** Number of seeds; seeds 0..seeds−1 are run. */
  seeds: number;
  /** Plain SGD with momentum, the same for both networks. */
  lr: number;
  momentum: number;
  /** Weights ~ N(0, initStd²), biases 0 ("small random Gaussian values"). */
  initStd: number;
  /**
   * "normal" (the default when unset): the paper's N(0, initStd²) weights and
   * zero biases. "default": PyTorch's nn.Linear initialization instead,
   * weights and biases ~ U(±1/√fan_in) (initStd unused) — a sweep setting.
   */
  init?: "normal" | "default";
  /** Widths of the hidden sigmoid layers (the paper: three of 100). */
  hidden: number[];
  /** "scaled": pixels/255 in [0, 1]; "binary": pixel ≥ 128 → 1, else 0; "standardized": (pixels/255 − 0.1307)/0.3081. */
  input: MnistInput;
  /** Which unit of the last hidden layer's sigmoid input is probed. */
  probeUnit: number;
  /** The probe's evaluation set: the 10,000 test images, in inference mode. */
  probeSet: "test";
  /** Training mini-batches averaged for the final population statistics (Algorithm 2, step 10). */
  populationBatches: number;
  /** Kernel backend for float32 work. */
  backend: string;
  /** Nonlinearity of the hidden layers; the paper's §4.1 uses "sigmoid" (the default when unset). */
  activation?: "sigmoid" | "relu";
  /** Momentum of the BN layers' running averages (PyTorch's convention; BatchNorm's default 0.1 when unset). */
  bnMomentum?: number;
  /**
   * Data-parallel workers per run (1 when unset): with more than one, every
   * network trains through DataParallel, each worker on batchSize/workers
   * examples of every mini-batch (same batches, same initial weights).
   */
  workers?: number;
  /**
   * With workers > 1: BN layers become SyncBatchNorm, normalizing with the
   * whole batch's statistics (true when unset); false leaves each worker's
   * BN on its own shard. runFigure1 records false for one worker (whose BN
   * sees the whole batch without it); the CLI refuses --no-sync-bn with one
   * worker, since it would change nothing.
   */
  syncBatchNorm?: boolean;
  /**
   * What the BN network's normalization layers are (BatchNorm1d when unset):
   * ghost BN over virtual batches, or Batch Renorm with its schedule —
   * covshift batchsize's variants of the same network.
   */
  norm?: Figure1Norm;
}

export type Figure1Norm =
  | { kind: "ghost"; virtualBatchSize: number }
  | { kind: "renorm"; rMax: number; dMax: number; warmupSteps: number; rMaxReachedAt: number; dMaxReachedAt: number };

export const defaultFigure1Config: Figure1Config = {
  steps: 50_000,
  batchSize: 60,
  evalEvery: 500,
  seeds: 3,
  lr: 0.01,
  momentum: 0.9,
  initStd: 0.01,
  hidden: [100, 100, 100],
  input: "scaled",
  probeUnit: 0,
  probeSet: "test",
  populationBatches: 1000,
  backend: "auto",
};

export type NetworkKind = "baseline" | "batchnorm";

/** Reject settings that cannot run, with a message that says which and why. */
export function validateFigure1Config(c: Figure1Config): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`figure1: --${name} must be a positive integer; got ${v}`);
  };
  positiveInt("steps", c.steps);
  positiveInt("batch-size", c.batchSize);
  positiveInt("eval-every", c.evalEvery);
  positiveInt("seeds", c.seeds);
  positiveInt("population-batches", c.populationBatches);
  if (c.evalEvery > c.steps) {
    throw new Error(`figure1: --eval-every (${c.evalEvery}) must be at most --steps (${c.steps}): the run is measured every --eval-every steps`);
  }
  if (c.batchSize < 2) throw new Error("figure1: --batch-size must be at least 2 (BN needs two values per unit)");
  if (!(c.lr > 0)) throw new Error(`figure1: --lr must be > 0; got ${c.lr}`);
  if (!(c.momentum >= 0 && c.momentum < 1)) throw new Error(`figure1: --momentum must be in [0, 1); got ${c.momentum}`);
  if (!(c.initStd > 0)) throw new Error(`figure1: --init-std must be > 0; got ${c.initStd}`);
  if (!MNIST_INPUTS.includes(c.input)) throw new Error(`figure1: --input must be ${MNIST_INPUTS.map((m) => `"${m}"`).join(", ")}; got "${c.input}"`);
  if (c.init !== undefined && c.init !== "normal" && c.init !== "default") {
    throw new Error(`figure1: --init must be "normal" (N(0, init-std²)) or "default" (PyTorch's U(±1/√fan_in)); got "${c.init}"`);
  }
  if (c.activation !== undefined && c.activation !== "sigmoid" && c.activation !== "relu") {
    throw new Error(`figure1: activation must be "sigmoid" or "relu"; got "${c.activation}"`);
  }
  if (c.bnMomentum !== undefined && !(c.bnMomentum > 0 && c.bnMomentum <= 1)) {
    throw new Error(`figure1: BN momentum must be in (0, 1]; got ${c.bnMomentum}`);
  }
  checkWorkers("figure1", c);
  const last = c.hidden[c.hidden.length - 1];
  if (!Number.isInteger(c.probeUnit) || c.probeUnit < 0 || c.probeUnit >= last) {
    throw new Error(`figure1: --probe-unit must be an integer in [0, ${last - 1}] (units of the last hidden layer); got ${c.probeUnit}`);
  }
}

