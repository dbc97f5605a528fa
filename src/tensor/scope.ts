import type { DType, Storage } from "./dtype.js";
import { ownerOf } from "./storageAllocator.js";

/**
 * Buffer reuse for training loops: `scope(fn)` runs one step, and when it
 * ends, every storage allocated inside that did not escape goes back to a
 * pool from which the next step's allocations are served. In steady state a
 * training step then allocates no new buffers and leaves the garbage
 * collector nothing to do.
 *
 * What escapes: the storages of the tensors `fn` returns (in an array or
 * object too), and gradients adopted by leaf tensors (`param.grad`).
 * Everything else made inside is released: a tensor from a finished scope
 * throws when its data is read, and a graph built inside can no longer be
 * back-propagated, so recycled memory is never read by mistake.
 *
 * Outside any scope nothing changes: storages are ordinary garbage-collected
 * typed arrays, as everywhere else in covshift.
 */

/** What a tensor needs to be released: see Tensor. */
export interface Releasable {
  readonly storage: Storage;
  release(): void;
}

interface ScopeFrame {
  storages: Storage[];
  tensors: Releasable[];
  graphs: { backward: unknown }[];
  escaped: Set<Storage>;
}

const stack: ScopeFrame[] = [];
const pool = new Map<string, Storage[]>();
let hits = 0;
let misses = 0;

const key = (dtype: DType, n: number) => (dtype === "float64" ? `d${n}` : `f${n}`);

/** A zero-filled storage from the pool when inside a scope, else null. */
export function takeFromPool(dtype: DType, n: number): Storage | null {
  const frame = stack[stack.length - 1];
  if (frame === undefined) return null;
  const free = pool.get(key(dtype, n));
  const s = free?.pop();
  if (s === undefined) {
    misses++;
    return null;
  }
  hits++;
  s.fill(0);
  frame.storages.push(s);
  return s;
}

/** Note a storage freshly allocated inside the current scope. */
export function noteAllocation(s: Storage): void {
  stack[stack.length - 1]?.storages.push(s);
}

export function noteTensor(t: Releasable): void {
  stack[stack.length - 1]?.tensors.push(t);
}

export function noteGraphNode(node: { backward: unknown }): void {
  stack[stack.length - 1]?.graphs.push(node);
}

/** Keep a storage alive past the current scope (a leaf's gradient). */
export function escape(s: Storage): void {
  for (const frame of stack) frame.escaped.add(s);
}

export function inScope(): boolean {
  return stack.length > 0;
}

/** Pool hits and misses since the process started: misses are new allocations inside scopes. */
export function scopeStats(): { hits: number; misses: number; pooled: number } {
  let pooled = 0;
  for (const list of pool.values()) pooled += list.length;
  return { hits, misses, pooled };
}

function collectResult(value: unknown, keep: Set<Storage>, seen: Set<unknown>): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if ("storage" in value && "release" in value) {
    keep.add((value as Releasable).storage);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectResult(v, keep, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectResult(v, keep, seen);
}

/**
 * Run `fn` with buffer reuse; see the module comment. Scopes nest: what an
 * inner scope returns belongs to the outer one.
 */
export function scope<T>(fn: () => T): T {
  const frame: ScopeFrame = { storages: [], tensors: [], graphs: [], escaped: new Set() };
  stack.push(frame);
  let result: T;
  try {
    result = fn();
  } finally {
    stack.pop();
  }
  const keep = new Set<Storage>(frame.escaped);
  collectResult(result, keep, new Set());
  const outer = stack[stack.length - 1];
  for (const node of frame.graphs) node.backward = null;
  const recycled = new Set<Storage>();
  for (const s of frame.storages) {
    if (keep.has(s)) {
      if (outer !== undefined) outer.storages.push(s);
      else adoptIfOwned(s); // it now lives as long as whoever holds it
      continue;
    }
    recycled.add(s);
    const k = key(s instanceof Float64Array ? "float64" : "float32", s.length);
    let list = pool.get(k);
    if (list === undefined) pool.set(k, (list = []));
    list.push(s);
  }
  // Only tensors over recycled memory are cut off; one over storage the
  // scope did not allocate (a clone, a user's array) stays valid.
  for (const t of frame.tensors) {
    if (recycled.has(t.storage)) t.release();
    else if (outer !== undefined) outer.tensors.push(t);
  }
  return result;
}

/** Drop every pooled buffer (they are then garbage-collected as usual). */
export function clearPool(): void {
  for (const list of pool.values()) for (const s of list) releaseIfOwned(s);
  pool.clear();
}

function adoptIfOwned(s: Storage): void {
  ownerOf(s)?.adopt(s);
}

function releaseIfOwned(s: Storage): void {
  ownerOf(s)?.release(s);
}
