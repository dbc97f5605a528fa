/**
 * The browser-safe half of the checkpoint format (see checkpoint.ts): what a
 * trainer saves and restores, and checked reads of it. No Node API here:
 * the demo's Web Workers run the same trainers.
 */
import { Tensor } from "../../tensor/tensor.js";

/** What a trainer saves and restores: binary tensors and a JSON-able state. */
export interface CheckpointContents {
  tensors: Record<string, Tensor>;
  state: Record<string, unknown>;
}

/** How an error about a checkpoint ends: what to do. */
export function restartAdvice(path: string): string {
  return (
    `Delete ${path} to start that run again from step 0 (the same command with --resume keeps every other run), ` +
    `or start everything again with --overwrite.`
  );
}

/** An error about the checkpoint `path`: names it and says how to start again. */
export function checkpointError(path: string, what: string): Error {
  return new Error(`checkpoint ${path}: ${what}. ${restartAdvice(path)}`);
}

/**
 * Typed, checked reads of a checkpoint's state: every getter verifies the
 * type and range and throws an error naming the file and the field.
 */
export class CheckpointFields {
  constructor(
    readonly path: string,
    private readonly obj: Record<string, unknown>,
    private readonly prefix = "",
  ) {}

  fail(key: string, what: string): never {
    throw checkpointError(this.path, `"${this.prefix}${key}" ${what}`);
  }

  private get(key: string): unknown {
    if (!(key in this.obj)) this.fail(key, "is missing");
    return this.obj[key];
  }

  raw(key: string): unknown {
    return this.get(key);
  }

  /** A whole number in [min, max]. */
  int(key: string, min: number, max: number): number {
    const v = this.get(key);
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.fail(key, `must be a whole number in [${min}, ${max}]; it is ${JSON.stringify(v)}`);
    }
    return v as number;
  }

  /** A finite number. */
  num(key: string, min = -Infinity): number {
    const v = this.get(key);
    if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
      this.fail(key, `must be a finite number${min > -Infinity ? ` ≥ ${min}` : ""}; it is ${JSON.stringify(v)}`);
    }
    return v as number;
  }

  str(key: string, allowed?: readonly string[]): string {
    const v = this.get(key);
    if (typeof v !== "string" || (allowed !== undefined && !allowed.includes(v))) {
      this.fail(key, `must be ${allowed ? `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}` : "a string"}; it is ${JSON.stringify(v)}`);
    }
    return v as string;
  }

  /** An array of finite numbers (of `length`, when given). */
  numbers(key: string, length?: number, range: [number, number] = [-Infinity, Infinity]): number[] {
    const v = this.get(key);
    if (!Array.isArray(v)) this.fail(key, `must be an array of numbers; it is ${JSON.stringify(v)?.slice(0, 40)}`);
    const a = v as unknown[];
    if (length !== undefined && a.length !== length) this.fail(key, `must hold ${length} values (one per evaluation so far); it holds ${a.length}`);
    a.forEach((x, i) => {
      if (typeof x !== "number" || !Number.isFinite(x) || x < range[0] || x > range[1]) {
        this.fail(`${key}[${i}]`, `must be a finite number${range[0] > -Infinity ? ` in [${range[0]}, ${range[1]}]` : ""}; it is ${JSON.stringify(x)}`);
      }
    });
    return a as number[];
  }

  /** A generator state as generatorStateToJson writes it: four 32-bit words and a spare normal (a number or null). */
  generator(key: string): (number | null)[] {
    const v = this.get(key);
    const ok =
      Array.isArray(v) &&
      v.length === 5 &&
      v.slice(0, 4).every((w) => Number.isInteger(w) && w >= -(2 ** 31) && w < 2 ** 32) &&
      (v[4] === null || (typeof v[4] === "number" && Number.isFinite(v[4])));
    if (!ok) this.fail(key, `must be a generator state (four 32-bit words and a number or null); it is ${JSON.stringify(v)?.slice(0, 80)}`);
    return v as (number | null)[];
  }

  /** An array of exactly `length` objects, each read with the same checked getters (errors name "key[i].field"). */
  objects(key: string, length: number): CheckpointFields[] {
    const v = this.get(key);
    if (!Array.isArray(v)) this.fail(key, `must be an array of ${length} objects; it is ${JSON.stringify(v)?.slice(0, 40)}`);
    const a = v as unknown[];
    if (a.length !== length) this.fail(key, `must hold ${length} entries; it holds ${a.length}`);
    return a.map((x, i) => {
      if (x === null || typeof x !== "object" || Array.isArray(x)) this.fail(`${key}[${i}]`, `must be an object; it is ${JSON.stringify(x)?.slice(0, 40)}`);
      return new CheckpointFields(this.path, x as Record<string, unknown>, `${this.prefix}${key}[${i}].`);
    });
  }

  object(key: string): CheckpointFields {
    const v = this.get(key);
    if (v === null || typeof v !== "object" || Array.isArray(v)) this.fail(key, "must be an object");
    return new CheckpointFields(this.path, v as Record<string, unknown>, `${this.prefix}${key}.`);
  }
}

/** The model's state dict as checkpoint tensors ("model.<key>"). */
export function modelTensors(state: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(state).map(([k, t]) => [`model.${k}`, t]));
}

/** The state dict back from checkpoint tensors, in each model tensor's dtype; other keys are left out. */
export function modelStateFrom(tensors: Record<string, Tensor>, own: Record<string, Tensor>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (!k.startsWith("model.")) continue;
    const key = k.slice("model.".length);
    const like = own[key];
    out[key] = like === undefined || like.dtype === t.dtype ? t : new Tensor(like.dtype === "float64" ? Float64Array.from(t.data) : Float32Array.from(t.data), t.shape);
  }
  return out;
}

/** SGD's state as checkpoint tensors ("optimizer.velocity.<i>") and the step count for the JSON state. */
export function sgdTensors(state: { steps: number; velocity: (ArrayLike<number> | null)[] }): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  state.velocity.forEach((v, i) => {
    if (v !== null) out[`optimizer.velocity.${i}`] = new Tensor(v instanceof Float32Array ? v.slice() : Float32Array.from(v), [v.length]);
  });
  return out;
}

/** The SGD state back from checkpoint tensors: a momentum buffer where the file has one, else null. */
export function sgdStateFrom(tensors: Record<string, Tensor>, parameters: number, steps: number): { steps: number; velocity: (number[] | null)[] } {
  const velocity: (number[] | null)[] = [];
  for (let i = 0; i < parameters; i++) {
    const t = tensors[`optimizer.velocity.${i}`];
    velocity.push(t === undefined ? null : Array.from(t.data));
  }
  return { steps, velocity };
}
