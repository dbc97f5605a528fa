import { allocate } from "../tensor/allocation.js";
import type { Storage } from "../backend/storage.js";
import { record, Tensor } from "../tensor/tensor.js";
import { broadcastIndex, broadcastShapes, sameShape } from "./broadcast.js";

function checkDtypes(a: Tensor, b: Tensor, op: string): void {
  if (a.dtype !== b.dtype) {
    throw new Error(`${op}: both tensors must have the same dtype; got ${a.dtype} and ${b.dtype}. Convert one with .to("${a.dtype}").`);
  }
}

/**
 * A broadcasting binary op f(a, b) with partial derivatives dfa, dfb. The
 * gradient of a broadcast operand is summed over the broadcast positions.
 */
function binary(
  name: string,
  a: Tensor,
  b: Tensor,
  f: (x: number, y: number) => number,
  dfa: (x: number, y: number, g: number) => number,
  dfb: (x: number, y: number, g: number) => number,
): Tensor {
  checkDtypes(a, b, name);
  const shape = broadcastShapes(a.shape, b.shape, name);
  const out = new Tensor(allocate(a.dtype, shape.reduce((p, d) => p * d, 1)), shape);
  const ad = a.data;
  const bd = b.data;
  const od = out.data;
  const plain = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  const ia = plain ? null : broadcastIndex(a.shape, shape);
  const ib = plain ? null : broadcastIndex(b.shape, shape);
  if (plain) for (let i = 0; i < od.length; i++) od[i] = f(ad[i], bd[i]);
  else for (let i = 0; i < od.length; i++) od[i] = f(ad[ia![i]], bd[ib![i]]);
  return record(out, name, [a, b], (g) => {
    let ga: Storage | null = null;
    let gb: Storage | null = null;
    if (a.requiresGrad) {
      ga = allocate(a.dtype, a.size);
      for (let i = 0; i < g.length; i++) {
        const j = plain ? i : ia![i];
        ga[j] += dfa(ad[j], bd[plain ? i : ib![i]], g[i]);
      }
    }
    if (b.requiresGrad) {
      gb = allocate(b.dtype, b.size);
      for (let i = 0; i < g.length; i++) {
        const j = plain ? i : ib![i];
        gb[j] += dfb(ad[plain ? i : ia![i]], bd[j], g[i]);
      }
    }
    return [ga, gb];
  });
}

function asTensor(v: Tensor | number, like: Tensor): Tensor {
  if (v instanceof Tensor) return v;
  const s = allocate(like.dtype, 1);
  s[0] = v;
  return new Tensor(s, []);
}

export function add(a: Tensor, b: Tensor | number): Tensor {
  return binary("add", a, asTensor(b, a), (x, y) => x + y, (_x, _y, g) => g, (_x, _y, g) => g);
}

export function sub(a: Tensor, b: Tensor | number): Tensor {
  return binary("sub", a, asTensor(b, a), (x, y) => x - y, (_x, _y, g) => g, (_x, _y, g) => -g);
}

export function mul(a: Tensor, b: Tensor | number): Tensor {
  return binary("mul", a, asTensor(b, a), (x, y) => x * y, (_x, y, g) => g * y, (x, _y, g) => g * x);
}

export function div(a: Tensor, b: Tensor | number): Tensor {
  return binary("div", a, asTensor(b, a), (x, y) => x / y, (_x, y, g) => g / y, (x, y, g) => (-g * x) / (y * y));
}

/** An elementwise unary op whose derivative is expressed through input x and output y. */
function unary(name: string, a: Tensor, f: (x: number) => number, df: (x: number, y: number) => number): Tensor {
  const out = new Tensor(allocate(a.dtype, a.size), a.shape);
  const ad = a.data;
  const od = out.data;
  for (let i = 0; i < od.length; i++) od[i] = f(ad[i]);
  return record(out, name, [a], (g) => {
    const ga = allocate(a.dtype, a.size);
    for (let i = 0; i < g.length; i++) ga[i] = g[i] * df(ad[i], od[i]);
    return [ga];
  });
}

export function neg(a: Tensor): Tensor {
  return unary("neg", a, (x) => -x, () => -1);
}

export function exp(a: Tensor): Tensor {
  return unary("exp", a, Math.exp, (_x, y) => y);
}

export function log(a: Tensor): Tensor {
  return unary("log", a, Math.log, (x) => 1 / x);
}

export function square(a: Tensor): Tensor {
  return unary("square", a, (x) => x * x, (x) => 2 * x);
}

export function sqrt(a: Tensor): Tensor {
  return unary("sqrt", a, Math.sqrt, (_x, y) => 0.5 / y);
}

export function tanh(a: Tensor): Tensor {
  return unary("tanh", a, Math.tanh, (_x, y) => 1 - y * y);
}
