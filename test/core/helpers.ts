/**
 * Shared tools of the core suite: a float64 finite-difference gradient check
 * (compared with the suite's one all-close assertion, ../allclose.ts) and
 * seeded test data; the memory probes of the memory tests.
 */
import assert from "node:assert/strict";
import { Generator, getBackend, noGrad, Tensor } from "../../src/index.js";
import type { WasmBackend } from "../../src/backend/wasm/index.js";
import { assertAllClose, type Tolerance } from "../allclose.js";

/** A float64 (or float32) tensor of seeded standard normal values, times `scale`, plus `shift`. */
export function randn(
  shape: readonly number[],
  gen: Generator,
  options: { dtype?: "float32" | "float64"; requiresGrad?: boolean; scale?: number; shift?: number } = {},
): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = options.dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
  const scale = options.scale ?? 1;
  const shift = options.shift ?? 0;
  for (let i = 0; i < n; i++) data[i] = shift + scale * gen.normal();
  return new Tensor(data, shape, options.requiresGrad ?? false);
}

/** Seeded uniform values in [low, high). */
export function randu(
  shape: readonly number[],
  gen: Generator,
  low: number,
  high: number,
  options: { dtype?: "float32" | "float64"; requiresGrad?: boolean } = {},
): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const data = options.dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = low + (high - low) * gen.uniform();
  return new Tensor(data, shape, options.requiresGrad ?? false);
}

/** A copy of a tensor's bytes, for "byte-identical" comparisons. */
export function bytesOf(t: Tensor): Buffer {
  return Buffer.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice());
}

export interface GradcheckOptions {
  /** finite-difference step; default 1e-6 */
  eps?: number;
  /** default 1e-7 */
  atol?: number;
  /** default 1e-5 */
  rtol?: number;
  /** seed of the fixed projection vector r; default 1234 */
  seed?: number;
}

/**
 * Compare the autograd gradient of ℓ(x) = Σ r ⊙ fn(x) (r a fixed random
 * vector, so any output shape works) against central finite differences
 * (ℓ(x + h·e_i) − ℓ(x − h·e_i)) / 2h, for every input that requires grad.
 * Inputs must be float64. `fn` may be called many times and must be a pure
 * function of the inputs' values (modules in train mode may update buffers).
 */
export function gradcheck(fn: (inputs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): void {
  const h = options.eps ?? 1e-6;
  const tol: Tolerance = { atol: options.atol ?? 1e-7, rtol: options.rtol ?? 1e-5 };
  for (const t of inputs) {
    assert.equal(t.dtype, "float64", "gradcheck needs float64 inputs");
    t.grad = null;
  }
  const checked = inputs.filter((t) => t.requiresGrad);
  assert.ok(checked.length > 0, "gradcheck: no input requires grad");

  const out = fn(inputs);
  assert.equal(out.dtype, "float64", "gradcheck: fn must return float64");
  const gen = new Generator(options.seed ?? 1234);
  const r = new Float64Array(out.size);
  for (let i = 0; i < r.length; i++) r[i] = gen.normal();
  out.backward(r);

  const loss = (): number =>
    noGrad(() => {
      const y = fn(inputs);
      let s = 0;
      for (let i = 0; i < y.size; i++) s += r[i] * y.data[i];
      return s;
    });

  inputs.forEach((t, k) => {
    if (!t.requiresGrad) return;
    assert.ok(t.grad !== null, `gradcheck: input ${k} (shape [${t.shape.join(", ")}]) got no gradient`);
    const numeric = new Float64Array(t.size);
    for (let i = 0; i < t.size; i++) {
      const orig = t.data[i];
      t.data[i] = orig + h;
      const plus = loss();
      t.data[i] = orig - h;
      const minus = loss();
      t.data[i] = orig;
      numeric[i] = (plus - minus) / (2 * h);
    }
    assertAllClose(t.grad!.data, numeric, tol, `gradcheck: input ${k} (shape [${t.shape.join(", ")}]) autograd vs finite differences`);
  });
}

/** Collect garbage and turn the event loop until finalizers have run (node --expose-gc, as npm test runs). */
export async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) assert.fail("globalThis.gc is undefined: run node with --expose-gc");
  for (let i = 0; i < 6; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

/** Bytes of the active backend's own memory in use (0 for the reference backend). */
export function backendBytes(): number {
  const b = getBackend() as Partial<WasmBackend>;
  return typeof b.linearMemoryBytesInUse === "function" ? b.linearMemoryBytesInUse() : 0;
}
