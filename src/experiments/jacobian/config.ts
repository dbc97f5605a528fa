import type { MnistInput } from "../../data/mnist.js";
import { defaultFigure1Config, type Figure1Config, validateFigure1Config } from "../figure1/config.js";

/** Every setting of `covshift jacobian`; all of it goes into jacobian.json. */
export interface JacobianConfig {
  /** SGD steps per network (figure1's: 50,000). */
  steps: number;
  /** Measure the Jacobians every this many steps. */
  every: number;
  /** How many test images the Jacobians are taken at: the first `images` of the MNIST test set. */
  images: number;
  /** The seed: initial weights and mini-batches as `covshift figure1`'s run with this seed. */
  seed: number;
  /** Training, as figure1 (same names and meanings). */
  batchSize: number;
  lr: number;
  momentum: number;
  initStd: number;
  hidden: number[];
  input: MnistInput;
  backend: string;
  /** The network state measured: inference mode (population statistics, the BN statistics held fixed). */
  mode: "inference";
  /** What a hidden layer's Jacobian is taken of (see src/experiments/jacobian/jacobian.ts). */
  jacobian: "layer 1: ∂z₁/∂x (pixels); layer l ≥ 2: ∂z_l/∂z_{l−1}; stack: ∂z_L/∂x; z = sigmoid input (after BN)";
}

const f = defaultFigure1Config;

export const defaultJacobianConfig: JacobianConfig = {
  steps: f.steps,
  every: 5000,
  images: 100,
  seed: 0,
  batchSize: f.batchSize,
  lr: f.lr,
  momentum: f.momentum,
  initStd: f.initStd,
  hidden: f.hidden,
  input: f.input,
  backend: f.backend,
  mode: "inference",
  jacobian: "layer 1: ∂z₁/∂x (pixels); layer l ≥ 2: ∂z_l/∂z_{l−1}; stack: ∂z_L/∂x; z = sigmoid input (after BN)",
};

/** The figure1 settings that train the same networks on the same batches. */
export function trainingConfig(c: JacobianConfig): Figure1Config {
  return {
    ...defaultFigure1Config,
    steps: c.steps,
    evalEvery: c.every,
    seeds: c.seed + 1,
    batchSize: c.batchSize,
    lr: c.lr,
    momentum: c.momentum,
    initStd: c.initStd,
    hidden: c.hidden,
    input: c.input,
    backend: c.backend,
  };
}

/** Reject settings that cannot run, with a message that says which and why. */
export function validateJacobianConfig(c: JacobianConfig, testImages: number = Infinity): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`jacobian: --${name} must be a positive integer; got ${v}`);
  };
  positiveInt("steps", c.steps);
  positiveInt("every", c.every);
  positiveInt("images", c.images);
  if (!Number.isInteger(c.seed) || c.seed < 0) throw new Error(`jacobian: --seed must be a non-negative integer; got ${c.seed}`);
  if (c.every > c.steps) throw new Error(`jacobian: --every (${c.every}) must not exceed --steps (${c.steps}); nothing would be measured`);
  if (c.images > testImages) {
    throw new Error(`jacobian: --images ${c.images} asks for more test images than there are (${testImages}); choose at most ${testImages}`);
  }
  validateFigure1Config(trainingConfig(c));
}
