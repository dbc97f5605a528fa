import type { Storage } from "../backend/storage.js";
import { inScope, longLived, recycle, takeBackendStorage, type Releasable } from "./scope.js";

/**
 * Activation groups: the intermediate activations of one forward pass run
 * outside any scope() — a plain training loop — kept in the backend's memory
 * and recycled as soon as nothing can read them, instead of living on the
 * JavaScript heap, where every kernel call copies them in and out and the
 * garbage collector frees them later.
 *
 * A container (Sequential) opens a group for a forward pass and runs inside
 * it only the layers whose output goes straight into a next layer, and only
 * layers of covshift's own classes with their own forwards, which keep
 * neither their input nor their output: such an intermediate activation is
 * then held by nothing but the graph. (The pass's input and output, and
 * anything a user's own layer sees, stay ordinary tensors.) The group's
 * float32 storage is recycled:
 *  - when the pass built no graph (inference, noGrad()): at once;
 *  - else when a backward pass that does not retain the graph has run
 *    through it (the graph's nodes are then freed: a second backward pass
 *    gets the usual error);
 *  - else (no backward pass ever comes) when the pass's output is
 *    garbage-collected, by a finalizer. Groups waiting for that hold at most
 *    PENDING_BUDGET_BYTES; past it, forward passes stay on the heap.
 * A tensor over recycled storage (reachable only by walking the graph's
 * nodes) throws when read, as one from a finished scope() does.
 */

/** Most bytes of groups that wait for a backward pass or for their output's collection. */
export const PENDING_BUDGET_BYTES = 64 * 2 ** 20;

export interface ActivationGroup {
  storages: Storage[];
  tensors: Releasable[];
  /** Graph nodes built over the group's storage, freed with it. */
  nodes: { backward: unknown; inputs: unknown[] }[];
  bytes: number;
  released: boolean;
}

let active: ActivationGroup | null = null;
let pendingBytes = 0;

const finalizer =
  typeof FinalizationRegistry !== "undefined"
    ? new FinalizationRegistry<ActivationGroup>((g) => {
        pendingBytes -= g.bytes;
        release(g, "its forward pass's output was garbage-collected");
      })
    : null;

/** A new group for a forward pass, or null where storage stays on the heap (inside a scope, no finalizers, budget spent). */
export function openActivationGroup(): ActivationGroup | null {
  if (inScope() || active !== null || finalizer === null || pendingBytes > PENDING_BUDGET_BYTES) return null;
  return { storages: [], tensors: [], nodes: [], bytes: 0, released: false };
}

/** Run `layer` with its float32 allocations in `g` (null: as usual). */
export function inActivationGroup<T>(g: ActivationGroup | null, layer: () => T): T {
  if (g === null) return layer();
  active = g;
  try {
    return layer();
  } finally {
    active = null;
  }
}

/** Whether a group is running: a float32 allocation now lands in the backend's memory (when it has one). */
export function activationGroupRunning(): boolean {
  return active !== null && !inScope();
}

/** For allocate(): float32 storage of the running group in the backend's memory, or null (no group running, no backend memory). */
export function takeForActivationGroup(n: number, zeroed: boolean): Storage | null {
  const g = active;
  if (g === null || inScope()) return null;
  const s = takeBackendStorage(n, zeroed);
  if (s === null) return null;
  g.storages.push(s);
  g.bytes += s.byteLength;
  return s;
}

/** For the Tensor constructor: a tensor made while a group runs belongs to it. */
export function noteGroupTensor(t: Releasable & { activationGroup: ActivationGroup | null }): void {
  const g = active;
  if (g === null) return;
  g.tensors.push(t);
  t.activationGroup = g;
}

/**
 * The forward pass of group `g` returned `output`: storage the output holds
 * (a view of the last layer's input) leaves the group and becomes long-lived;
 * then the group is recycled at once if no graph was built, or waits for a
 * backward pass (or the output's collection).
 */
export function closeActivationGroup(
  g: ActivationGroup | null,
  output: Releasable & {
    requiresGrad: boolean;
    gradFn: { backward: unknown; inputs: unknown[] } | null;
    activationGroup: ActivationGroup | null;
    relocate(s: Storage): void;
  },
): void {
  if (g === null || g.storages.length === 0) return;
  const s = output.storage;
  const i = g.storages.indexOf(s);
  if (i >= 0) {
    const kept = longLived(s);
    if (kept === s) {
      // Long-lived now (released when the last tensor over it is collected): no longer the group's.
      g.storages.splice(i, 1);
      g.bytes -= s.byteLength;
      g.tensors = g.tensors.filter((t) => t.storage !== s);
    } else {
      output.relocate(kept); // a copy on the heap; s stays with the group
    }
  }
  if (!output.requiresGrad) {
    release(g, null);
    return;
  }
  for (const t of g.tensors) {
    const node = (t as { gradFn?: ActivationGroup["nodes"][number] | null }).gradFn;
    if (node) g.nodes.push(node);
  }
  if (output.gradFn !== null) g.nodes.push(output.gradFn);
  // A backward pass through the output frees the graph over the group even where no intermediate needs a
  // gradient (layers frozen up to the last): it releases the group too.
  output.activationGroup = g;
  pendingBytes += g.bytes;
  finalizer!.register(output, g, g);
}

/** The forward pass of group `g` threw: nothing it made can be reached, so its storage goes back to the pool at once. */
export function abandonActivationGroup(g: ActivationGroup | null): void {
  if (g !== null) release(g, "its forward pass threw");
}

/** After a backward pass that freed the graph through `t`: recycle t's group, if it has one. */
export function releaseAfterBackward(t: { activationGroup?: ActivationGroup | null }): void {
  const g = t.activationGroup;
  if (g === null || g === undefined || g.released) return;
  finalizer?.unregister(g);
  pendingBytes -= g.bytes;
  release(g, "a backward pass has run through it");
}

function release(g: ActivationGroup, why: string | null): void {
  if (g.released) return;
  g.released = true;
  for (const node of g.nodes) {
    node.backward = null;
    node.inputs = [];
  }
  const recycled = new Set(g.storages);
  recycle(recycled);
  for (const t of g.tensors) {
    if (recycled.has(t.storage)) {
      t.release(
        `was an intermediate activation of a forward pass outside scope() (${why ?? "no graph was built"}), and its memory was recycled. Call the layers one by one to keep an intermediate output.`,
      );
    }
  }
  g.storages = [];
  g.tensors = [];
  g.nodes = [];
}
