// Batch-normalization kernels on float32 x viewed as (N, C, S): element
// (n, c, s) at index (n·C + c)·S + s; per-channel vectors (mean, variance,
// center, scale, ...) are float64, as in src/backend/backend.ts.
//
// Two layouts of the loops:
//   S > 1  (conv maps, (N, C, H·W)): the S values of one (n, c) are contiguous;
//          vectorize along s, with the channel's constants splatted.
//   S = 1  (features, (N, C)): one channel per column; vectorize across
//          channels, row by row, with per-channel accumulators and constants
//          kept in memory.
//
// Precision. Reductions accumulate in f64 (f64x2 lanes), like the reference.
// Elementwise passes run in f32 but never round the channel center to f32:
// it is split as center = hi + lo (hi = f32(center), lo = f32(center − hi)) and
// x − center is computed as (x − hi) − lo. For x near a large center (mean
// 1e4, std 1e-2) x − hi is exact, so x̂ keeps full f32 precision, where
// x·scale + (shift − center·scale) would cancel it away.

import { sigmoidLanes, sigmoidScalar } from "./elementwise";
import { loadWidened, sumLanes64, widenHigh, widenLow } from "./simd";

/** Bytes of workspace the S = 1 forms of channelAffine and channelGradInput need: five f32 per channel. */
export function batchNormWorkspaceBytes(C: i32): usize {
  return <usize>(5 * max(C, 1)) << 2;
}

@inline function f32At(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}

@inline function f64At(p: usize, i: i32): f64 {
  return load<f64>(p + (<usize>i << 3));
}

@inline function runOffset(n: i32, C: i32, c: i32, S: i32): usize {
  return (<usize>(n * C + c) * <usize>S) << 2;
}

/** The low part of the center: center − f32(center), rounded to f32. */
@inline function centerLo(center: f64): f32 {
  return <f32>(center - <f64>(<f32>center));
}

// ---------------------------------------------------------------------------
// channelMoments: μ_c = (1/m) Σ x, σ²_c = (1/m) Σ (x − μ_c)², m = N·S, two passes.

export function channelMoments(x: usize, N: i32, C: i32, S: i32, mean: usize, variance: usize): void {
  const m = <f64>N * <f64>S;
  if (S == 1) {
    memory.fill(mean, 0, <usize>C << 3);
    memory.fill(variance, 0, <usize>C << 3);
    for (let n = 0; n < N; n++) accumulateRow(x + (<usize>(n * C) << 2), mean, C);
    for (let c = 0; c < C; c++) store<f64>(mean + (<usize>c << 3), f64At(mean, c) / m);
    for (let n = 0; n < N; n++) accumulateSquaredDeviationRow(x + (<usize>(n * C) << 2), mean, variance, C);
    for (let c = 0; c < C; c++) store<f64>(variance + (<usize>c << 3), f64At(variance, c) / m);
    return;
  }
  for (let c = 0; c < C; c++) {
    const mu = channelSum(x, N, C, c, S) / m;
    store<f64>(mean + (<usize>c << 3), mu);
    store<f64>(variance + (<usize>c << 3), channelSquaredDeviations(x, N, C, c, S, mu) / m);
  }
}

// The channel's N runs of S floats are summed by four f64x2 chains that go on
// from run to run, reduced once per channel (reduced per run, the chains'
// setup and reduction cost a third of a 4×4 map's sum); each run's last
// S mod 8 floats go to a scalar sum beside them.

/** Σ x over channel c's runs, in f64. */
function channelSum(x: usize, N: i32, C: i32, c: i32, S: i32): f64 {
  let s: f64 = 0;
  if (ASC_FEATURE_SIMD) {
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
    for (let n = 0; n < N; n++) {
      const p = x + runOffset(n, C, c, S);
      let i = 0;
      for (; i + 8 <= S; i += 8) {
        const q = p + (<usize>i << 2);
        s0 = f64x2.add(s0, loadWidened(q));
        s1 = f64x2.add(s1, loadWidened(q + 8));
        s2 = f64x2.add(s2, loadWidened(q + 16));
        s3 = f64x2.add(s3, loadWidened(q + 24));
      }
      for (; i < S; i++) s += <f64>f32At(p, i);
    }
    return s + sumLanes64(f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3)));
  }
  for (let n = 0; n < N; n++) {
    const p = x + runOffset(n, C, c, S);
    for (let i = 0; i < S; i++) s += <f64>f32At(p, i);
  }
  return s;
}

/** Σ (x − mu)² over channel c's runs, in f64. */
function channelSquaredDeviations(x: usize, N: i32, C: i32, c: i32, S: i32, mu: f64): f64 {
  let s: f64 = 0;
  if (ASC_FEATURE_SIMD) {
    const vmu = f64x2.splat(mu);
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
    for (let n = 0; n < N; n++) {
      const p = x + runOffset(n, C, c, S);
      let i = 0;
      for (; i + 8 <= S; i += 8) {
        const q = p + (<usize>i << 2);
        const d0 = f64x2.sub(loadWidened(q), vmu);
        const d1 = f64x2.sub(loadWidened(q + 8), vmu);
        const d2 = f64x2.sub(loadWidened(q + 16), vmu);
        const d3 = f64x2.sub(loadWidened(q + 24), vmu);
        s0 = f64x2.add(s0, f64x2.mul(d0, d0));
        s1 = f64x2.add(s1, f64x2.mul(d1, d1));
        s2 = f64x2.add(s2, f64x2.mul(d2, d2));
        s3 = f64x2.add(s3, f64x2.mul(d3, d3));
      }
      for (; i < S; i++) {
        const d = <f64>f32At(p, i) - mu;
        s += d * d;
      }
    }
    return s + sumLanes64(f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3)));
  }
  for (let n = 0; n < N; n++) {
    const p = x + runOffset(n, C, c, S);
    for (let i = 0; i < S; i++) {
      const d = <f64>f32At(p, i) - mu;
      s += d * d;
    }
  }
  return s;
}

/** acc[c] += row[c] for c < C (acc f64, row f32). */
function accumulateRow(row: usize, acc: usize, C: i32): void {
  let c = 0;
  if (ASC_FEATURE_SIMD) {
    for (; c + 4 <= C; c += 4) {
      const q = row + (<usize>c << 2);
      const pa = acc + (<usize>c << 3);
      v128.store(pa, f64x2.add(v128.load(pa), loadWidened(q)));
      v128.store(pa, f64x2.add(v128.load(pa, 16), loadWidened(q + 8)), 16);
    }
  }
  for (; c < C; c++) {
    const pa = acc + (<usize>c << 3);
    store<f64>(pa, load<f64>(pa) + <f64>f32At(row, c));
  }
}

/** acc[c] += (row[c] − mean[c])² for c < C, in f64. */
function accumulateSquaredDeviationRow(row: usize, mean: usize, acc: usize, C: i32): void {
  let c = 0;
  if (ASC_FEATURE_SIMD) {
    for (; c + 4 <= C; c += 4) {
      const q = row + (<usize>c << 2);
      const pm = mean + (<usize>c << 3);
      const pa = acc + (<usize>c << 3);
      const d0 = f64x2.sub(loadWidened(q), v128.load(pm));
      const d1 = f64x2.sub(loadWidened(q + 8), v128.load(pm, 16));
      v128.store(pa, f64x2.add(v128.load(pa), f64x2.mul(d0, d0)));
      v128.store(pa, f64x2.add(v128.load(pa, 16), f64x2.mul(d1, d1)), 16);
    }
  }
  for (; c < C; c++) {
    const d = <f64>f32At(row, c) - f64At(mean, c);
    const pa = acc + (<usize>c << 3);
    store<f64>(pa, load<f64>(pa) + d * d);
  }
}

// ---------------------------------------------------------------------------
// channelAffine: y = (x − center_c)·scale_c + shift_c; channelAffineActivated:
// y = max(0, that) or σ(that), bit for bit elementwise.ts's relu or sigmoid of
// channelAffine's y: one pass instead of two for the conv → BN → ReLU chain
// and the §4.1 MLP's linear → BN → sigmoid.

export function channelAffine(
  x: usize,
  y: usize,
  N: i32,
  C: i32,
  S: i32,
  center: usize,
  scale: usize,
  shift: usize,
  work: usize,
): void {
  affine(x, y, N, C, S, center, scale, shift, work, NONE);
}

/** channelAffine, then ReLU (act 1) or the sigmoid (act 2). */
export function channelAffineActivated(
  x: usize,
  y: usize,
  N: i32,
  C: i32,
  S: i32,
  center: usize,
  scale: usize,
  shift: usize,
  work: usize,
  act: i32,
): void {
  // One inlined copy of the loops per nonlinearity, so that none of them branches on it.
  if (act == RELU) affine(x, y, N, C, S, center, scale, shift, work, RELU);
  else affine(x, y, N, C, S, center, scale, shift, work, SIGMOID);
}

/** The nonlinearity applied to BN's output (and its backward to dy as dy is read); src/backend/wasm/batchnormRows.ts passes these codes. */
const NONE: i32 = 0;
const RELU: i32 = 1;
const SIGMOID: i32 = 2;

@inline function activateLanes(v: v128, act: i32): v128 {
  return act == RELU ? reluLanes(v) : act == SIGMOID ? sigmoidLanes(v) : v;
}

@inline function activateScalar(v: f32, act: i32): f32 {
  return act == RELU ? reluScalar(v) : act == SIGMOID ? sigmoidScalar(v) : v;
}

/** v where v > 0, else 0 (NaN → 0), as elementwise.ts's relu. */
@inline function reluLanes(v: v128): v128 {
  return v128.and(v, f32x4.gt(v, f32x4.splat(0)));
}

@inline function reluScalar(v: f32): f32 {
  return v > 0 ? v : 0;
}

@inline function affine(
  x: usize,
  y: usize,
  N: i32,
  C: i32,
  S: i32,
  center: usize,
  scale: usize,
  shift: usize,
  work: usize,
  act: i32,
): void {
  if (S == 1) {
    // Per-channel f32 constants, laid out as four rows of C: hi, lo, scale, shift.
    const cb = <usize>C << 2;
    for (let c = 0; c < C; c++) {
      const o = <usize>c << 2;
      const mu = f64At(center, c);
      store<f32>(work + o, <f32>mu);
      store<f32>(work + cb + o, centerLo(mu));
      store<f32>(work + 2 * cb + o, <f32>f64At(scale, c));
      store<f32>(work + 3 * cb + o, <f32>f64At(shift, c));
    }
    for (let n = 0; n < N; n++) {
      const row = <usize>(n * C) << 2;
      const xr = x + row;
      const yr = y + row;
      let c = 0;
      if (ASC_FEATURE_SIMD) {
        for (; c + 4 <= C; c += 4) {
          const o = <usize>c << 2;
          const w = work + o;
          const d = f32x4.sub(f32x4.sub(v128.load(xr + o), v128.load(w)), v128.load(w + cb));
          const v = f32x4.add(f32x4.mul(d, v128.load(w + 2 * cb)), v128.load(w + 3 * cb));
          v128.store(yr + o, activateLanes(v, act));
        }
      }
      for (; c < C; c++) {
        const o = <usize>c << 2;
        const w = work + o;
        const d = load<f32>(xr + o) - load<f32>(w) - load<f32>(w + cb);
        const v = d * load<f32>(w + 2 * cb) + load<f32>(w + 3 * cb);
        store<f32>(yr + o, activateScalar(v, act));
      }
    }
    return;
  }
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const mu = f64At(center, c);
      const hi = <f32>mu;
      const lo = centerLo(mu);
      const a = <f32>f64At(scale, c);
      const b = <f32>f64At(shift, c);
      const off = runOffset(n, C, c, S);
      const xr = x + off;
      const yr = y + off;
      let s = 0;
      if (ASC_FEATURE_SIMD) {
        const vhi = f32x4.splat(hi), vlo = f32x4.splat(lo), va = f32x4.splat(a), vb = f32x4.splat(b);
        for (; s + 4 <= S; s += 4) {
          const o = <usize>s << 2;
          const d = f32x4.sub(f32x4.sub(v128.load(xr + o), vhi), vlo);
          const v = f32x4.add(f32x4.mul(d, va), vb);
          v128.store(yr + o, activateLanes(v, act));
        }
      }
      for (; s < S; s++) {
        const o = <usize>s << 2;
        const d = load<f32>(xr + o) - hi - lo;
        const v = d * a + b;
        store<f32>(yr + o, activateScalar(v, act));
      }
    }
  }
}

// ---------------------------------------------------------------------------
// channelGradSums: sumDy_c = Σ dy, sumDyXmu_c = Σ dy·(x − μ_c), in f64, one loop.
// channelGradSumsActivated: the same sums of dy' = (y > 0 ? dy : 0) or
// dy·y·(1 − y), with y the output of channelAffineActivated — relu's or the
// sigmoid's backward (elementwise.ts's, bit for bit) applied as the values
// are read.

export function channelGradSums(
  x: usize,
  dy: usize,
  N: i32,
  C: i32,
  S: i32,
  mean: usize,
  sumDy: usize,
  sumDyXmu: usize,
): void {
  gradSums(x, dy, 0, N, C, S, mean, sumDy, sumDyXmu, NONE);
}

/** channelGradSums of dy with the backward of ReLU (act 1) or the sigmoid (act 2) applied from y. */
export function channelGradSumsActivated(
  x: usize,
  dy: usize,
  y: usize,
  N: i32,
  C: i32,
  S: i32,
  mean: usize,
  sumDy: usize,
  sumDyXmu: usize,
  act: i32,
): void {
  if (act == RELU) gradSums(x, dy, y, N, C, S, mean, sumDy, sumDyXmu, RELU);
  else gradSums(x, dy, y, N, C, S, mean, sumDy, sumDyXmu, SIGMOID);
}

/** The nonlinearity's backward from its output y: relu dy where y > 0, else 0; sigmoid dy·y·(1 − y) (as elementwise.ts). */
@inline function activationGradLanes(dy: v128, y: v128, act: i32): v128 {
  if (act == RELU) return v128.and(dy, f32x4.gt(y, f32x4.splat(0)));
  return f32x4.mul(f32x4.mul(dy, y), f32x4.sub(f32x4.splat(1), y));
}

/** The two floats of dy at p widened to f64x2, the nonlinearity's backward applied from its output at q. */
@inline function loadGradWidened(p: usize, q: usize, act: i32): v128 {
  if (act == NONE) return loadWidened(p);
  return f64x2.promote_low_f32x4(activationGradLanes(v128.load64_zero(p), v128.load64_zero(q), act));
}

/** dy at p, the nonlinearity's backward applied from its output at q. */
@inline function loadGrad(p: usize, q: usize, act: i32): f32 {
  if (act == RELU) return load<f32>(q) > 0 ? load<f32>(p) : 0;
  if (act == SIGMOID) {
    const y = load<f32>(q);
    return load<f32>(p) * y * (1 - y);
  }
  return load<f32>(p);
}

/** Four dy at p, the nonlinearity's backward applied from its output at q. */
@inline function loadGradLanes(p: usize, q: usize, act: i32): v128 {
  if (act == NONE) return v128.load(p);
  return activationGradLanes(v128.load(p), v128.load(q), act);
}

@inline function gradSums(
  x: usize,
  dy: usize,
  y: usize,
  N: i32,
  C: i32,
  S: i32,
  mean: usize,
  sumDy: usize,
  sumDyXmu: usize,
  act: i32,
): void {
  if (S == 1) {
    memory.fill(sumDy, 0, <usize>C << 3);
    memory.fill(sumDyXmu, 0, <usize>C << 3);
    for (let n = 0; n < N; n++) {
      const row = <usize>(n * C) << 2;
      const xr = x + row;
      const gr = dy + row;
      const yr = y + row;
      let c = 0;
      if (ASC_FEATURE_SIMD) {
        for (; c + 4 <= C; c += 4) {
          const o4 = <usize>c << 2;
          const o8 = <usize>c << 3;
          const g0 = loadGradWidened(gr + o4, yr + o4, act);
          const g1 = loadGradWidened(gr + o4 + 8, yr + o4 + 8, act);
          const d0 = f64x2.sub(loadWidened(xr + o4), v128.load(mean + o8));
          const d1 = f64x2.sub(loadWidened(xr + o4 + 8), v128.load(mean + o8, 16));
          const ps = sumDy + o8;
          const pd = sumDyXmu + o8;
          v128.store(ps, f64x2.add(v128.load(ps), g0));
          v128.store(ps, f64x2.add(v128.load(ps, 16), g1), 16);
          v128.store(pd, f64x2.add(v128.load(pd), f64x2.mul(g0, d0)));
          v128.store(pd, f64x2.add(v128.load(pd, 16), f64x2.mul(g1, d1)), 16);
        }
      }
      for (; c < C; c++) {
        const g = <f64>loadGrad(gr + (<usize>c << 2), yr + (<usize>c << 2), act);
        const d = <f64>f32At(xr, c) - f64At(mean, c);
        const ps = sumDy + (<usize>c << 3);
        const pd = sumDyXmu + (<usize>c << 3);
        store<f64>(ps, load<f64>(ps) + g);
        store<f64>(pd, load<f64>(pd) + g * d);
      }
    }
    return;
  }
  for (let c = 0; c < C; c++) {
    const mu = f64At(mean, c);
    let sg: f64 = 0;
    let sgx: f64 = 0;
    for (let n = 0; n < N; n++) {
      const off = runOffset(n, C, c, S);
      const xr = x + off;
      const gr = dy + off;
      const yr = y + off;
      let s = 0;
      if (ASC_FEATURE_SIMD) {
        // Four chains of each sum, eight values a round, so the f64 adds do not
        // wait on each other (two chains measured half the speed of channelMoments' runs).
        const vmu = f64x2.splat(mu);
        let g0 = f64x2.splat(0), g1 = f64x2.splat(0), g2 = f64x2.splat(0), g3 = f64x2.splat(0);
        let p0 = f64x2.splat(0), p1 = f64x2.splat(0), p2 = f64x2.splat(0), p3 = f64x2.splat(0);
        // dy (masked by relu four lanes at a time) and x read four floats per load, then widened two by two:
        // the same f64 values in the same chains as two-float loads, with half the loads and compares.
        for (; s + 8 <= S; s += 8) {
          const o = <usize>s << 2;
          const gA = loadGradLanes(gr + o, yr + o, act), gB = loadGradLanes(gr + o + 16, yr + o + 16, act);
          const xA = v128.load(xr + o), xB = v128.load(xr + o + 16);
          const ga = widenLow(gA), gb = widenHigh(gA), gc = widenLow(gB), gd = widenHigh(gB);
          g0 = f64x2.add(g0, ga);
          g1 = f64x2.add(g1, gb);
          g2 = f64x2.add(g2, gc);
          g3 = f64x2.add(g3, gd);
          p0 = f64x2.add(p0, f64x2.mul(ga, f64x2.sub(widenLow(xA), vmu)));
          p1 = f64x2.add(p1, f64x2.mul(gb, f64x2.sub(widenHigh(xA), vmu)));
          p2 = f64x2.add(p2, f64x2.mul(gc, f64x2.sub(widenLow(xB), vmu)));
          p3 = f64x2.add(p3, f64x2.mul(gd, f64x2.sub(widenHigh(xB), vmu)));
        }
        if (s + 4 <= S) {
          const o = <usize>s << 2;
          const gA = loadGradLanes(gr + o, yr + o, act);
          const ga = widenLow(gA), gb = widenHigh(gA);
          g0 = f64x2.add(g0, ga);
          g1 = f64x2.add(g1, gb);
          p0 = f64x2.add(p0, f64x2.mul(ga, f64x2.sub(loadWidened(xr + o), vmu)));
          p1 = f64x2.add(p1, f64x2.mul(gb, f64x2.sub(loadWidened(xr + o + 8), vmu)));
          s += 4;
        }
        sg += sumLanes64(f64x2.add(f64x2.add(g0, g1), f64x2.add(g2, g3)));
        sgx += sumLanes64(f64x2.add(f64x2.add(p0, p1), f64x2.add(p2, p3)));
      }
      for (; s < S; s++) {
        const g = <f64>loadGrad(gr + (<usize>s << 2), yr + (<usize>s << 2), act);
        sg += g;
        sgx += g * (<f64>f32At(xr, s) - mu);
      }
    }
    store<f64>(sumDy + (<usize>c << 3), sg);
    store<f64>(sumDyXmu + (<usize>c << 3), sgx);
  }
}

// ---------------------------------------------------------------------------
// channelGradInput: dx = (dy − a_c − (x − μ_c)·b_c)·k_c; channelGradInputActivated:
// the same with dy' as in channelGradSumsActivated.

export function channelGradInput(
  x: usize,
  dy: usize,
  dx: usize,
  N: i32,
  C: i32,
  S: i32,
  mean: usize,
  a: usize,
  b: usize,
  k: usize,
  work: usize,
): void {
  gradInput(x, dy, 0, dx, N, C, S, mean, a, b, k, work, NONE);
}

/** channelGradInput of dy with the backward of ReLU (act 1) or the sigmoid (act 2) applied from y. */
export function channelGradInputActivated(
  x: usize,
  dy: usize,
  y: usize,
  dx: usize,
  N: i32,
  C: i32,
  S: i32,
  mean: usize,
  a: usize,
  b: usize,
  k: usize,
  work: usize,
  act: i32,
): void {
  if (act == RELU) gradInput(x, dy, y, dx, N, C, S, mean, a, b, k, work, RELU);
  else gradInput(x, dy, y, dx, N, C, S, mean, a, b, k, work, SIGMOID);
}

@inline function gradInput(
  x: usize,
  dy: usize,
  y: usize,
  dx: usize,
  N: i32,
  C: i32,
  S: i32,
  mean: usize,
  a: usize,
  b: usize,
  k: usize,
  work: usize,
  act: i32,
): void {
  if (S == 1) {
    // Per-channel f32 constants, five rows of C: μ hi, μ lo, a, b, k.
    const cb = <usize>C << 2;
    for (let c = 0; c < C; c++) {
      const o = <usize>c << 2;
      const mu = f64At(mean, c);
      store<f32>(work + o, <f32>mu);
      store<f32>(work + cb + o, centerLo(mu));
      store<f32>(work + 2 * cb + o, <f32>f64At(a, c));
      store<f32>(work + 3 * cb + o, <f32>f64At(b, c));
      store<f32>(work + 4 * cb + o, <f32>f64At(k, c));
    }
    for (let n = 0; n < N; n++) {
      const row = <usize>(n * C) << 2;
      const xr = x + row;
      const gr = dy + row;
      const yr = y + row;
      const dr = dx + row;
      let c = 0;
      if (ASC_FEATURE_SIMD) {
        for (; c + 4 <= C; c += 4) {
          const o = <usize>c << 2;
          const w = work + o;
          const d = f32x4.sub(f32x4.sub(v128.load(xr + o), v128.load(w)), v128.load(w + cb));
          const t = f32x4.sub(f32x4.sub(loadGradLanes(gr + o, yr + o, act), v128.load(w + 2 * cb)), f32x4.mul(d, v128.load(w + 3 * cb)));
          v128.store(dr + o, f32x4.mul(t, v128.load(w + 4 * cb)));
        }
      }
      for (; c < C; c++) {
        const o = <usize>c << 2;
        const w = work + o;
        const d = load<f32>(xr + o) - load<f32>(w) - load<f32>(w + cb);
        store<f32>(dr + o, (loadGrad(gr + o, yr + o, act) - load<f32>(w + 2 * cb) - d * load<f32>(w + 3 * cb)) * load<f32>(w + 4 * cb));
      }
    }
    return;
  }
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const mu = f64At(mean, c);
      const hi = <f32>mu;
      const lo = centerLo(mu);
      const ac = <f32>f64At(a, c);
      const bc = <f32>f64At(b, c);
      const kc = <f32>f64At(k, c);
      const off = runOffset(n, C, c, S);
      const xr = x + off;
      const gr = dy + off;
      const yr = y + off;
      const dr = dx + off;
      let s = 0;
      if (ASC_FEATURE_SIMD) {
        const vhi = f32x4.splat(hi), vlo = f32x4.splat(lo);
        const va = f32x4.splat(ac), vb = f32x4.splat(bc), vk = f32x4.splat(kc);
        for (; s + 4 <= S; s += 4) {
          const o = <usize>s << 2;
          const d = f32x4.sub(f32x4.sub(v128.load(xr + o), vhi), vlo);
          const t = f32x4.sub(f32x4.sub(loadGradLanes(gr + o, yr + o, act), va), f32x4.mul(d, vb));
          v128.store(dr + o, f32x4.mul(t, vk));
        }
      }
      for (; s < S; s++) {
        const o = <usize>s << 2;
        const d = load<f32>(xr + o) - hi - lo;
        store<f32>(dr + o, (loadGrad(gr + o, yr + o, act) - ac - d * bc) * kc);
      }
    }
  }
}
