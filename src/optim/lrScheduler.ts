/**
 * Learning-rate schedules shaped like PyTorch's `torch.optim.lr_scheduler`:
 * build one on an optimizer, call `step()` once per epoch (or per training
 * step, if that is the unit you count in), and it sets `optimizer.lr`.
 *
 * As in PyTorch, building a scheduler counts as its step 0 (`lastEpoch` = 0,
 * the optimizer keeps its initial rate), and each `step()` computes the next
 * rate from the current one by PyTorch's own recursive ("chainable")
 * formulas, so the sequence matches PyTorch's to within a rounding of a double.
 */

/** Anything with a learning rate a scheduler can set: `optim.SGD`, `optim.Adam`, `optim.AdamW`. */
export interface HasLearningRate {
  lr: number;
}

/** A scheduler's checkpoint (plain JSON). */
export interface LRSchedulerState {
  lastEpoch: number;
  baseLr: number;
  lr: number;
}

export abstract class LRScheduler {
  /** The optimizer's learning rate when the scheduler was built (PyTorch's `initial_lr`). */
  readonly baseLr: number;
  /** How many times `step()` has run (0 right after construction). */
  lastEpoch = 0;

  constructor(readonly optimizer: HasLearningRate) {
    const lr = optimizer?.lr;
    if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) {
      throw new Error(`${this.constructor.name}: the optimizer must have a finite learning rate lr ≥ 0; got ${lr}`);
    }
    this.baseLr = lr;
  }

  /** The rate of epoch `lastEpoch`, from the current rate (`optimizer.lr`). */
  protected abstract nextLr(): number;

  /** Advance one epoch and set the optimizer's learning rate. */
  step(): void {
    this.lastEpoch++;
    this.optimizer.lr = this.nextLr();
  }

  /** The learning rate set by the latest `step()` (the initial one before any), as PyTorch's `get_last_lr()[0]`. */
  getLastLr(): number {
    return this.optimizer.lr;
  }

  stateDict(): LRSchedulerState {
    return { lastEpoch: this.lastEpoch, baseLr: this.baseLr, lr: this.optimizer.lr };
  }

  /** Continue from a checkpoint: restores the epoch count and the optimizer's current rate. */
  loadStateDict(state: LRSchedulerState): void {
    const name = this.constructor.name;
    if (!Number.isInteger(state?.lastEpoch) || state.lastEpoch < 0) {
      throw new Error(`${name}.loadStateDict: lastEpoch must be a whole number ≥ 0; got ${state?.lastEpoch}`);
    }
    if (state.baseLr !== this.baseLr) {
      throw new Error(
        `${name}.loadStateDict: the checkpoint's schedule starts at lr ${state.baseLr}, this one at ${this.baseLr}: build the optimizer with the checkpoint's lr`,
      );
    }
    if (!Number.isFinite(state.lr) || state.lr < 0) throw new Error(`${name}.loadStateDict: lr must be a finite number ≥ 0; got ${state.lr}`);
    this.lastEpoch = state.lastEpoch;
    this.optimizer.lr = state.lr;
  }
}

function checkPositiveInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${what} must be a whole number ≥ 1; got ${value}`);
}

function checkGamma(gamma: number, who: string): void {
  if (!(gamma > 0) || !Number.isFinite(gamma)) throw new Error(`${who}: gamma must be a finite number > 0; got ${gamma}`);
}

/** lr = lr₀ · γ^⌊epoch / stepSize⌋: multiplied by `gamma` every `stepSize` epochs. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: HasLearningRate, options: { stepSize: number; gamma?: number }) {
    super(optimizer);
    checkPositiveInteger(options?.stepSize, "StepLR: stepSize");
    const gamma = options.gamma ?? 0.1;
    checkGamma(gamma, "StepLR");
    this.stepSize = options.stepSize;
    this.gamma = gamma;
  }

  protected nextLr(): number {
    const lr = this.optimizer.lr;
    return this.lastEpoch % this.stepSize === 0 ? lr * this.gamma : lr;
  }
}

/** lr = lr₀ · γ^epoch: multiplied by `gamma` every epoch. */
export class ExponentialLR extends LRScheduler {
  readonly gamma: number;

  constructor(optimizer: HasLearningRate, options: { gamma: number }) {
    super(optimizer);
    checkGamma(options?.gamma, "ExponentialLR");
    this.gamma = options.gamma;
  }

  protected nextLr(): number {
    return this.optimizer.lr * this.gamma;
  }
}

/**
 * Cosine annealing without restarts (Loshchilov & Hutter, SGDR):
 *   lr = η_min + (lr₀ − η_min) · (1 + cos(π · epoch / tMax)) / 2,
 * reached by PyTorch's recursion (each rate from the previous one); past
 * `tMax` the rate climbs back along the same cosine, as in PyTorch.
 */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;

  constructor(optimizer: HasLearningRate, options: { tMax: number; etaMin?: number }) {
    super(optimizer);
    checkPositiveInteger(options?.tMax, "CosineAnnealingLR: tMax");
    const etaMin = options.etaMin ?? 0;
    if (!(etaMin >= 0) || !Number.isFinite(etaMin)) throw new Error(`CosineAnnealingLR: etaMin must be a finite number ≥ 0; got ${etaMin}`);
    this.tMax = options.tMax;
    this.etaMin = etaMin;
  }

  protected nextLr(): number {
    const { lastEpoch: e, tMax, etaMin, baseLr } = this;
    const lr = this.optimizer.lr;
    if ((e - 1 - tMax) % (2 * tMax) === 0) {
      return lr + ((baseLr - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2;
    }
    return ((1 + Math.cos((Math.PI * e) / tMax)) / (1 + Math.cos((Math.PI * (e - 1)) / tMax))) * (lr - etaMin) + etaMin;
  }
}
