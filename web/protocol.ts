/**
 * What the page and its two training workers (one per network) say to each
 * other, and the settings a run is made of. The defaults are those of
 * `covshift figure1` (src/experiments/figure1/config.ts), except that the
 * page evaluates every 100 steps instead of 500 so the curves move live.
 */
import { defaultFigure1Config } from "../src/experiments/figure1/config.js";
import type { NetworkKind } from "../src/experiments/figure1/config.js";

export type { NetworkKind };
export const NETWORKS: readonly NetworkKind[] = ["baseline", "batchnorm"];

/** The knobs of the page: each one is a claim of the paper to explore. */
export interface DemoSettings {
  /** Base SGD learning rate of both networks (figure1: 0.01). */
  lr: number;
  /** §4.2.1: "Increase learning rate" — BN-x5 and BN-x30 multiply it by 5 and 30. */
  lrMultiplier: number;
  /** Weights ~ N(0, initStd²); the drift of Figure 1(b) needs the paper's small init. */
  initStd: number;
  batchSize: number;
  /** Weight of the new batch in BN's running averages (PyTorch's convention). */
  bnMomentum: number;
  activation: "sigmoid" | "relu";
  /** Evaluate (all 10,000 test images, inference mode) every this many steps. */
  evalEvery: number;
  /** Training stops at this step. */
  steps: number;
  /** Same seed ⇒ same initial weights and the same batches for both networks. */
  seed: number;
}

export const DEFAULT_SETTINGS: DemoSettings = {
  lr: defaultFigure1Config.lr,
  lrMultiplier: 1,
  initStd: defaultFigure1Config.initStd,
  batchSize: defaultFigure1Config.batchSize,
  bnMomentum: 0.1,
  activation: "sigmoid",
  evalEvery: 100,
  steps: defaultFigure1Config.steps,
  seed: 0,
};

/** Images as rows of 784 floats in [0, 1] and their labels (shared between workers where the page is cross-origin isolated). */
export interface ImageSetMessage {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

/** A BN layer's state for the panel: running statistics, γ and β of every unit. */
export interface BnLayerState {
  layer: number;
  runningMean: number[];
  runningVar: number[];
  gamma: number[];
  beta: number[];
}

/** One evaluation: test accuracy, the probe's percentiles, and what the BN panel shows. */
export interface Evaluation {
  step: number;
  accuracy: number;
  /** Mean training loss since the previous evaluation (NaN at step 0). */
  loss: number;
  p15: number;
  p50: number;
  p85: number;
  /** Per BN layer (empty for the baseline). */
  bn: BnLayerState[];
  /** For each hidden layer, the input of its nonlinearity (all units) over the first HISTOGRAM_IMAGES test images. */
  preActivations: Float32Array[];
}

/** Test images whose pre-activations go into the panel's histogram. */
export const HISTOGRAM_IMAGES = 200;

export type ToWorker =
  | { type: "init"; network: NetworkKind; settings: DemoSettings; train: ImageSetMessage; test: ImageSetMessage }
  | { type: "reset"; settings: DemoSettings }
  /** Train until `settings.steps`; stepsPerSecond null: as fast as possible. */
  | { type: "run"; stepsPerSecond: number | null }
  | { type: "speed"; stepsPerSecond: number | null }
  /** Move the step training stops at (no restart). */
  | { type: "stopAt"; steps: number }
  | { type: "pause" }
  /** Algorithm 2: accuracy with population statistics, computed on a copy. */
  | { type: "population" }
  /** The network as it is now, as files: its state dict as safetensors and the network in inference mode as ONNX. */
  | { type: "export" };

export type FromWorker =
  | { type: "ready"; network: NetworkKind; backend: string }
  | { type: "progress"; network: NetworkKind; step: number; running: boolean }
  | { type: "eval"; network: NetworkKind; evaluation: Evaluation }
  /** The optimizer met a non-finite gradient: the run stops there (the baseline at a large learning rate). */
  | { type: "diverged"; network: NetworkKind; step: number; message: string }
  | { type: "population"; network: NetworkKind; step: number; runningAccuracy: number; populationAccuracy: number }
  | { type: "export"; network: NetworkKind; step: number; safetensors: Uint8Array; onnx: Uint8Array }
  | { type: "error"; network: NetworkKind; message: string };
