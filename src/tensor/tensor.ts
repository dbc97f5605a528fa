import { backendFor } from "../backend/index.js";
import { allocate, storageFrom } from "./allocation.js";
import { checkShape, sizeOf } from "./shape.js";
import type { DType, Storage } from "../backend/storage.js";
import { runBackward, isGradEnabled, type GradNode as GraphNode } from "./autograd.js";
import { exchangeStorage, noteGraphNode, noteTensor } from "./scope.js";
import { noteGroupTensor, type ActivationGroup } from "./activationGroup.js";
import { describeValue } from "./describe.js";

/**
 * Gradients shorter than this are copied into the dropped gradient's storage
 * rather than exchanged for it: moving a backend allocator's adoption (a
 * finalizer registration) costs about as much as copying ~6,000 values of
 * shared memory.
 */
const EXCHANGE_MIN_LENGTH = 4096;

/** A node of the define-by-run graph (see autograd.ts), over Tensors. */
export type GradNode = GraphNode<Tensor>;

export interface TensorOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

/**
 * A contiguous, row-major n-dimensional array of float32 or float64 values,
 * with an optional gradient. Images are NCHW.
 */
export class Tensor {
  private _data: Storage;
  /** Why this tensor's memory was taken back (reading it then throws that), or null while it is valid. */
  private releasedBecause: string | null = null;
  private _grad: Tensor | null = null;
  /**
   * The gradient the backward pass made for this leaf in storage that lives
   * as long as the leaf (not one a user assigned, nor one in a scope's
   * recycled memory): its storage may be reused once it is dropped.
   */
  private gradFromBackward: Tensor | null = null;
  /** Storage of the dropped gradient, which the next backward pass fills instead of allocating. */
  private spareGradStorage: Storage | null = null;
  readonly shape: readonly number[];
  readonly dtype: DType;
  requiresGrad: boolean;
  /** The op that produced this tensor; null for leaves (user-created tensors, parameters). */
  gradFn: GradNode | null = null;
  /** @internal The scope() frame this tensor was made in, or null (see scope.ts). */
  scopeFrame: unknown = null;
  /** @internal The activation group this tensor was made in, or null (see activationGroup.ts). */
  activationGroup: ActivationGroup | null = null;

  constructor(data: Storage, shape: readonly number[], requiresGrad = false) {
    checkShape(shape);
    if (data.length !== sizeOf(shape)) {
      throw new Error(
        `tensor data has ${data.length} values but shape [${shape.join(", ")}] needs ${sizeOf(shape)}`,
      );
    }
    this._data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = data instanceof Float64Array ? "float64" : "float32";
    this.requiresGrad = requiresGrad;
    noteTensor(this);
    noteGroupTensor(this);
  }

  /** The values, flat and row-major. */
  get data(): Storage {
    if (this.releasedBecause !== null) throw new Error(`this tensor (shape [${this.shape.join(", ")}]) ${this.releasedBecause}`);
    return this._data;
  }

  /** @internal The storage without the release check, for the scope bookkeeping. */
  get storage(): Storage {
    return this._data;
  }

  /** @internal Called by scope() when this tensor's memory goes back to the pool. */
  release(why?: string): void {
    this.releasedBecause =
      why ??
      "was made inside a scope() that has ended, and its memory was recycled. Return it from the scope function to keep it, or copy what you need (.clone(), .item(), .toArray()) inside the scope.";
    this.gradFn = null;
  }

  /**
   * Accumulated gradient of a leaf tensor that requires grad; null until a
   * backward pass reaches it. Assigning it (`x.grad = null`, or another
   * tensor) drops the gradient it held: one the backward pass made is
   * released — reading that tensor afterwards throws, since the next
   * backward pass writes this leaf's gradient into its storage — so that a
   * loop which drops a gradient every step allocates no gradient storage
   * after its first step (as zeroGrad() does; see dropGrad).
   */
  get grad(): Tensor | null {
    return this._grad;
  }

  set grad(g: Tensor | null) {
    if (g === this._grad) return;
    this.releaseGrad("was dropped by assigning to .grad (e.g. x.grad = null); its memory now holds the next backward pass's gradient. Read or clone() a gradient before dropping it.");
    this._grad = g;
  }

  /**
   * @internal Called by the backward pass: a leaf's first gradient, a tensor
   * of its shape over `storage`. `lasting`: the storage lives as long as the
   * leaf (not in memory a scope recycles when it ends), so it may serve the
   * next gradient once this one is dropped.
   */
  adoptGradient(storage: Storage, lasting = true): void {
    this.releaseGrad(null);
    const g = new Tensor(storage, this.shape, false);
    this._grad = g;
    this.gradFromBackward = lasting ? g : null;
  }

  /**
   * @internal Called by the backward pass: a leaf's first gradient, `values`,
   * in place of the storage of the gradient last dropped — `values` itself
   * when it is the running scope's own storage (exchanged: the dropped
   * storage goes back to the scope's pool, see exchangeStorage), else a copy
   * in the dropped storage (always when `borrowed`: the caller's array).
   * False (and nothing done) when there is no dropped storage of that size.
   */
  reuseGradientStorage(values: Storage, borrowed: boolean): boolean {
    const s = this.spareGradStorage;
    if (s === null || s.length !== values.length || s.constructor !== values.constructor) return false;
    this.spareGradStorage = null;
    if (!borrowed && values.length >= EXCHANGE_MIN_LENGTH && exchangeStorage(s, values)) {
      this.adoptGradient(values);
      return true;
    }
    backendFor(this.dtype).copy(s, values);
    this.adoptGradient(s);
    return true;
  }

  /**
   * @internal zeroGrad() for this leaf: with `setToNone` the gradient
   * becomes null (released as assigning `.grad` does), else it is filled
   * with zeros.
   */
  dropGrad(setToNone: boolean): void {
    const g = this._grad;
    if (g === null) return;
    if (!setToNone) {
      backendFor(g.dtype).fill(g.data, 0);
      return;
    }
    this.releaseGrad(
      "is a gradient that zeroGrad() dropped; its memory now holds the next backward pass's gradient. Read or clone() a gradient before zeroGrad(), or use zeroGrad({ setToNone: false }), which keeps it (zero-filled).",
    );
    this._grad = null;
  }

  /**
   * The current gradient is being dropped: if the backward pass made it in
   * lasting storage, that storage becomes the spare for the next one and
   * the gradient tensor is released with `why` (null: it is replaced
   * without being dropped by the user, which only forgets it).
   */
  private releaseGrad(why: string | null): void {
    const g = this._grad;
    const mine = g !== null && g === this.gradFromBackward;
    this.gradFromBackward = null;
    // A gradient (or leaf) whose storage went back to a scope's pool is not the leaf's to reuse.
    if (!mine || why === null || g.releasedBecause !== null || this.releasedBecause !== null) return;
    this.spareGradStorage = g._data;
    g.releasedBecause = why;
  }

  /** @internal Called by scope() when this tensor outlives it in other memory (a copy of the same values). */
  relocate(storage: Storage): void {
    this._data = storage;
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** The values as nested arrays following the shape (a number for a 0-d tensor). */
  toArray(): any {
    const build = (dim: number, offset: number): any => {
      if (dim === this.shape.length) return this.data[offset];
      const stride = sizeOf(this.shape.slice(dim + 1));
      const out = [];
      for (let i = 0; i < this.shape[dim]; i++) out.push(build(dim + 1, offset + i * stride));
      return out;
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new Error(`item() needs a tensor with one element; this one has shape [${this.shape.join(", ")}]`);
    }
    return this.data[0];
  }

  /**
   * Back-propagate from this tensor. A scalar may omit `grad` (taken as 1);
   * otherwise `grad` has this tensor's shape. Leaf tensors that require grad
   * accumulate into `.grad`.
   */
  backward(grad?: Tensor | ArrayLike<number>, options: { retainGraph?: boolean } = {}): void {
    let g: Storage;
    if (grad === undefined) {
      if (this.size !== 1) {
        throw new Error(
          `backward() without a gradient works only for a one-element output; this one has shape [${this.shape.join(", ")}]. Pass the gradient of the output.`,
        );
      }
      g = allocate(this.dtype, 1);
      g[0] = 1;
    } else {
      const values = grad instanceof Tensor ? grad.data : grad;
      if (values.length !== this.size) {
        throw new Error(
          `backward(): gradient has ${values.length} values but the output has shape [${this.shape.join(", ")}] (${this.size} values)`,
        );
      }
      // The caller's own array of the right type is used as it is, read-only (runBackward copies it before
      // anything would write into it); anything else is converted.
      const sameType = this.dtype === "float64" ? values instanceof Float64Array : values instanceof Float32Array;
      if (sameType) {
        runBackward(this, values as Storage, options.retainGraph ?? false, true);
        return;
      }
      g = storageFrom(this.dtype, values);
    }
    runBackward(this, g, options.retainGraph ?? false);
  }

  /** A tensor sharing this one's data, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, false);
  }

  /** A copy with its own storage, cut from the graph. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape, false);
  }

  /** Convert to another dtype (a copy; no gradient flows). */
  to(dtype: DType): Tensor {
    return new Tensor(storageFrom(dtype, this.data), this.shape, false);
  }

  toString(): string {
    return `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }
}

/**
 * Record `out` as produced by `name` from `inputs`, if gradients are enabled
 * and some input needs one. Returns `out`.
 */
export function record(
  out: Tensor,
  name: string,
  inputs: Tensor[],
  backward: (gradOut: Storage) => (Storage | null)[],
): Tensor {
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  out.gradFn = { name, inputs, backward };
  noteGraphNode(out.gradFn);
  return out;
}

/**
 * Record tensors `outs` as the outputs of one op `name` on `inputs`, whose
 * backward maps every output's gradient (null for an output the loss does
 * not reach) to the inputs' gradients in one call. Returns `outs`.
 *
 * The graph records one output per node, so the op becomes a hidden one-value
 * tensor (the joint) computed from `inputs`, and each output a node on the
 * joint: an output's backward only hands its gradient to the joint's slot,
 * and the joint — which the reverse topological order visits after every
 * output — runs `backward` on the slots. The joint's own gradient is a
 * dummy (one value per output, summed and never read).
 */
export function recordMany(
  outs: Tensor[],
  name: string,
  inputs: Tensor[],
  backward: (gradOuts: (Storage | null)[]) => (Storage | null)[],
): Tensor[] {
  if (!isGradEnabled() || !inputs.some((t) => t.requiresGrad)) return outs;
  const slots: (Storage | null)[] = outs.map(() => null);
  const joint = new Tensor(new Float32Array(1), [], true);
  joint.gradFn = {
    name,
    inputs,
    backward: () => {
      const gradOuts = slots.slice();
      slots.fill(null); // a later pass (retainGraph) starts empty
      return backward(gradOuts);
    },
  };
  noteGraphNode(joint.gradFn);
  outs.forEach((out, k) => {
    out.requiresGrad = true;
    out.gradFn = {
      name: `${name}[${k}]`,
      inputs: [joint],
      backward: (g) => {
        slots[k] = g;
        return [new Float32Array(1)];
      },
    };
    noteGraphNode(out.gradFn);
  });
  return outs;
}

type Nested = number | Nested[];

/**
 * Create a tensor. `values` is a flat array-like (then `shape` is required,
 * or a 1-d tensor is made) or nested arrays (shape inferred).
 */
export function tensor(values: ArrayLike<number> | Nested, shape?: readonly number[], options: TensorOptions = {}): Tensor {
  const dtype = options.dtype ?? "float32";
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (typeof values === "number") {
    flat = [values];
    inferred = [];
  } else if (Array.isArray(values) && values.some((v) => Array.isArray(v))) {
    inferred = [];
    let level: any = values;
    while (Array.isArray(level)) {
      inferred.push(level.length);
      level = level[0];
    }
    flat = (values as any[]).flat(Infinity) as number[];
  } else {
    flat = values as ArrayLike<number>;
    inferred = [flat.length];
  }
  if (!ArrayBuffer.isView(flat)) {
    for (let i = 0; i < flat.length; i++) {
      if (typeof flat[i] !== "number") {
        throw new Error(
          `tensor(): values must be numbers; got ${describeValue(flat[i])} at flat index ${i}. Convert the data first (e.g. Number(x)), or pass a typed array.`,
        );
      }
    }
  }
  const finalShape = shape ?? inferred;
  if (sizeOf(finalShape) !== flat.length) {
    throw new Error(`tensor(): ${flat.length} values do not fill shape [${finalShape.join(", ")}] (${sizeOf(finalShape)} values)`);
  }
  return new Tensor(storageFrom(dtype, flat), finalShape, options.requiresGrad ?? false);
}

export function zeros(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return new Tensor(allocate(options.dtype ?? "float32", sizeOf(shape)), shape, options.requiresGrad ?? false);
}

export function ones(shape: readonly number[], options: TensorOptions = {}): Tensor {
  return full(shape, 1, options);
}

export function full(shape: readonly number[], value: number, options: TensorOptions = {}): Tensor {
  const t = zeros(shape, options);
  t.data.fill(value);
  return t;
}
