import { backendFor } from "../backend/index.js";
import { allocatePersistent, type Storage } from "../backend/storage.js";
import { Tensor } from "../tensor/tensor.js";
import { describeValue } from "../tensor/describe.js";

export interface AdamOptions {
  /** Step size α (default 1e-3). */
  lr?: number;
  /** Decay rates (β1, β2) of the running averages of the gradient and its square (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to √v̂ so the step stays finite where v̂ is 0 (default 1e-8). */
  eps?: number;
  /**
   * Adam: an L2 penalty, λ·p added to each gradient (default 0).
   * AdamW: decoupled weight decay, p ← p·(1 − lr·λ) before the Adam step (default 0.01).
   */
  weightDecay?: number;
  /** Use the running maximum of v̂ (Reddi et al., 2018), as PyTorch's `amsgrad`. */
  amsgrad?: boolean;
}

/** Step count and moment estimates, for checkpoints (plain JSON). */
export interface AdamState {
  /** Steps taken by each parameter. */
  steps: number[];
  expAvg: (number[] | null)[];
  expAvgSq: (number[] | null)[];
  maxExpAvgSq: (number[] | null)[];
}

/**
 * Adam (Kingma & Ba, 2015) with PyTorch's semantics (`torch.optim.Adam`,
 * non-fused, not `maximize`), for step t = 1, 2, …:
 *
 *   g ← ∇ + λ·p                       (L2 penalty; AdamW instead decays p, see {@link AdamW})
 *   m ← β1·m + (1 − β1)·g
 *   v ← β2·v + (1 − β2)·g²
 *   v_max ← max(v_max, v)              (amsgrad only; v below reads v_max)
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
 *
 * The moments m and v start at zero and are kept in the parameter's dtype,
 * as PyTorch does. Parameters whose gradient is null are skipped and their
 * step count does not advance (PyTorch keeps one count per parameter; so
 * does this). Before any parameter changes, every gradient is checked to be
 * finite: a diverged run stops with a clear error instead of writing NaN.
 */
export class Adam {
  readonly params: Tensor[];
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly amsgrad: boolean;
  /** True for AdamW: the decay multiplies the parameter instead of joining the gradient. */
  protected readonly decoupled: boolean = false;
  private expAvg: (Storage | null)[];
  private expAvgSq: (Storage | null)[];
  private maxExpAvgSq: (Storage | null)[];
  /** Steps taken by each parameter (PyTorch's per-parameter `state["step"]`). */
  private stepCounts: number[];

  constructor(params: Iterable<Tensor>, options: AdamOptions = {}, defaultWeightDecay = 0) {
    this.params = [...params];
    const name = this.constructor.name;
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = defaultWeightDecay, amsgrad = false } = options;
    if (!(lr >= 0) || !Number.isFinite(lr)) throw new Error(`${name}: lr must be a finite number ≥ 0; got ${lr}`);
    if (!Array.isArray(betas) || betas.length !== 2) {
      throw new Error(`${name}: betas must be a pair [β1, β2], e.g. [0.9, 0.999]; got ${JSON.stringify(betas)}`);
    }
    betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) throw new Error(`${name}: betas[${i}] must be in [0, 1); got ${b}`);
    });
    if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`${name}: eps must be a finite number ≥ 0; got ${eps}`);
    if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
      throw new Error(`${name}: weightDecay must be a finite number ≥ 0; got ${weightDecay}`);
    }
    this.lr = lr;
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.amsgrad = amsgrad;
    this.expAvg = this.params.map(() => null);
    this.expAvgSq = this.params.map(() => null);
    this.maxExpAvgSq = this.params.map(() => null);
    this.stepCounts = this.params.map(() => 0);
  }

  /** Forget the gradients: drop them (the default), or fill them with zeros with `{ setToNone: false }`. */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    for (const p of this.params) {
      p.dropGrad(options.setToNone ?? true);
    }
  }

  step(): void {
    const name = this.constructor.name;
    for (let i = 0; i < this.params.length; i++) {
      const g = this.params[i].grad;
      if (g === null) continue;
      if (backendFor(g.dtype).countNonFinite(g.data) > 0) {
        const bad = g.data.findIndex((v) => !Number.isFinite(v));
        throw new Error(
          `${name}.step(): the gradient of parameter ${i} (shape [${this.params[i].shape.join(", ")}]) holds ${g.data[bad]} at index ${bad}: the run has diverged. No parameter was changed; lower the learning rate or check the data.`,
        );
      }
    }
    const [beta1, beta2] = this.betas;
    const { lr, eps, weightDecay, amsgrad, decoupled } = this;
    for (let i = 0; i < this.params.length; i++) {
      const param = this.params[i];
      if (param.grad === null) continue;
      const p = param.data;
      const g = param.grad.data;
      const m = (this.expAvg[i] ??= allocatePersistent(param.dtype, param.size).fill(0));
      const v = (this.expAvgSq[i] ??= allocatePersistent(param.dtype, param.size).fill(0));
      const vMax = amsgrad ? (this.maxExpAvgSq[i] ??= allocatePersistent(param.dtype, param.size).fill(0)) : null;
      const t = ++this.stepCounts[i];
      const stepSize = lr / (1 - beta1 ** t);
      const sqrtCorrection2 = Math.sqrt(1 - beta2 ** t);
      const decay = decoupled ? 1 - lr * weightDecay : 1;
      const l2 = decoupled ? 0 : weightDecay;
      for (let k = 0; k < p.length; k++) {
        const grad = g[k] + l2 * p[k];
        if (decoupled) p[k] *= decay;
        m[k] = beta1 * m[k] + (1 - beta1) * grad;
        v[k] = beta2 * v[k] + (1 - beta2) * (grad * grad);
        let second = v[k];
        if (vMax !== null) second = vMax[k] = Math.max(vMax[k], second);
        p[k] -= stepSize * (m[k] / (Math.sqrt(second) / sqrtCorrection2 + eps));
      }
    }
  }

  stateDict(): AdamState {
    const plain = (list: (Storage | null)[]) => list.map((s) => (s === null ? null : Array.from(s)));
    return {
      steps: this.stepCounts.slice(),
      expAvg: plain(this.expAvg),
      expAvgSq: plain(this.expAvgSq),
      maxExpAvgSq: plain(this.maxExpAvgSq),
    };
  }

  /** Restores a {@link stateDict}; nothing changes unless the whole state fits these parameters. */
  loadStateDict(state: AdamState): void {
    const name = this.constructor.name;
    if (state === null || typeof state !== "object" || Array.isArray(state)) {
      throw new Error(`${name}.loadStateDict: expected { steps, expAvg, expAvgSq, maxExpAvgSq } as ${name}.stateDict() returns; got ${describeValue(state)}; nothing was loaded`);
    }
    for (const key of ["expAvg", "expAvgSq", "maxExpAvgSq"] as const) {
      const list = state[key];
      if (!Array.isArray(list) || list.length !== this.params.length) {
        throw new Error(
          `${name}.loadStateDict: ${key} must be an array with one entry per parameter (${this.params.length}); got ${describeValue(list)}; nothing was loaded`,
        );
      }
      list.forEach((s, i) => {
        if (s === null) return;
        if (!Array.isArray(s) && !ArrayBuffer.isView(s)) {
          throw new Error(`${name}.loadStateDict: ${key}[${i}] must be an array of numbers or null; got ${describeValue(s)}; nothing was loaded`);
        }
        if (s.length !== this.params[i].size) {
          throw new Error(`${name}.loadStateDict: ${key}[${i}] has ${s.length} values, the parameter ${this.params[i].size}; nothing was loaded`);
        }
        const bad = Array.prototype.findIndex.call(s, (x: unknown) => typeof x !== "number" || !Number.isFinite(x));
        if (bad >= 0) {
          throw new Error(`${name}.loadStateDict: ${key}[${i}] holds ${describeValue(s[bad])} at index ${bad} where a finite number belongs; nothing was loaded`);
        }
        if (key !== "expAvg" && Array.prototype.some.call(s, (x: number) => x < 0)) {
          throw new Error(`${name}.loadStateDict: ${key}[${i}] holds a negative value (a running average of squares cannot be negative); nothing was loaded`);
        }
      });
    }
    if (!Array.isArray(state.steps) || state.steps.length !== this.params.length || !state.steps.every((n) => Number.isInteger(n) && n >= 0)) {
      throw new Error(`${name}.loadStateDict: steps must hold one whole number ≥ 0 per parameter (${this.params.length}); got ${JSON.stringify(state.steps)}`);
    }
    const load = (list: (number[] | null)[]) =>
      list.map((s, i) => (s === null ? null : this.params[i].dtype === "float64" ? Float64Array.from(s) : Float32Array.from(s)));
    this.expAvg = load(state.expAvg);
    this.expAvgSq = load(state.expAvgSq);
    this.maxExpAvgSq = load(state.maxExpAvgSq);
    this.stepCounts = state.steps.slice();
  }
}

/**
 * AdamW (Loshchilov & Hutter, 2019), as `torch.optim.AdamW`: Adam whose
 * weight decay is decoupled from the gradient — each step first shrinks the
 * parameter, p ← p·(1 − lr·λ), then takes the Adam step on the plain
 * gradient. The default λ is 0.01, as in PyTorch.
 */
export class AdamW extends Adam {
  protected override readonly decoupled: boolean = true;

  constructor(params: Iterable<Tensor>, options: AdamOptions = {}) {
    super(params, options, 0.01);
  }
}
