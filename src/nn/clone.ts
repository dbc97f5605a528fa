import { Tensor } from "../tensor/tensor.js";

/**
 * A deep copy of a module tree (or any object graph of modules, tensors,
 * maps, arrays and plain objects), preserving prototypes and shared
 * references. Tensors get their own storage and no gradient.
 */
export function deepCopy<T>(value: T): T {
  return copy(value, new Map()) as T;
}

function copy(v: unknown, memo: Map<unknown, unknown>): unknown {
  if (v === null || typeof v !== "object") return v;
  if (memo.has(v)) return memo.get(v);
  if (v instanceof Tensor) {
    const t = new Tensor(v.data.slice(), v.shape, v.requiresGrad);
    memo.set(v, t);
    return t;
  }
  if (ArrayBuffer.isView(v)) {
    const c = (v as unknown as Float64Array).slice();
    memo.set(v, c);
    return c;
  }
  if (v instanceof Map) {
    const m = new Map();
    memo.set(v, m);
    for (const [k, x] of v) m.set(k, copy(x, memo));
    return m;
  }
  if (v instanceof Set) {
    const s = new Set();
    memo.set(v, s);
    for (const x of v) s.add(copy(x, memo));
    return s;
  }
  if (Array.isArray(v)) {
    const a: unknown[] = [];
    memo.set(v, a);
    for (const x of v) a.push(copy(x, memo));
    return a;
  }
  const o = Object.create(Object.getPrototypeOf(v));
  memo.set(v, o);
  for (const key of Reflect.ownKeys(v)) {
    const d = Object.getOwnPropertyDescriptor(v, key)!;
    if ("value" in d) d.value = copy(d.value, memo);
    Object.defineProperty(o, key, d);
  }
  return o;
}
