import type { DType } from "../backend/storage.js";
import { storageFrom } from "../tensor/allocation.js";
import { Tensor } from "../tensor/tensor.js";
import { escapeTensor, keepTensor } from "../tensor/scope.js";
import { addIndent } from "./repr.js";
import { describeValue } from "../tensor/describe.js";

/** Parameters and buffers by their PyTorch state-dict keys ("0.weight", "1.running_mean", …). */
export type StateDict = Record<string, Tensor>;

/**
 * The base of every layer, shaped like PyTorch's `nn.Module`: a per-module
 * training flag, named parameters (trainable tensors), named buffers (state
 * such as running statistics, never touched by an optimizer) and named
 * children, in registration order.
 */
export abstract class Module {
  /** True in training mode (the default), false after `eval()`. */
  training = true;
  private readonly _parameters = new Map<string, Tensor | null>();
  private readonly _buffers = new Map<string, Tensor | null>();
  private readonly _modules = new Map<string, Module>();
  private _parent: Module | null = null;
  private _nameInParent = "";

  abstract forward(input: Tensor, ...rest: any[]): Tensor;

  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    if (t !== null) {
      t.requiresGrad = true;
      keepTensor(t); // in the backend's memory; a module built inside scope() keeps its parameters
    }
    this._parameters.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor | null): Tensor | null {
    if (t !== null) escapeTensor(t);
    this._buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this._modules.set(name, m);
    m._parent = this;
    m._nameInParent = name;
    return m;
  }

  /** Dotted path from the root module ("3", "features.1"), or the class name for a root. */
  get path(): string {
    const parts: string[] = [];
    let m: Module | null = this;
    while (m !== null && m._parent !== null) {
      parts.unshift(m._nameInParent);
      m = m._parent;
    }
    return parts.length === 0 ? "(root)" : parts.join(".");
  }

  /** How error messages name this layer: class and path, e.g. "BatchNorm1d '1'". */
  protected describe(): string {
    return `${this.constructor.name} '${this.path}'`;
  }

  *namedChildren(): IterableIterator<[string, Module]> {
    yield* this._modules.entries();
  }

  *children(): IterableIterator<Module> {
    yield* this._modules.values();
  }

  /** This module and all modules below it, depth-first, with dotted names. */
  *namedModules(prefix = ""): IterableIterator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this._modules) yield* m.namedModules(prefix === "" ? name : `${prefix}.${name}`);
  }

  *modules(): IterableIterator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }

  namedParameters(): [string, Tensor][] {
    return this.collect((m) => m._parameters);
  }

  /** Every parameter, each once, in registration order (trainable or frozen alike). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(): [string, Tensor][] {
    return this.collect((m) => m._buffers);
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  private collect(pick: (m: Module) => Map<string, Tensor | null>): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of pick(m)) {
        if (t === null || seen.has(t)) continue;
        seen.add(t);
        out.push([prefix === "" ? name : `${prefix}.${name}`, t]);
      }
    }
    return out;
  }

  /**
   * This layer's settings as PyTorch's `extra_repr()` prints them, e.g.
   * `in_features=784, out_features=100, bias=False`; empty for layers
   * without settings. Layers override it; {@link toString} uses it.
   */
  extraRepr(): string {
    return "";
  }

  /**
   * The module tree as PyTorch's `repr(model)` prints it:
   *
   *     Sequential(
   *       (0): Linear(in_features=784, out_features=100, bias=False)
   *       (1): BatchNorm1d(100, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
   *       (2): Sigmoid()
   *     )
   */
  toString(): string {
    const extra = this.extraRepr();
    const extraLines = extra === "" ? [] : extra.split("\n");
    const childLines = [...this._modules].map(([name, m]) => `(${name}): ${addIndent(m.toString(), 2)}`);
    const lines = [...extraLines, ...childLines];
    let body = "";
    if (lines.length === 1 && childLines.length === 0) body = extraLines[0];
    else if (lines.length > 0) body = `\n  ${lines.join("\n  ")}\n`;
    return `${this.constructor.name}(${body})`;
  }

  /** Set training mode on this module and every child. */
  train(mode = true): this {
    // Recursion over the children rather than the modules() generator: a training loop calls this every
    // step, and the Inception table's 300 modules took 0.5% of its step through nested generators.
    this.training = mode;
    for (const m of this._modules.values()) m.train(mode);
    return this;
  }

  /** Inference mode: BN uses running statistics, Dropout is off. */
  eval(): this {
    return this.train(false);
  }

  /** Forget gradients: drop them (the default, as PyTorch ≥ 2.0), or fill them with zeros with `{ setToNone: false }`. */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    for (const p of this.parameters()) {
      p.dropGrad(options.setToNone ?? true);
    }
  }

  /**
   * Copies of every parameter and buffer under PyTorch's keys, parameters and
   * buffers of each module in registration order as PyTorch lists them.
   */
  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [prefix, m] of this.namedModules()) {
      for (const map of [m._parameters, m._buffers]) {
        for (const [name, t] of map) {
          if (t !== null) out[prefix === "" ? name : `${prefix}.${name}`] = t.clone();
        }
      }
    }
    return out;
  }

  /**
   * State this module may do without when loading, with the value it then
   * takes — as PyTorch fills in BN's `num_batches_tracked` (0) for state
   * dicts saved before the counter existed. Keys are local names.
   */
  protected defaultsForMissingState(): Record<string, number> {
    return {};
  }

  /**
   * Local names of state that cannot be negative (BN's `running_var` and
   * `num_batches_tracked`): loadStateDict refuses a negative value there,
   * which would otherwise turn evaluation into NaN.
   */
  protected nonNegativeState(): string[] {
    return [];
  }

  /**
   * Copy values into this module's own tensors (so optimizers keep their
   * references). With `strict` (default) every key must match and nothing
   * may be missing (but state with a default, such as BN's
   * `num_batches_tracked`, which then starts at 0); shapes must match
   * always. Every problem is named in one error (missing and unexpected
   * keys, shape mismatches), and nothing is written unless the whole state
   * dict is valid.
   */
  loadStateDict(state: StateDict, options: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    if (state === null || typeof state !== "object" || Array.isArray(state)) {
      throw new Error(
        `loadStateDict: expected a state dict (an object of key → Tensor or array of numbers, e.g. model.stateDict()); got ${describeValue(state)}; nothing was loaded.`,
      );
    }
    const strict = options.strict ?? true;
    const own = new Map<string, Tensor>();
    const defaults = new Map<string, number>();
    const nonNegative = new Set<string>();
    for (const [prefix, m] of this.namedModules()) {
      const full = (name: string) => (prefix === "" ? name : `${prefix}.${name}`);
      for (const map of [m._parameters, m._buffers]) {
        for (const [name, t] of map) if (t !== null) own.set(full(name), t);
      }
      for (const [name, value] of Object.entries(m.defaultsForMissingState())) defaults.set(full(name), value);
      for (const name of m.nonNegativeState()) nonNegative.add(full(name));
    }
    const missingKeys = [...own.keys()].filter((k) => !(k in state) && !defaults.has(k));
    const unexpectedKeys = Object.keys(state).filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict && missingKeys.length > 0) problems.push(`Missing keys: ${missingKeys.join(", ")}.`);
    if (strict && unexpectedKeys.length > 0) problems.push(`Unexpected keys: ${unexpectedKeys.join(", ")}.`);
    const writes: [Tensor, ArrayLike<number>][] = [];
    const mismatches: string[] = [];
    for (const [key, target] of own) {
      const src = state[key];
      if (src === undefined) {
        if (defaults.has(key)) writes.push([target, [defaults.get(key)!]]);
        continue;
      }
      if (!(src instanceof Tensor) && !isArrayLike(src)) {
        throw new Error(`loadStateDict: '${key}' must be a Tensor or an array of numbers; got ${describeValue(src)}; nothing was loaded.`);
      }
      const values = src instanceof Tensor ? src.data : (src as ArrayLike<number>);
      const shape = src instanceof Tensor ? src.shape : null;
      if (values.length !== target.size || (shape !== null && shape.join() !== target.shape.join() && target.size !== 1)) {
        mismatches.push(`'${key}' has shape [${shape?.join(", ") ?? values.length}] but the model expects [${target.shape.join(", ")}]`);
        continue;
      }
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (typeof v !== "number") {
          throw new Error(`loadStateDict: '${key}' holds ${describeValue(v)} at index ${i} where a finite number belongs; nothing was loaded.`);
        }
        if (!Number.isFinite(v)) {
          throw new Error(`loadStateDict: '${key}' holds a non-finite value (${v}) at index ${i}; nothing was loaded.`);
        }
        if (v < 0 && nonNegative.has(key)) {
          throw new Error(`loadStateDict: '${key}' holds ${v} at index ${i}, but it cannot be negative (a variance or a count); nothing was loaded.`);
        }
      }
      writes.push([target, values]);
    }
    if (mismatches.length > 0) problems.push(`Shapes differ: ${mismatches.join("; ")}.`);
    if (problems.length > 0) {
      throw new Error(
        `loadStateDict: the state dict does not match the model; nothing was loaded. ${problems.join(" ")}` +
          (missingKeys.length > 0 || unexpectedKeys.length > 0 ? " Pass { strict: false } to load the keys that match." : ""),
      );
    }
    for (const [target, values] of writes) target.data.set(values);
    return { missingKeys, unexpectedKeys };
  }
}

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || ArrayBuffer.isView(v);
}

/** Parameter storage of the module's dtype, from plain numbers. */
export function parameterFrom(values: ArrayLike<number>, shape: number[], dtype: DType): Tensor {
  return new Tensor(storageFrom(dtype, values), shape, true);
}
