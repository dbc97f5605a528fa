import { backendFor } from "../backend/index.js";
import { allocatePersistent, ownerOf, storageAllocator, type DType, type Storage, type StorageAllocator } from "../backend/storage.js";

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

/** What a tensor needs to be released or moved: see Tensor. */
export interface Releasable {
  readonly storage: Storage;
  /** Cut the tensor off from its recycled memory: reading it then throws, saying why (default: a finished scope). */
  release(why?: string): void;
  relocate(storage: Storage): void;
  /** The scope frame the tensor was made in (null outside any): set here, read by madeInCurrentScope. */
  scopeFrame: unknown;
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

/**
 * Pool key: element type, length, and where the storage lives — float32
 * storage in one backend's memory serves only while that backend's allocator
 * is the current one (to another backend's kernels it is foreign memory to
 * copy).
 */
function key(dtype: DType, n: number, allocator: StorageAllocator | null): string {
  if (dtype === "float64") return `d${n}`;
  return allocator === null ? `f${n}` : `f${n}@${allocatorId(allocator)}`;
}

const allocatorIds = new WeakMap<StorageAllocator, number>();
let nextAllocatorId = 1;
function allocatorId(a: StorageAllocator): number {
  let id = allocatorIds.get(a);
  if (id === undefined) {
    id = nextAllocatorId++;
    allocatorIds.set(a, id);
  }
  return id;
}

/** A zero-filled storage from the pool when inside a scope, else null. */
export function takeFromPool(dtype: DType, n: number, zeroed = true): Storage | null {
  const frame = stack[stack.length - 1];
  if (frame === undefined) return null;
  const s = popPooled(dtype, n, dtype === "float32" ? storageAllocator() : null, zeroed);
  if (s !== null) frame.storages.push(s);
  return s;
}

/** A pooled storage of that kind (zero-filled if `zeroed`), counted as a hit; null, counted as a miss, when there is none. */
function popPooled(dtype: DType, n: number, allocator: StorageAllocator | null, zeroed: boolean): Storage | null {
  const s = pool.get(key(dtype, n, allocator))?.pop();
  if (s === undefined) {
    misses++;
    return null;
  }
  hits++;
  if (zeroed) backendFor(dtype).fill(s, 0);
  return s;
}

/** Note a storage freshly allocated inside the current scope. */
export function noteAllocation(s: Storage): void {
  stack[stack.length - 1]?.storages.push(s);
}

export function noteTensor(t: Releasable): void {
  const frame = stack[stack.length - 1];
  if (frame === undefined) return;
  frame.tensors.push(t);
  t.scopeFrame = frame; // a field, not a WeakMap entry: noting every tensor of a step must cost next to nothing
}

/**
 * Whether `t` was made inside the innermost running scope: then whatever
 * belongs to it alone (its gradient) can end with that scope too, and
 * need not escape.
 */
export function madeInCurrentScope(t: Releasable): boolean {
  const frame = stack[stack.length - 1];
  return frame !== undefined && t.scopeFrame === frame;
}

export function noteGraphNode(node: { backward: unknown }): void {
  stack[stack.length - 1]?.graphs.push(node);
}

/**
 * Keep a storage alive past the current scope (a leaf's gradient); returns
 * the storage to use from now on. That is `s` itself, except for storage in
 * a backend's memory (see storageAllocator.ts) when the allocator's budget
 * for long-lived storage is spent: then a copy on the JavaScript heap, and
 * `s` goes back to the pool with the scope.
 */
export function escape(s: Storage): Storage {
  if (stack.length === 0) return s;
  const kept = longLived(s);
  if (kept !== s) return kept;
  for (const frame of stack) frame.escaped.add(s);
  return s;
}

/**
 * `s` made long-lived: itself when it is on the JavaScript heap or its
 * backend allocator adopts it, else (the allocator's budget spent) a copy on
 * the JavaScript heap.
 */
export function longLived(s: Storage): Storage {
  const owner = ownerOf(s);
  if (owner === null || adopted.has(s)) return s;
  if (!owner.adopt(s)) return s.slice();
  adopted.add(s);
  return s;
}

/**
 * Let `fresh`, a storage made in the innermost running scope, live on in
 * place of `kept`, a long-lived storage of the same length in the same
 * memory: `fresh` escapes (and takes over `kept`'s adoption by a backend
 * allocator), `kept` goes back to the pool when the scope ends. This is how
 * a leaf's new gradient takes the place of the one dropped before it without
 * a copy. False, with nothing changed, when that cannot be done (no scope,
 * `fresh` not the innermost scope's own, the two in different memories).
 */
export function exchangeStorage(kept: Storage, fresh: Storage): boolean {
  const frame = stack[stack.length - 1];
  if (frame === undefined || kept.length !== fresh.length || kept.constructor !== fresh.constructor || frame.escaped.has(fresh)) return false;
  const owner = ownerOf(fresh);
  if (owner !== ownerOf(kept) || (owner !== null && !adopted.has(kept))) return false;
  // Made in this scope: among its storages, most likely near the end (a backward pass's gradients come last).
  const i = frame.storages.lastIndexOf(fresh);
  if (i < 0) return false;
  if (owner !== null) {
    if (!owner.transferAdoption(kept, fresh)) return false;
    adopted.delete(kept);
    adopted.add(fresh);
  }
  for (const f of stack) f.escaped.add(fresh);
  frame.storages[i] = kept; // recycled when the scope ends, as fresh would have been
  return true;
}

/** escape() for a tensor's storage, moving the tensor if escape hands back a copy. */
export function escapeTensor(t: Releasable): void {
  const s = escape(t.storage);
  if (s !== t.storage) t.relocate(s);
}

/**
 * Keep a tensor that lives as long as its owner (a module's parameter) where
 * the kernels read it: inside a scope as escapeTensor does; outside, float32
 * storage on the JavaScript heap moves to the backend's own memory (a copy,
 * then relocate) when there is one, so that no kernel call copies it in.
 */
export function keepTensor(t: Releasable): void {
  if (stack.length > 0) return escapeTensor(t);
  const s = t.storage;
  if (!(s instanceof Float32Array) || ownerOf(s) !== null) return;
  const moved = allocatePersistent("float32", s.length);
  if (ownerOf(moved) === null) return; // no backend memory, or its budget for long-lived storage is spent
  moved.set(s);
  t.relocate(moved);
}

/** Storages a backend allocator has taken back as long-lived: released when collected, never pooled. */
const adopted = new WeakSet<Storage>();

export function inScope(): boolean {
  return stack.length > 0;
}

/** Pool hits and misses since the process started: misses are new allocations inside scopes. */
export function scopeStats(): { hits: number; misses: number; pooled: number } {
  let pooled = 0;
  for (const list of pool.values()) pooled += list.length;
  return { hits, misses, pooled };
}

function collectResult(value: unknown, keep: Set<Storage>, seen: Set<unknown>, tensors: Releasable[]): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if ("storage" in value && "release" in value) {
    keep.add((value as Releasable).storage);
    tensors.push(value as Releasable);
    // A returned leaf keeps its gradient (made in this scope when the leaf was: see madeInCurrentScope).
    const grad = (value as { grad?: unknown }).grad;
    if (grad !== null && grad !== undefined) collectResult(grad, keep, seen, tensors);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectResult(v, keep, seen, tensors);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectResult(v, keep, seen, tensors);
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
  const returned: Releasable[] = [];
  collectResult(result, keep, new Set(), returned);
  const outer = stack[stack.length - 1];
  if (outer === undefined) {
    // Returned from the outermost scope: storage in a backend's memory becomes long-lived, or, past the
    // allocator's budget for that, the returned tensors move to copies on the JavaScript heap.
    for (const t of returned) {
      const s = t.storage;
      const kept = longLived(s);
      if (kept === s) continue;
      for (const u of returned) if (u.storage === s) u.relocate(kept);
      keep.delete(s);
    }
  }
  for (const node of frame.graphs) node.backward = null;
  const recycled = new Set<Storage>();
  for (const s of frame.storages) {
    if (keep.has(s)) {
      if (outer !== undefined) outer.storages.push(s);
      continue;
    }
    recycled.add(s);
  }
  recycle(recycled);
  // Only tensors over recycled memory are cut off; one over storage the
  // scope did not allocate (a clone, a user's array) stays valid.
  for (const t of frame.tensors) {
    if (recycled.has(t.storage)) t.release();
    else if (outer !== undefined) outer.tensors.push(t);
  }
  return result;
}

/**
 * A float32 storage of n elements in the current backend's memory for use
 * outside any scope (see activationGroup.ts): from the pool when one fits
 * (zero-filled if `zeroed`), else newly allocated there; null when the
 * backend has no memory of its own.
 */
export function takeBackendStorage(n: number, zeroed: boolean): Float32Array | null {
  const allocator = storageAllocator();
  if (allocator === null) return null;
  return (popPooled("float32", n, allocator, zeroed) ?? allocator.allocateFloat32(n, zeroed)) as Float32Array;
}

/** Put storages that nothing reads any more back in the pool (see activationGroup.ts). */
export function recycle(storages: Iterable<Storage>): void {
  for (const s of storages) {
    const k = key(s instanceof Float64Array ? "float64" : "float32", s.length, ownerOf(s));
    let list = pool.get(k);
    if (list === undefined) pool.set(k, (list = []));
    list.push(s);
  }
}

/** Drop every pooled buffer (they are then garbage-collected as usual). */
export function clearPool(): void {
  for (const list of pool.values()) for (const s of list) releaseIfOwned(s);
  pool.clear();
}

function releaseIfOwned(s: Storage): void {
  ownerOf(s)?.release(s);
}
