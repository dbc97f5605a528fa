import { dtypeOf, type Storage } from "../backend/storage.js";
import { storageFrom } from "./allocation.js";
import { backendFor } from "../backend/index.js";
import { escape, inScope, madeInCurrentScope, scope, type Releasable } from "./scope.js";
import { releaseAfterBackward, type ActivationGroup } from "./activationGroup.js";

/**
 * A node of the define-by-run graph: the op that produced a tensor, its
 * inputs, and a closure mapping the output's gradient to each input's
 * gradient (null where an input needs none). `backward` is dropped after use,
 * which frees whatever the closure saved from the forward pass.
 */
export interface GradNode<T extends GraphTensor = GraphTensor> {
  readonly name: string;
  inputs: T[];
  backward: ((gradOut: Storage) => (Storage | null)[]) | null;
}

/** A tensor as the backward pass sees it (Tensor implements it; this file does not import tensor.ts, which imports it). */
export interface GraphTensor extends Releasable {
  readonly requiresGrad: boolean;
  readonly gradFn: GradNode<GraphTensor> | null;
  readonly grad: { readonly data: Storage } | null;
  /** The activation group the tensor was made in (see activationGroup.ts), or null. */
  readonly activationGroup: ActivationGroup | null;
  /** Give a leaf its first gradient: a tensor of its shape over `storage` (`lasting`: storage no scope recycles). */
  adoptGradient(storage: Storage, lasting: boolean): void;
  /** Give a leaf its first gradient in place of storage it kept from an earlier one (`borrowed`: `values` is the caller's, to copy); false if it has none of that size. */
  reuseGradientStorage(values: Storage, borrowed: boolean): boolean;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording the graph (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Order the graph under `root` so that every tensor comes after all tensors
 * computed from it (reverse topological order, root first). Iterative
 * depth-first search: deep graphs cannot overflow the JS stack.
 */
function reverseTopologicalOrder(root: GraphTensor): GraphTensor[] {
  const postOrder: GraphTensor[] = [];
  const visited = new Set<GraphTensor>([root]);
  const stack: { t: GraphTensor; next: number }[] = [{ t: root, next: 0 }];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    const inputs = frame.t.gradFn?.inputs ?? [];
    if (frame.next < inputs.length) {
      const child = inputs[frame.next++];
      if (child.requiresGrad && !visited.has(child)) {
        visited.add(child);
        stack.push({ t: child, next: 0 });
      }
    } else {
      postOrder.push(frame.t);
      stack.pop();
    }
  }
  return postOrder.reverse();
}

/**
 * Back-propagate `gradRoot` from `root`. Gradients of intermediate tensors
 * live only during the pass; leaves that require grad accumulate into
 * `.grad` (as in PyTorch, so that several backward passes add up).
 */
export function runBackward(root: GraphTensor, gradRoot: Storage, retainGraph: boolean, borrowed = false): void {
  // Outside a scope the pass is its own: the gradients it makes on the way are dead once it ends (only the
  // leaves' escape), so they are recycled from one backward pass to the next, in the backend's memory.
  if (!inScope()) {
    scope(() => runBackward(root, gradRoot, retainGraph, borrowed));
    return;
  }
  if (!root.requiresGrad) {
    throw new Error(
      "backward(): this tensor does not require grad and has no graph. Create the inputs or parameters with requiresGrad: true, and do not call it inside noGrad().",
    );
  }
  const order = reverseTopologicalOrder(root);
  // Every gradient storage in this map has exactly one owner: backward
  // closures allocate fresh storage, and a view op (reshape) hands its
  // output's gradient on to its single input, which is a move, since that
  // output's gradient is never read again. So contributions are summed in
  // place, and a leaf adopts its first gradient without a copy.
  const grads = new Map<GraphTensor, Storage>([[root, gradRoot]]);
  // A borrowed root gradient is the caller's array: it is only read. Backward closures never write into the
  // gradient they receive, but a view op passes it on as its input's gradient, which a sum may then add into,
  // or a leaf adopt as .grad: both get a copy instead (copy on write).
  const readOnly = borrowed ? gradRoot : null;
  const own = (g: Storage): Storage => (g === readOnly ? storageFrom(dtypeOf(g), g) : g);
  const accumulate = (t: GraphTensor, g: Storage) => {
    let prev = grads.get(t);
    if (prev === undefined) grads.set(t, g);
    else {
      if (prev === readOnly) grads.set(t, (prev = own(prev)));
      addInto(prev, g);
    }
  };

  for (const t of order) {
    const g = grads.get(t);
    if (g === undefined) continue;
    const node = t.gradFn;
    if (node === null) {
      // A leaf: accumulate into .grad.
      if (t.grad === null) {
        if (t.reuseGradientStorage(g, g === readOnly)) continue;
        // The gradient lives as long as the leaf: past a scope() the backward pass runs in (escape may hand
        // back a copy in other memory), unless the leaf itself was made in that scope and ends with it.
        const mine = own(g);
        if (madeInCurrentScope(t)) t.adoptGradient(mine, false);
        else t.adoptGradient(escape(mine), true);
      } else {
        addInto(t.grad.data, g);
      }
      continue;
    }
    if (node.backward === null) {
      throw new Error(
        `backward(): the graph through '${node.name}' was already freed by an earlier backward pass. Run the forward pass again, or pass { retainGraph: true } to the first backward().`,
      );
    }
    const inputGrads = node.backward(g);
    for (let i = 0; i < node.inputs.length; i++) {
      const ig = inputGrads[i];
      if (ig !== null && node.inputs[i].requiresGrad) accumulate(node.inputs[i], ig);
    }
    grads.delete(t);
    if (!retainGraph) {
      node.backward = null;
      node.inputs = [];
    }
  }
  // The graph is freed: intermediate activations of plain forward passes it ran through go back to the pool.
  if (!retainGraph) for (const t of order) if (t.activationGroup !== null) releaseAfterBackward(t);
}

/**
 * dst += src, element by element, by the backend's kernel: gradient sums are
 * a visible share of a backward pass (every tensor used twice, every
 * parameter whose gradient is zeroed in place), and a JavaScript loop over
 * them runs at about 2 ns per element.
 */
export function addInto(dst: Storage, src: Storage): void {
  if (dst instanceof Float32Array && src instanceof Float32Array) backendFor("float32").addInPlace(dst, src);
  else if (dst instanceof Float64Array && src instanceof Float64Array) backendFor("float64").addInPlace(dst, src);
  else for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}
