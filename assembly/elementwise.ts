// Row-vector, activation, loss and optimizer kernels on float32 (see
// src/backend/backend.ts). Elementwise kernels may run in place (y = x).

import { EXP_ONE, EXP_SIGN, expConstant, expNonPositive } from "./exp";
import { loadWidened } from "./simd";

@inline function at(p: usize, i: i32): usize {
  return p + (<usize>i << 2);
}

/** y[r, j] = x[r, j] + bias[j] for an (rows, cols) matrix. */
export function addRowVector(x: usize, bias: usize, y: usize, rows: i32, cols: i32): void {
  for (let r = 0; r < rows; r++) {
    const xr = at(x, r * cols);
    const yr = at(y, r * cols);
    let j = 0;
    if (ASC_FEATURE_SIMD) {
      for (; j + 4 <= cols; j += 4) v128.store(at(yr, j), f32x4.add(v128.load(at(xr, j)), v128.load(at(bias, j))));
    }
    for (; j < cols; j++) store<f32>(at(yr, j), load<f32>(at(xr, j)) + load<f32>(at(bias, j)));
  }
}

/** Bytes of workspace sumRows needs: one f64 accumulator per column. */
export function sumRowsWorkspaceBytes(cols: i32): usize {
  return <usize>max(cols, 1) << 3;
}

/** out[j] = Σ_r g[r, j] for an (rows, cols) matrix, accumulated in f64 (`work`: cols f64), row by row. */
export function sumRows(g: usize, rows: i32, cols: i32, out: usize, work: usize): void {
  memory.fill(work, 0, <usize>cols << 3);
  for (let r = 0; r < rows; r++) {
    const gr = at(g, r * cols);
    let j = 0;
    if (ASC_FEATURE_SIMD) {
      for (; j + 4 <= cols; j += 4) {
        const q = at(gr, j);
        const pa = work + (<usize>j << 3);
        v128.store(pa, f64x2.add(v128.load(pa), loadWidened(q)));
        v128.store(pa, f64x2.add(v128.load(pa, 16), loadWidened(q + 8)), 16);
      }
    }
    for (; j < cols; j++) {
      const pa = work + (<usize>j << 3);
      store<f64>(pa, load<f64>(pa) + <f64>load<f32>(at(gr, j)));
    }
  }
  for (let j = 0; j < cols; j++) store<f32>(at(out, j), <f32>load<f64>(work + (<usize>j << 3)));
}

/**
 * y = 1 / (1 + e^(−x)) over n elements. With t = e^(−|x|) (never overflows):
 * y = 1/(1 + t) for x ≥ 0, t/(1 + t) for x < 0. SIMD lanes use expNonPositive
 * (≈ 1 ulp); the scalar path uses Mathf.exp.
 */
export function sigmoid(x: usize, y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) v128.store(at(y, i), sigmoidLanes(v128.load(at(x, i))));
  }
  for (; i < n; i++) store<f32>(at(y, i), sigmoidScalar(load<f32>(at(x, i))));
}

/** σ of four lanes: 1/(1 + e^−|x|) for x ≥ 0, e^−|x|/(1 + e^−|x|) below. */
@inline export function sigmoidLanes(v: v128): v128 {
  // −|x|: set the sign bit.
  const t = expNonPositive(v128.or(v, expConstant(EXP_SIGN)));
  const one = expConstant(EXP_ONE);
  const r = f32x4.div(one, f32x4.add(one, t));
  return v128.bitselect(r, f32x4.mul(t, r), f32x4.ge(v, f32x4.splat(0)));
}

/**
 * σ of one value: with SIMD the lanes' algorithm on one lane, so that an
 * element has the same bits wherever it falls (the fused BN + sigmoid
 * kernels cut their vectors elsewhere than this kernel); without, Mathf.exp.
 */
@inline export function sigmoidScalar(v: f32): f32 {
  if (ASC_FEATURE_SIMD) return f32x4.extract_lane(sigmoidLanes(f32x4.splat(v)), 0);
  if (v >= 0) return 1 / (1 + Mathf.exp(-v));
  const e = Mathf.exp(v);
  return e / (1 + e);
}

/** dx = dy·y·(1 − y) over n elements, from the forward output y. */
export function sigmoidBackward(y: usize, dy: usize, dx: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const one = f32x4.splat(1);
    for (; i + 4 <= n; i += 4) {
      const vy = v128.load(at(y, i));
      v128.store(at(dx, i), f32x4.mul(f32x4.mul(v128.load(at(dy, i)), vy), f32x4.sub(one, vy)));
    }
  }
  for (; i < n; i++) {
    const vy = load<f32>(at(y, i));
    store<f32>(at(dx, i), load<f32>(at(dy, i)) * vy * (1 - vy));
  }
}

/** y = x where x > 0, else 0 (NaN → 0, as `x > 0 ? x : 0`). */
export function relu(x: usize, y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const zero = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(at(x, i));
      v128.store(at(y, i), v128.and(v, f32x4.gt(v, zero)));
    }
  }
  for (; i < n; i++) {
    const v = load<f32>(at(x, i));
    store<f32>(at(y, i), v > 0 ? v : 0);
  }
}

/** dx = dy where x > 0, else 0. */
export function reluBackward(x: usize, dy: usize, dx: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const zero = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      v128.store(at(dx, i), v128.and(v128.load(at(dy, i)), f32x4.gt(v128.load(at(x, i)), zero)));
    }
  }
  for (; i < n; i++) store<f32>(at(dx, i), load<f32>(at(x, i)) > 0 ? load<f32>(at(dy, i)) : 0);
}

/**
 * Row-wise log-softmax cross-entropy of (N, C) logits against class indices
 * (i32 at `targets`, each in [0, C)). Writes softmax probabilities to `probs`
 * and returns Σ_n −log p[n, t_n]. In f64, like the reference: log p = x − max
 * − log Σ e^(x − max).
 */
export function softmaxCrossEntropy(logits: usize, targets: usize, N: i32, C: i32, probs: usize): f64 {
  let loss: f64 = 0;
  for (let n = 0; n < N; n++) {
    const row = at(logits, n * C);
    const prow = at(probs, n * C);
    let mx: f64 = -Infinity;
    for (let j = 0; j < C; j++) {
      const v = <f64>load<f32>(at(row, j));
      if (v > mx) mx = v;
    }
    let sum: f64 = 0;
    for (let j = 0; j < C; j++) sum += Math.exp(<f64>load<f32>(at(row, j)) - mx);
    const logSum = Math.log(sum) + mx;
    for (let j = 0; j < C; j++) store<f32>(at(prow, j), <f32>Math.exp(<f64>load<f32>(at(row, j)) - logSum));
    const t = load<i32>(targets + (<usize>n << 2));
    loss += logSum - <f64>load<f32>(at(row, t));
  }
  return loss;
}

/**
 * One SGD step over n parameters, with PyTorch's semantics:
 *   d = g + wd·p; buf = μ·buf + (1 − dampening)·d (buf = d on the first step);
 *   d = nesterov ? d + μ·buf : buf; p −= lr·d.
 * `velocity` = 0 means no momentum buffer. In f32.
 */
export function sgdStep(
  param: usize,
  grad: usize,
  velocity: usize,
  n: i32,
  firstStep: bool,
  lr: f64,
  momentum: f64,
  dampening: f64,
  weightDecay: f64,
  nesterov: bool,
): void {
  const lr32 = <f32>lr;
  const mu = <f32>momentum;
  const keep = <f32>(1 - dampening);
  const wd = <f32>weightDecay;
  const hasVelocity = velocity != 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const vlr = f32x4.splat(lr32), vmu = f32x4.splat(mu), vkeep = f32x4.splat(keep), vwd = f32x4.splat(wd);
    for (; i + 4 <= n; i += 4) {
      const pp = at(param, i);
      const p = v128.load(pp);
      let d = f32x4.add(v128.load(at(grad, i)), f32x4.mul(vwd, p));
      if (hasVelocity) {
        const pv = at(velocity, i);
        const buf = firstStep ? d : f32x4.add(f32x4.mul(vmu, v128.load(pv)), f32x4.mul(vkeep, d));
        v128.store(pv, buf);
        d = nesterov ? f32x4.add(d, f32x4.mul(vmu, buf)) : buf;
      }
      v128.store(pp, f32x4.sub(p, f32x4.mul(vlr, d)));
    }
  }
  for (; i < n; i++) {
    const pp = at(param, i);
    const p = load<f32>(pp);
    let d = load<f32>(at(grad, i)) + wd * p;
    if (hasVelocity) {
      const pv = at(velocity, i);
      const buf = firstStep ? d : mu * load<f32>(pv) + keep * d;
      store<f32>(pv, buf);
      d = nesterov ? d + mu * buf : buf;
    }
    store<f32>(pp, p - lr32 * d);
  }
}

/**
 * sgdStep's update written elsewhere and checked in the same pass, so that a
 * diverging step never reaches the model: for i in [i0, i1), from param,
 * grad and (unless the first step) velocity, writes
 *   newParam = p − lr·d,  newVelocity = buf    (buf, d as in sgdStep, same f32 operations, same bits)
 * and returns how many elements i have grad[i], newParam[i] or
 * newVelocity[i] NaN or ±∞ (exponent bits all ones). `newVelocity` = 0 means
 * no momentum; `velocity` is not read on the first step (pass 0). A share of
 * the elements is one thread's part of a split call.
 *
 * Only newParam is tested: a non-finite gradient, velocity or momentum
 * buffer (or parameter) reaches newParam as NaN or ±∞ — every path from
 * them to q = p − lr·d is a sum or a product, ∞ survives sums with finite
 * values, ∞ − ∞ and 0·∞ are NaN, NaN survives everything — so counting
 * non-finite q counts exactly the elements where any of them is.
 */
export function sgdStepChecked(
  param: usize,
  grad: usize,
  velocity: usize,
  newParam: usize,
  newVelocity: usize,
  n: i32,
  firstStep: bool,
  lr: f64,
  momentum: f64,
  dampening: f64,
  weightDecay: f64,
  nesterov: bool,
  i0: i32,
  i1: i32,
): i32 {
  const end = min(i1, n);
  // The loop for each case, so that no flag is tested per element (the common one: momentum after the first step).
  if (newVelocity == 0) return checkedRange(param, grad, 0, newParam, 0, i0, end, false, false, false, lr, momentum, dampening, weightDecay);
  if (firstStep) return checkedRange(param, grad, 0, newParam, newVelocity, i0, end, true, true, nesterov, lr, momentum, dampening, weightDecay);
  if (nesterov) return checkedRange(param, grad, velocity, newParam, newVelocity, i0, end, true, false, true, lr, momentum, dampening, weightDecay);
  return checkedRange(param, grad, velocity, newParam, newVelocity, i0, end, true, false, false, lr, momentum, dampening, weightDecay);
}

@inline function checkedRange(
  param: usize,
  grad: usize,
  velocity: usize,
  newParam: usize,
  newVelocity: usize,
  i0: i32,
  i1: i32,
  hasVelocity: bool,
  firstStep: bool,
  nesterov: bool,
  lr: f64,
  momentum: f64,
  dampening: f64,
  weightDecay: f64,
): i32 {
  const EXPONENT: u32 = 0x7f800000;
  const lr32 = <f32>lr;
  const mu = <f32>momentum;
  const keep = <f32>(1 - dampening);
  const wd = <f32>weightDecay;
  let i = i0;
  let count = 0;
  if (ASC_FEATURE_SIMD) {
    const vlr = f32x4.splat(lr32), vmu = f32x4.splat(mu), vkeep = f32x4.splat(keep), vwd = f32x4.splat(wd);
    const mask = i32x4.splat(EXPONENT);
    // Per lane: how many new parameters had their exponent bits all ones.
    let lanes = i32x4.splat(0);
    for (; i + 4 <= i1; i += 4) {
      const p = v128.load(at(param, i));
      let d = f32x4.add(v128.load(at(grad, i)), f32x4.mul(vwd, p));
      if (hasVelocity) {
        const buf = firstStep ? d : f32x4.add(f32x4.mul(vmu, v128.load(at(velocity, i))), f32x4.mul(vkeep, d));
        v128.store(at(newVelocity, i), buf);
        d = nesterov ? f32x4.add(d, f32x4.mul(vmu, buf)) : buf;
      }
      const q = f32x4.sub(p, f32x4.mul(vlr, d));
      v128.store(at(newParam, i), q);
      // i32x4.eq gives −1 in each lane that matches: subtracting it counts.
      lanes = i32x4.sub(lanes, i32x4.eq(v128.and(q, mask), mask));
    }
    count = i32x4.extract_lane(lanes, 0) + i32x4.extract_lane(lanes, 1) + i32x4.extract_lane(lanes, 2) + i32x4.extract_lane(lanes, 3);
  }
  for (; i < i1; i++) {
    const p = load<f32>(at(param, i));
    let d = load<f32>(at(grad, i)) + wd * p;
    if (hasVelocity) {
      const buf = firstStep ? d : mu * load<f32>(at(velocity, i)) + keep * d;
      store<f32>(at(newVelocity, i), buf);
      d = nesterov ? d + mu * buf : buf;
    }
    const q = p - lr32 * d;
    store<f32>(at(newParam, i), q);
    if ((reinterpret<u32>(q) & EXPONENT) == EXPONENT) count++;
  }
  return count;
}

/** dst[i] += src[i] for i < n (gradient accumulation). */
export function addInPlace(dst: usize, src: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) v128.store(at(dst, i), f32x4.add(v128.load(at(dst, i)), v128.load(at(src, i))));
  }
  for (; i < n; i++) store<f32>(at(dst, i), load<f32>(at(dst, i)) + load<f32>(at(src, i)));
}

/**
 * dst[0..n) = value. A bulk fill: over shared memory a JavaScript
 * TypedArray.fill runs about ten times slower (every store is atomic).
 */
export function fillValues(dst: usize, n: i32, value: f32): void {
  if (reinterpret<u32>(value) == 0) {
    memory.fill(dst, 0, <usize>n << 2);
    return;
  }
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const v = f32x4.splat(value);
    for (; i + 4 <= n; i += 4) v128.store(at(dst, i), v);
  }
  for (; i < n; i++) store<f32>(at(dst, i), value);
}

/** dst[0..n) = src[0..n) (the two do not overlap): a bulk copy, which JavaScript does slowly over shared memory. */
export function copyValues(dst: usize, src: usize, n: i32): void {
  memory.copy(dst, src, <usize>n << 2);
}

/** How many of x[0..n) are NaN or ±∞: those whose exponent bits are all ones. */
export function countNonFinite(x: usize, n: i32): i32 {
  const EXPONENT: u32 = 0x7f800000;
  let i = 0;
  let count = 0;
  if (ASC_FEATURE_SIMD) {
    const mask = i32x4.splat(EXPONENT);
    let lanes = i32x4.splat(0);
    // i32x4.eq gives −1 in each lane that matches: subtracting it counts.
    for (; i + 4 <= n; i += 4) lanes = i32x4.sub(lanes, i32x4.eq(v128.and(v128.load(at(x, i)), mask), mask));
    count = i32x4.extract_lane(lanes, 0) + i32x4.extract_lane(lanes, 1) + i32x4.extract_lane(lanes, 2) + i32x4.extract_lane(lanes, 3);
  }
  for (; i < n; i++) if ((load<u32>(at(x, i)) & EXPONENT) == EXPONENT) count++;
  return count;
}
