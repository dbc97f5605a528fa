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
 * Parameters whose gradient is null are skipped. Before any parameter
 * changes, every gradient is checked to be finite: a diverged run stops with
 * a clear error instead of writing NaN into the model.
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
      if (p.grad === null) continue;
      if (options.setToNone ?? true) p.grad = null;
      else p.grad.data.fill(0);
    }
  }

  step(): void {
    for (let i = 0; i < this.params.length; i++) {
      const g = this.params[i].grad;
      if (g === null) continue;
      const d = g.data;
      if (backendFor(g.dtype).countNonFinite(d) > 0) {
        const bad = d.findIndex((v) => !Number.isFinite(v));
        throw new Error(
          `SGD.step(): the gradient of parameter ${i} (shape [${this.params[i].shape.join(", ")}]) holds ${d[bad]} at index ${bad}: the run has diverged. No parameter was changed; lower the learning rate or check the data.`,
        );
      }
    }
    // A finite gradient can still overflow in the update (a huge lr, weight
    // decay on a huge weight, a huge momentum buffer): each parameter and its
    // buffer are kept aside, updated, and checked; on the first non-finite
    // value every parameter and buffer gets its previous value back.
    const updated: number[] = [];
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      if (p.grad === null) continue;
      let v = this.velocity[i];
      const first = this.momentum !== 0 && v === null;
      // The momentum buffer lives as long as the optimizer: where the backend keeps memory of its own, there (zero-copy).
      if (first) v = this.velocity[i] = allocatePersistent(p.dtype, p.size);
      const kept = this.keptFor(i, p.dtype, p.size, v !== null && !first);
      kept.param.set(p.data);
      if (kept.velocity !== null && !first) kept.velocity.set(v!);
      kept.hadVelocity = !first;
      updated.push(i);
      const backend = backendFor(p.dtype);
      backend.sgdStep(p.data, p.grad.data, v, first, this.lr, this.momentum, this.dampening, this.weightDecay, this.nesterov);
      const inParam = backend.countNonFinite(p.data) > 0;
      if (inParam || (v !== null && backend.countNonFinite(v) > 0)) {
        const where = inParam ? p.data : v!;
        const bad = Array.prototype.findIndex.call(where, (x: number) => !Number.isFinite(x));
        const value = where[bad];
        this.restore(updated);
        throw new Error(
          `SGD.step(): the update would make ${inParam ? "parameter" : "the momentum buffer of parameter"} ${i} (shape [${p.shape.join(", ")}]) hold ${value} at index ${bad} although its gradient is finite ` +
            `(lr ${this.lr}, momentum ${this.momentum}, weight decay ${this.weightDecay}): the run has diverged. No parameter or buffer was changed; lower the learning rate or the weight decay.`,
        );
      }
    }
    this.steps++;
  }

  private kept: ({ param: Storage; velocity: Storage | null; hadVelocity: boolean } | null)[] = [];

  private keptFor(i: number, dtype: Tensor["dtype"], size: number, withVelocity: boolean) {
    let k = this.kept[i];
    if (k === undefined || k === null) {
      k = this.kept[i] = { param: dtype === "float64" ? new Float64Array(size) : new Float32Array(size), velocity: null, hadVelocity: false };
    }
    if (withVelocity && k.velocity === null) k.velocity = dtype === "float64" ? new Float64Array(size) : new Float32Array(size);
    return k;
  }

  /** Give the parameters (and buffers) listed their values from before this step. */
  private restore(indices: number[]): void {
    for (const i of indices) {
      const k = this.kept[i]!;
      this.params[i].data.set(k.param);
      if (!k.hadVelocity) this.velocity[i] = null;
      else if (k.velocity !== null) this.velocity[i]!.set(k.velocity);
    }
  }

  stateDict(): SGDState {
    return { steps: this.steps, velocity: this.velocity.map((v) => (v === null ? null : Array.from(v))) };
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
