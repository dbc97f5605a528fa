import { backendFor } from "../backend/index.js";
import { allocatePersistent, type Storage } from "../backend/storage.js";
import { Tensor } from "../tensor/tensor.js";
import { describeValue } from "../tensor/describe.js";

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  /** L2 penalty: adds weightDecay·p to each gradient. */
  weightDecay?: number;
  nesterov?: boolean;
}

/** Momentum buffers and step count, for checkpoints. */
export interface SGDState {
  steps: number;
  velocity: (number[] | null)[];
}

/**
 * Stochastic gradient descent with PyTorch's semantics:
 *   d = g + λ·p;  v = μ·v + (1 − τ)·d  (v = d on the first step);
 *   d = nesterov ? d + μ·v : v;  p ← p − lr·d.
 * Parameters whose gradient is null are skipped. A step whose gradients or
 * results are not all finite changes nothing and throws: a diverged run stops
 * with a clear error instead of writing NaN into the model.
 */
export class SGD {
  readonly params: Tensor[];
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private velocity: (Storage | null)[];
  private steps = 0;

  constructor(params: Iterable<Tensor>, options: SGDOptions) {
    this.params = [...params];
    const { lr, momentum = 0, dampening = 0, weightDecay = 0, nesterov = false } = options;
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`SGD: lr must be a finite number ≥ 0; got ${lr}`);
    if (!(momentum >= 0)) throw new Error(`SGD: momentum must be ≥ 0; got ${momentum}`);
    if (!(weightDecay >= 0)) throw new Error(`SGD: weightDecay must be ≥ 0; got ${weightDecay}`);
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new Error(`SGD: nesterov needs momentum > 0 and dampening 0; got momentum ${momentum}, dampening ${dampening}`);
    }
    this.lr = lr;
    this.momentum = momentum;
    this.dampening = dampening;
    this.weightDecay = weightDecay;
    this.nesterov = nesterov;
    this.velocity = this.params.map(() => null);
  }

  /**
   * Forget the gradients: drop them (the default, as PyTorch ≥ 2.0 does, so
   * the next backward pass adopts fresh storage), or with
   * `{ setToNone: false }` fill them with zeros.
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    for (const p of this.params) {
      p.dropGrad(options.setToNone ?? true);
    }
  }

  /**
   * One step for every parameter with a gradient, all or nothing: first each
   * parameter's update is computed into staging storage by one fused kernel
   * pass that also counts non-finite gradients and results
   * (Backend.sgdStepChecked); only when every count is 0 are the new values
   * committed (copied into the parameters by the backend's bulk copy; the new
   * momentum buffers swapped in). A non-finite gradient, or a finite one whose update overflows (a
   * huge lr, weight decay on a huge weight, a huge momentum buffer), throws
   * with nothing changed.
   */
  step(): void {
    const params = this.params;
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      const g = p.grad;
      if (g === null) continue;
      const v = this.velocity[i];
      const first = this.momentum !== 0 && v === null;
      const staged = this.stagingFor(i, p.dtype, p.size);
      const bad = backendFor(p.dtype).sgdStepChecked(
        p.data,
        g.data,
        first ? null : v,
        staged.param,
        staged.velocity,
        first,
        this.lr,
        this.momentum,
        this.dampening,
        this.weightDecay,
        this.nesterov,
      );
      if (bad > 0) this.refuse(i);
    }
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      if (p.grad === null) continue;
      const staged = this.staging[i]!;
      backendFor(p.dtype).copy(p.data, staged.param);
      if (staged.velocity !== null) {
        // The buffer just computed becomes the momentum buffer; the old one is the next step's staging.
        const old = this.velocity[i];
        this.velocity[i] = staged.velocity;
        staged.velocity = old;
      }
    }
    this.steps++;
  }

  /** Where parameter i's step is computed before it is committed; lives as long as the optimizer (in the backend's memory where it has its own). */
  private staging: ({ param: Storage; velocity: Storage | null } | undefined)[] = [];

  private stagingFor(i: number, dtype: Tensor["dtype"], size: number): { param: Storage; velocity: Storage | null } {
    let s = this.staging[i];
    if (s === undefined || s.param.length !== size) s = this.staging[i] = { param: allocatePersistent(dtype, size), velocity: null };
    // After a first step the staging buffer became the momentum buffer (and a loadStateDict may have replaced it).
    if (this.momentum !== 0 && s.velocity === null) s.velocity = allocatePersistent(dtype, size);
    return s;
  }

  /** Throws the error for a step refused at parameter i (nothing has been committed). */
  private refuse(i: number): never {
    // A non-finite gradient is named first, whichever parameter's it is (so the message does not depend on the order).
    for (let j = 0; j < this.params.length; j++) {
      const d = this.params[j].grad?.data;
      if (d === undefined) continue;
      const bad = d.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) {
        throw new Error(
          `SGD.step(): the gradient of parameter ${j} (shape [${this.params[j].shape.join(", ")}]) holds ${d[bad]} at index ${bad}: the run has diverged. No parameter was changed; lower the learning rate or check the data.`,
        );
      }
    }
    const p = this.params[i];
    const staged = this.staging[i]!;
    const atParam = staged.param.findIndex((x) => !Number.isFinite(x));
    const where = atParam >= 0 ? staged.param : staged.velocity!;
    const bad = atParam >= 0 ? atParam : where.findIndex((x) => !Number.isFinite(x));
    throw new Error(
      `SGD.step(): the update would make ${atParam >= 0 ? "parameter" : "the momentum buffer of parameter"} ${i} (shape [${p.shape.join(", ")}]) hold ${where[bad]} at index ${bad} although its gradient is finite ` +
        `(lr ${this.lr}, momentum ${this.momentum}, weight decay ${this.weightDecay}): the run has diverged. No parameter or buffer was changed; lower the learning rate or the weight decay.`,
    );
  }

  stateDict(): SGDState {
    return { steps: this.steps, velocity: this.velocity.map((v) => (v === null ? null : Array.from(v))) };
  }

  /**
   * {@link stateDict} with each momentum buffer as a typed-array copy of its
   * storage instead of a number array: what a checkpoint writes, made without
   * boxing every value (loadStateDict accepts either form).
   */
  typedStateDict(): { steps: number; velocity: (Storage | null)[] } {
    return { steps: this.steps, velocity: this.velocity.map((v) => (v === null ? null : v.slice())) };
  }

  /**
   * Restore a {@link stateDict}. Every entry is checked first (a whole
   * number of steps ≥ 0, one momentum buffer or null per parameter, each
   * of the parameter's size and holding finite numbers only); nothing
   * changes unless all of it is valid, and an error names the entry.
   */
  loadStateDict(state: SGDState): void {
    const fail: (what: string) => never = (what) => {
      throw new Error(`SGD.loadStateDict: ${what}; nothing was loaded. Pass what SGD.stateDict() returned (for ${this.params.length} parameters).`);
    };
    if (state === null || typeof state !== "object" || Array.isArray(state)) fail(`expected { steps, velocity }; got ${describeValue(state)}`);
    if (!Number.isInteger(state.steps) || state.steps < 0) fail(`'steps' must be a whole number ≥ 0; got ${describeValue(state.steps)}`);
    if (!Array.isArray(state.velocity)) fail(`'velocity' must be an array (one momentum buffer or null per parameter); got ${describeValue(state.velocity)}`);
    if (state.velocity.length !== this.params.length) {
      fail(`'velocity' has ${state.velocity.length} entries, the optimizer ${this.params.length} parameters`);
    }
    state.velocity.forEach((v, i) => {
      if (v === null) return;
      if (!Array.isArray(v) && !ArrayBuffer.isView(v)) fail(`'velocity[${i}]' must be an array of numbers or null; got ${describeValue(v)}`);
      if (v.length !== this.params[i].size) fail(`'velocity[${i}]' (momentum buffer ${i}) has ${v.length} values, the parameter ${this.params[i].size}`);
      for (let k = 0; k < v.length; k++) {
        if (typeof v[k] !== "number" || !Number.isFinite(v[k])) {
          fail(`'velocity[${i}]' (momentum buffer ${i}) holds ${typeof v[k] === "number" ? v[k] : describeValue(v[k])} at index ${k} where a finite number belongs`);
        }
      }
    });
    this.velocity = state.velocity.map((v, i) => {
      if (v === null) return null;
      const buffer = allocatePersistent(this.params[i].dtype, v.length);
      buffer.set(v);
      return buffer;
    });
    this.steps = state.steps;
  }
}
