import type { Storage } from "../storage.js";

export function addRowVector(x: Storage, bias: Storage, y: Storage, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) y[base + j] = x[base + j] + bias[j];
  }
}

export function sumRows(g: Storage, rows: number, cols: number, out: Storage): void {
  for (let j = 0; j < cols; j++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += g[r * cols + j];
    out[j] = s;
  }
}

export function sigmoid(x: Storage, y: Storage): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    // Branch on the sign so that exp never overflows.
    if (v >= 0) y[i] = 1 / (1 + Math.exp(-v));
    else {
      const e = Math.exp(v);
      y[i] = e / (1 + e);
    }
  }
}

export function sigmoidBackward(y: Storage, dy: Storage, dx: Storage): void {
  for (let i = 0; i < y.length; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
}

export function relu(x: Storage, y: Storage): void {
  for (let i = 0; i < x.length; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

export function reluBackward(x: Storage, dy: Storage, dx: Storage): void {
  for (let i = 0; i < x.length; i++) dx[i] = x[i] > 0 ? dy[i] : 0;
}

/** log p = x − max − log Σ e^(x − max), per row; probs = e^(log p). */
export function softmaxCrossEntropy(logits: Storage, targets: Int32Array, N: number, C: number, probs: Storage): number {
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const base = n * C;
    let max = -Infinity;
    for (let j = 0; j < C; j++) if (logits[base + j] > max) max = logits[base + j];
    let sum = 0;
    for (let j = 0; j < C; j++) sum += Math.exp(logits[base + j] - max);
    const logSum = Math.log(sum) + max;
    for (let j = 0; j < C; j++) probs[base + j] = Math.exp(logits[base + j] - logSum);
    loss += logSum - logits[base + targets[n]];
  }
  return loss;
}

export function sgdStep(
  param: Storage,
  grad: Storage,
  velocity: Storage | null,
  firstStep: boolean,
  lr: number,
  momentum: number,
  dampening: number,
  weightDecay: number,
  nesterov: boolean,
): void {
  for (let i = 0; i < param.length; i++) {
    let d = grad[i] + weightDecay * param[i];
    if (velocity !== null) {
      const buf = firstStep ? d : momentum * velocity[i] + (1 - dampening) * d;
      velocity[i] = buf;
      d = nesterov ? d + momentum * buf : buf;
    }
    param[i] -= lr * d;
  }
}

/**
 * sgdStep into newParam/newVelocity, counting the elements where grad,
 * newParam or newVelocity is not finite (see Backend.sgdStepChecked).
 * Every operation is rounded to the storage's precision (Math.fround for
 * float32: one IEEE float32 operation each, as the wasm kernel computes), so
 * an intermediate that overflows float32 — g + wd·p, μ·v + (1 − dampening)·d,
 * lr·d — is ∞ here too: both backends write the same bits, refuse the same
 * steps and name the same first offending entry.
 */
export function sgdStepChecked(
  param: Storage,
  grad: Storage,
  velocity: Storage | null,
  newParam: Storage,
  newVelocity: Storage | null,
  firstStep: boolean,
  lr: number,
  momentum: number,
  dampening: number,
  weightDecay: number,
  nesterov: boolean,
): number {
  const r = param instanceof Float32Array ? Math.fround : (x: number) => x;
  const lrR = r(lr);
  const mu = r(momentum);
  const keep = r(1 - dampening);
  const wd = r(weightDecay);
  let count = 0;
  for (let i = 0; i < param.length; i++) {
    const p = param[i];
    const g = grad[i];
    let d = r(g + r(wd * p));
    let bad = !Number.isFinite(g);
    if (newVelocity !== null) {
      const buf = firstStep ? d : r(r(mu * velocity![i]) + r(keep * d));
      newVelocity[i] = buf;
      bad ||= !Number.isFinite(buf);
      d = nesterov ? r(d + r(mu * buf)) : buf;
    }
    const q = r(p - r(lrR * d));
    newParam[i] = q;
    if (bad || !Number.isFinite(q)) count++;
  }
  return count;
}

/** dst += src, element by element. */
export function addInPlace(dst: Storage, src: Storage): void {
  if (src.length < dst.length) throw new RangeError(`addInPlace: src holds ${src.length} elements; dst needs ${dst.length}`);
  for (let i = 0; i < dst.length; i++) dst[i] += src[i];
}

/** dst = value, every element. */
export function fill(dst: Storage, value: number): void {
  dst.fill(value);
}

/** dst = src[0..dst.length). */
export function copy(dst: Storage, src: Storage): void {
  if (src.length < dst.length) throw new RangeError(`copy: src holds ${src.length} elements; dst needs ${dst.length}`);
  dst.set(src.length === dst.length ? src : src.subarray(0, dst.length));
}

/** How many elements of x are NaN or ±∞. */
export function countNonFinite(x: Storage): number {
  let count = 0;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) count++;
  return count;
}
