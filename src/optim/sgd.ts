import { backendFor } from "../backend/index.js";
import { allocatePersistent, type Storage } from "../backend/storage.js";
import { Tensor } from "../tensor/tensor.js";

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
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i];
      if (p.grad === null) continue;
      let v = this.velocity[i];
      const first = this.momentum !== 0 && v === null;
      // The momentum buffer lives as long as the optimizer: where the backend keeps memory of its own, there (zero-copy).
      if (this.momentum !== 0 && v === null) v = this.velocity[i] = allocatePersistent(p.dtype, p.size);
      backendFor(p.dtype).sgdStep(p.data, p.grad.data, v, first, this.lr, this.momentum, this.dampening, this.weightDecay, this.nesterov);
    }
    this.steps++;
  }

  stateDict(): SGDState {
    return { steps: this.steps, velocity: this.velocity.map((v) => (v === null ? null : Array.from(v))) };
  }

  loadStateDict(state: SGDState): void {
    if (state.velocity.length !== this.params.length) {
      throw new Error(`SGD.loadStateDict: state has ${state.velocity.length} parameters, the optimizer ${this.params.length}`);
    }
    state.velocity.forEach((v, i) => {
      if (v !== null && v.length !== this.params[i].size) {
        throw new Error(`SGD.loadStateDict: momentum buffer ${i} has ${v.length} values, the parameter ${this.params[i].size}`);
      }
    });
    this.velocity = state.velocity.map((v, i) =>
      v === null ? null : (this.params[i].dtype === "float64" ? Float64Array.from(v) : Float32Array.from(v)),
    );
    this.steps = state.steps;
  }
}
