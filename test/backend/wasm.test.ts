/**
 * The wasm backend against the reference backend (the oracle), kernel by
 * kernel, for every build (relaxed SIMD, SIMD and scalar), on awkward shapes: 1, 3, 17,
 * 100, 784 — not multiples of the vector width 4 nor of the GEMM tile 4×8.
 *
 * Tolerances are per element and scale with what the float32 arithmetic can
 * promise for that element: u = 2⁻²⁴ is the float32 unit roundoff, and each
 * bound is a small multiple of u times the magnitude of the terms that make
 * up the result (not of the result alone, which may cancel).
 */
import { describe, it } from "node:test";
import { assertSame } from "./assert.js";
import { assertAllClose } from "../allclose.js";
import { wasmBuilds } from "./builds.js";
import assert from "node:assert/strict";
import { referenceBackend as ref } from "../../src/backend/reference/index.js";
import { getBackend, setBackend } from "../../src/backend/index.js";
import {
  initWasmBackend,
  initWasmBackendSync,
  wasmRelaxedSimdSupported,
  wasmSimdSupported,
  wasmVariant,
  type WasmBackend,
} from "../../src/backend/wasm/index.js";
import { randomF32, randomF64, rng } from "./rng.js";

/** float32 unit roundoff. */
const u = 2 ** -24;

const builds: WasmBackend[] = wasmBuilds();

describe("wasm backend: loading", () => {
  it("Node 20 runs WebAssembly SIMD and, with V8's flag, relaxed SIMD: the default build is the relaxed-SIMD one", async () => {
    assert.equal(wasmSimdSupported(), true);
    assert.equal(wasmRelaxedSimdSupported(), true);
    const w = await initWasmBackend();
    assert.equal(w.variant, "relaxed-simd");
    assert.equal(wasmVariant(), "relaxed-simd");
    assert.equal((await initWasmBackend({ relaxed: false })).variant, "simd");
    assert.throws(() => initWasmBackendSync({ simd: false, relaxed: true }), /cannot be combined/);
  });

  it("initWasmBackend registers the backend under the build's name and as 'wasm' for setBackend", async () => {
    const w = await initWasmBackend({ simd: false });
    assert.equal(w.name, "wasm-scalar");
    assert.equal(wasmVariant(), "scalar");
    const before = getBackend();
    setBackend("wasm");
    assert.equal(getBackend(), w);
    setBackend("reference");
    setBackend("wasm-scalar");
    assert.equal(getBackend(), w);
    setBackend(before.name);
  });

  it("float64 storage is refused with an error that names the reference backend", () => {
    for (const w of builds) {
      assert.throws(
        () => w.relu(new Float64Array(4), new Float64Array(4)),
        (err: Error) => err instanceof TypeError && /float32 only/.test(err.message) && /reference backend/.test(err.message),
      );
      assert.throws(() => w.gemm(false, false, 1, 1, 1, 1, new Float32Array(1), new Float64Array(1), 0, new Float32Array(1)), TypeError);
    }
  });

  it("operands shorter than their shape are refused, naming the operand and the sizes", () => {
    for (const w of builds) {
      assert.throws(
        () => w.gemm(false, false, 2, 3, 4, 1, new Float32Array(7), new Float32Array(12), 0, new Float32Array(6)),
        /'a' holds 7 elements; op\(A\) of 2×4 needs 8/,
      );
      assert.throws(
        () => w.softmaxCrossEntropy(new Float32Array(6), Int32Array.from([0, 3]), 2, 3, new Float32Array(6)),
        /target 3 of row 1 is not a class index in \[0, 3\)/,
      );
    }
  });
});

for (const w of builds) {
  describe(`wasm backend (${w.variant} build) against the reference`, () => {
    it("gemm, all four transposes, M, N ∈ {1, 3, 4, 17, 33}, K ∈ {1, 5, 100, 784}: within (K+2)·u·|alpha|·Σ|a||b| + 2u·|beta·c|", () => {
      const next = rng(1);
      const sizes = [1, 3, 4, 17, 33];
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const M of sizes) {
            for (const N of sizes) {
              for (const K of [1, 5, 100, 784]) {
                if (M * N * K > 200_000 && (M !== 17 || N !== 33)) continue; // keep the suite fast
                checkGemm(w, next, transA, transB, M, N, K, 1, 0);
              }
            }
          }
        }
      }
    });

    it("gemm at the Linear-layer shapes 60×784×100 (NT forward, NN dx, TN dW) and 64×112×784", () => {
      const next = rng(2);
      checkGemm(w, next, false, true, 60, 100, 784, 1, 0);
      checkGemm(w, next, false, false, 60, 784, 100, 1, 0);
      checkGemm(w, next, true, false, 100, 784, 60, 1, 0);
      checkGemm(w, next, false, false, 64, 112, 784, 1, 0);
    });

    it("gemm over more than one packed block (M > 128, N > 1024, K > 384) in all transposes", () => {
      const next = rng(3);
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          checkGemm(w, next, transA, transB, 131, 9, 390, 1, 0.5);
          checkGemm(w, next, transA, transB, 5, 1029, 390, 1, 0.5);
        }
      }
    });

    it("gemm alpha and beta: beta = 0 ignores NaN in C, beta = 1 accumulates, other values scale C", () => {
      const next = rng(4);
      for (const [alpha, beta] of [
        [1, 1],
        [-0.5, 0.25],
        [2, 0],
        [0.75, -1.5],
      ]) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            checkGemm(w, next, transA, transB, 17, 19, 23, alpha, beta);
            checkGemm(w, next, transA, transB, 8, 16, 300, alpha, beta);
          }
        }
      }
      // beta = 0 with NaN and Infinity in C: C is overwritten, not scaled.
      const c = new Float32Array(12).fill(NaN);
      c[3] = Infinity;
      w.gemm(false, false, 3, 4, 2, 1, Float32Array.from([1, 2, 3, 4, 5, 6]), Float32Array.from([1, 0, 0, 1, 0, 1, 1, 0]), 0, c);
      assertSame(c, [1, 2, 2, 1, 3, 4, 4, 3, 5, 6, 6, 5], "C after beta = 0");
    });

    it("gemm degenerate cases: K = 0 and alpha = 0 leave beta·C (zeros for beta = 0, even over NaN); M = 0 writes nothing", () => {
      const c = Float32Array.from([1, NaN, -2, 4]);
      w.gemm(false, false, 2, 2, 0, 1, new Float32Array(0), new Float32Array(0), 0.5, c);
      assertSame(c, [0.5, NaN, -1, 2], "K = 0, beta = 0.5");
      w.gemm(true, true, 2, 2, 3, 0, new Float32Array(6).fill(NaN), new Float32Array(6), 0, c);
      assertSame(c, [0, 0, 0, 0], "alpha = 0, beta = 0");
      const d = Float32Array.from([7]);
      w.gemm(false, false, 0, 1, 3, 1, new Float32Array(0), new Float32Array(3), 0, d);
      assertSame(d, [7], "M = 0");
    });

    it("channelMoments over (N, C, S) ∈ {(1,1,1), (3,5,1), (60,100,1), (7,3,17), (4,17,3), (2,3,49), (16,4,256)}: f64 sums, within 1e-12 of the data's scale", () => {
      const next = rng(5);
      for (const [N, C, S] of bnShapes) {
        const x = randomF32(N * C * S, next, 3, 0.5);
        const [m0, v0] = [new Float64Array(C), new Float64Array(C)];
        const [m1, v1] = [new Float64Array(C), new Float64Array(C).fill(NaN)];
        ref.channelMoments(x, N, C, S, m0, v0);
        w.channelMoments(x, N, C, S, m1, v1);
        // Both sum float32 data in double precision, in different orders: |x| ≤ 3.5, so 1e-12 is ~10⁴ ulps of double.
        assertAllClose(m1, m0, { atol: 1e-12, rtol: 0 }, `mean (${N}, ${C}, ${S})`);
        assertAllClose(v1, v0, { atol: 1e-12, rtol: 1e-12 }, `variance (${N}, ${C}, ${S})`); // 1e-12·(1 + σ²), σ² ≥ 0
      }
    });

    it("channelAffine: y = (x − center)·scale + shift within 4u·(|(x − center)·scale| + |shift|)", () => {
      const next = rng(6);
      for (const [N, C, S] of bnShapes) {
        const x = randomF32(N * C * S, next, 2);
        const center = randomF64(C, next, 1);
        const scale = randomF64(C, next, 3);
        const shift = randomF64(C, next, 1);
        const y0 = new Float32Array(x.length);
        const y1 = new Float32Array(x.length).fill(NaN);
        ref.channelAffine(x, y0, N, C, S, center, scale, shift);
        w.channelAffine(x, y1, N, C, S, center, scale, shift);
        const c = (i: number) => Math.floor(i / S) % C;
        assertAllClose(y1, y0, { atol: (i) => 4 * u * (Math.abs((x[i] - center[c(i)]) * scale[c(i)]) + Math.abs(shift[c(i)])), rtol: 0 }, `y (${N}, ${C}, ${S})`);
      }
    });

    it("channelGradSums: Σdy and Σdy·(x − μ) in f64, within 1e-12 of Σ|dy| and Σ|dy·(x − μ)|", () => {
      const next = rng(7);
      for (const [N, C, S] of bnShapes) {
        const x = randomF32(N * C * S, next, 2, 1);
        const dy = randomF32(N * C * S, next, 1);
        const mean = randomF64(C, next, 0.5, 1);
        const [s0, d0] = [new Float64Array(C), new Float64Array(C)];
        const [s1, d1] = [new Float64Array(C), new Float64Array(C)];
        ref.channelGradSums(x, dy, N, C, S, mean, s0, d0);
        w.channelGradSums(x, dy, N, C, S, mean, s1, d1);
        const m = N * S;
        // |dy| ≤ 1 and |x − μ| ≤ 4.5: sums of m terms bounded by m and 4.5m.
        assertAllClose(s1, s0, { atol: 1e-12 * m, rtol: 0 }, `sumDy (${N}, ${C}, ${S})`);
        assertAllClose(d1, d0, { atol: 1e-12 * 4.5 * m, rtol: 0 }, `sumDyXmu (${N}, ${C}, ${S})`);
      }
    });

    it("channelGradInput: dx = (dy − a − (x − μ)·b)·k within 6u·(|dy| + |a| + |(x − μ)·b|)·|k|", () => {
      const next = rng(8);
      for (const [N, C, S] of bnShapes) {
        const x = randomF32(N * C * S, next, 2, 1);
        const dy = randomF32(N * C * S, next, 1);
        const mean = randomF64(C, next, 0.5, 1);
        const a = randomF64(C, next, 0.1);
        const b = randomF64(C, next, 0.5);
        const k = randomF64(C, next, 2);
        const dx0 = new Float32Array(x.length);
        const dx1 = new Float32Array(x.length).fill(NaN);
        ref.channelGradInput(x, dy, dx0, N, C, S, mean, a, b, k);
        w.channelGradInput(x, dy, dx1, N, C, S, mean, a, b, k);
        const c = (i: number) => Math.floor(i / S) % C;
        assertAllClose(
          dx1,
          dx0,
          { atol: (i) => 6 * u * (Math.abs(dy[i]) + Math.abs(a[c(i)]) + Math.abs((x[i] - mean[c(i)]) * b[c(i)])) * Math.abs(k[c(i)]), rtol: 0 },
          `dx (${N}, ${C}, ${S})`,
        );
      }
    });

    it("a channel with mean 1e4 and std 1e-2 keeps its precision: moments to 1e-9 relative, x̂ = (x − μ)/σ to 1e-5", () => {
      const next = rng(9);
      const [N, C, S] = [32, 2, 64];
      const x = new Float32Array(N * C * S);
      for (let n = 0; n < N; n++) {
        for (let s = 0; s < S; s++) {
          // Channel 0: mean 1e4, std 1e-2 (Box–Muller); channel 1: ordinary data.
          const z = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
          x[(n * C + 0) * S + s] = 1e4 + 1e-2 * z;
          x[(n * C + 1) * S + s] = z;
        }
      }
      for (const [NN, CC, SS, data] of [
        [N, C, S, x],
        [N * S, C, 1, transposeToRows(x, N, C, S)], // the same data as (N·S, C): the S = 1 code path
      ] as const) {
        const [m0, v0, m1, v1] = [new Float64Array(C), new Float64Array(C), new Float64Array(C), new Float64Array(C)];
        ref.channelMoments(data, NN, CC, SS, m0, v0);
        w.channelMoments(data, NN, CC, SS, m1, v1);
        assertAllClose(m1, m0, { atol: 0, rtol: 1e-12 }, `mean, S = ${SS}`);
        assertAllClose(v1, v0, { atol: 0, rtol: 1e-9 }, `variance, S = ${SS}`); // σ² ≥ 0: 1e-9·σ²
        assertAllClose(Math.sqrt(v0[0]), 1e-2, { atol: 2e-3, rtol: 0 }, "channel 0's std (the data has std ≈ 1e-2)");

        // BN forward with γ = 1, β = 0: center = μ, scale = 1/σ, shift = 0.
        const scale = Float64Array.from(v0, (v) => 1 / Math.sqrt(v));
        const shift = new Float64Array(C);
        const y0 = new Float32Array(data.length);
        const y1 = new Float32Array(data.length);
        ref.channelAffine(data, y0, NN, CC, SS, m0, scale, shift);
        w.channelAffine(data, y1, NN, CC, SS, m0, scale, shift);
        // x̂ is O(1); float32 x − μ is exact near μ, so the error is a few ulps of x̂.
        assertAllClose(y1, y0, { atol: 1e-5, rtol: 0 }, `x̂, S = ${SS}`);

        // The folded form x·scale + (shift − μ·scale) in float32 cannot do this: x·scale ≈ 1e6 has
        // ulps of 0.06, so x̂ of channel 0 comes out off by several hundredths.
        let foldedError = 0;
        for (let i = 0; i < data.length; i++) {
          if (Math.floor(i / SS) % CC !== 0) continue;
          const folded = Math.fround(Math.fround(data[i] * Math.fround(scale[0])) + Math.fround(-m0[0] * scale[0]));
          foldedError = Math.max(foldedError, Math.abs(folded - y0[i]));
        }
        assert.ok(foldedError > 1e-2, `the folded form is off by only ${foldedError}`);
      }
    });

    it("addRowVector is exact (a float32 sum is correctly rounded either way), also in place", () => {
      const next = rng(10);
      for (const [rows, cols] of matrixShapes) {
        const x = randomF32(rows * cols, next, 10);
        const bias = randomF32(cols, next, 1);
        const y0 = new Float32Array(x.length);
        const y1 = new Float32Array(x.length);
        ref.addRowVector(x, bias, y0, rows, cols);
        w.addRowVector(x, bias, y1, rows, cols);
        assertSame(y1, y0, `y (${rows}×${cols})`);
        w.addRowVector(x, bias, x, rows, cols);
        assertSame(x, y0, `in place (${rows}×${cols})`);
      }
    });

    it("sumRows accumulates in f64: within u·|out| + 1e-12·Σ|g|", () => {
      const next = rng(11);
      for (const [rows, cols] of matrixShapes) {
        const g = randomF32(rows * cols, next, 1);
        const o0 = new Float32Array(cols);
        const o1 = new Float32Array(cols).fill(NaN);
        ref.sumRows(g, rows, cols, o0);
        w.sumRows(g, rows, cols, o1);
        assertAllClose(o1, o0, { atol: 1e-12 * rows, rtol: u }, `out (${rows}×${cols})`);
      }
    });

    it("sigmoid within 4e-7 relative (+ 2e-45 for subnormal results), saturating at ±∞, NaN → NaN", () => {
      const next = rng(12);
      const special = [0, -0, 1e-8, -1e-8, 0.5, -0.5, 15, -15, 20, -20, 87, -87, 88.7, -88.7, 90, -90, 103, -103, 104, -104, 200, -200, Infinity, -Infinity, NaN];
      for (const n of [1, 3, 17, 100, 784]) {
        const x = randomF32(n, next, 30);
        x.set(special.slice(0, n));
        const y0 = new Float32Array(n);
        const y1 = new Float32Array(n);
        ref.sigmoid(x, y0);
        w.sigmoid(x, y1);
        assertAllClose(y1, y0, { atol: 2e-45, rtol: 4e-7, equalNan: true }, `sigmoid (n = ${n})`); // NaN → NaN
      }
      const y = new Float32Array(4);
      w.sigmoid(Float32Array.from([Infinity, -Infinity, 0, NaN]), y);
      assert.deepEqual([y[0], y[1], y[2]], [1, 0, 0.5]);
      assert.ok(Number.isNaN(y[3]));
    });

    it("sigmoidBackward within 3u·|dy·y·(1 − y)| (three float32 roundings against one)", () => {
      const next = rng(13);
      for (const n of [1, 3, 17, 100, 784]) {
        const y = Float32Array.from({ length: n }, () => next());
        const dy = randomF32(n, next, 2);
        const d0 = new Float32Array(n);
        const d1 = new Float32Array(n);
        ref.sigmoidBackward(y, dy, d0);
        w.sigmoidBackward(y, dy, d1);
        assertAllClose(d1, d0, { atol: 0, rtol: 3 * u }, `dx (n = ${n})`);
      }
    });

    it("relu and reluBackward are exact, NaN → 0 and −0 → +0 as in `x > 0 ? x : 0`", () => {
      const next = rng(14);
      for (const n of [1, 3, 17, 100, 784]) {
        const x = randomF32(n, next, 1);
        x.set([NaN, -0, 0, Infinity, -Infinity].slice(0, n));
        const dy = randomF32(n, next, 1);
        const [y0, y1, d0, d1] = [new Float32Array(n), new Float32Array(n), new Float32Array(n), new Float32Array(n)];
        ref.relu(x, y0);
        w.relu(x, y1);
        assertSame(y1, y0, `relu (n = ${n})`);
        ref.reluBackward(x, dy, d0);
        w.reluBackward(x, dy, d1);
        assertSame(d1, d0, `reluBackward (n = ${n})`);
      }
    });

    it("softmaxCrossEntropy in f64: probabilities within u·p + 1e-30, loss within 1e-12 relative", () => {
      const next = rng(15);
      for (const [N, C] of [
        [1, 1],
        [1, 10],
        [60, 10],
        [7, 3],
        [5, 1000],
      ]) {
        const logits = randomF32(N * C, next, 20);
        const targets = Int32Array.from({ length: N }, () => Math.floor(next() * C));
        const [p0, p1] = [new Float32Array(N * C), new Float32Array(N * C)];
        const l0 = ref.softmaxCrossEntropy(logits, targets, N, C, p0);
        const l1 = w.softmaxCrossEntropy(logits, targets, N, C, p1);
        assertAllClose(p1, p0, { atol: 1e-30, rtol: u }, `probs (${N}, ${C})`); // probabilities ≥ 0: u·p + 1e-30
        assertAllClose(l1, l0, { atol: 1e-300, rtol: 1e-12 }, `loss (${N}, ${C})`);
      }
    });

    it("sgdStep (PyTorch semantics: weight decay, momentum, dampening, Nesterov, first step) within 4u of the magnitudes involved", () => {
      const next = rng(16);
      const configs = [
        { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, velocity: false },
        { momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false, velocity: true },
        { momentum: 0.9, dampening: 0.1, weightDecay: 5e-4, nesterov: false, velocity: true },
        { momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: true, velocity: true },
      ];
      for (const cfg of configs) {
        for (const n of [1, 3, 17, 100, 784]) {
          const p0 = randomF32(n, next, 1);
          const g = randomF32(n, next, 0.1);
          const v0 = cfg.velocity ? randomF32(n, next, 0.1) : null;
          const [p1, v1] = [p0.slice(), v0 === null ? null : v0.slice()];
          for (const firstStep of [true, false]) {
            const vBefore = v0 === null ? null : v0.slice();
            const pBefore = p0.slice();
            ref.sgdStep(p0, g, v0, firstStep, 0.1, cfg.momentum, cfg.dampening, cfg.weightDecay, cfg.nesterov);
            w.sgdStep(p1, g, v1, firstStep, 0.1, cfg.momentum, cfg.dampening, cfg.weightDecay, cfg.nesterov);
            // Every term is at most |p| + |g| + |v| (lr, μ ≤ 1), each float32 op rounds once.
            const mag = (i: number) => Math.abs(pBefore[i]) + Math.abs(g[i]) + (vBefore === null ? 0 : Math.abs(vBefore[i]));
            assertAllClose(p1, p0, { atol: (i) => 4 * u * mag(i), rtol: 0 }, `param (${JSON.stringify(cfg)}, n = ${n}, first = ${firstStep})`);
            if (v0 !== null && v1 !== null) assertAllClose(v1, v0, { atol: (i) => 4 * u * mag(i), rtol: 0 }, `velocity (n = ${n}, first = ${firstStep})`);
            // Keep both runs on the same inputs for the next step.
            p1.set(p0);
            if (v0 !== null && v1 !== null) v1.set(v0);
          }
        }
      }
    });

    it("sgdStepChecked: sgdStep's bits written to newParam/newVelocity (inputs untouched), the reference's bits, and the same count of non-finite gradients and results", () => {
      const next = rng(18);
      const configs = [
        { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
        { momentum: 0.9, dampening: 0, weightDecay: 1e-4, nesterov: false },
        { momentum: 0.9, dampening: 0.1, weightDecay: 5e-4, nesterov: false },
        { momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: true },
      ];
      for (const cfg of configs) {
        const hasV = cfg.momentum !== 0;
        for (const n of [1, 3, 17, 100, 784]) {
          for (const firstStep of hasV ? [true, false] : [false]) {
            const p = randomF32(n, next, 1);
            const g = randomF32(n, next, 0.1);
            const v = hasV && !firstStep ? randomF32(n, next, 0.1) : null;
            const [pIn, gIn, vIn] = [p.slice(), g.slice(), v?.slice()];
            const args = [firstStep, 0.1, cfg.momentum, cfg.dampening, cfg.weightDecay, cfg.nesterov] as const;
            const [refP, refV] = [new Float32Array(n), hasV ? new Float32Array(n) : null];
            const [wP, wV] = [new Float32Array(n), hasV ? new Float32Array(n) : null];
            const what = `${JSON.stringify(cfg)}, n = ${n}, first = ${firstStep}`;
            assert.equal(ref.sgdStepChecked(p, g, v, refP, refV, ...args), 0, what);
            assert.equal(w.sgdStepChecked(p, g, v, wP, wV, ...args), 0, what);
            assertSame(p, pIn, `param is only read (${what})`);
            assertSame(g, gIn, `grad is only read (${what})`);
            if (v !== null) assertSame(v, vIn!, `velocity is only read (${what})`);
            // The bits of the in-place kernel on the same inputs: the optimizer's results do not change.
            const [inPlaceP, inPlaceV] = [p.slice(), hasV ? (v ?? new Float32Array(n)).slice() : null];
            w.sgdStep(inPlaceP, g, inPlaceV, firstStep, ...args.slice(1) as [number, number, number, number, boolean]);
            assertSame(wP, inPlaceP, `newParam against sgdStep (${what})`);
            if (wV !== null) assertSame(wV, inPlaceV!, `newVelocity against sgdStep (${what})`);
            // The reference rounds every operation to float32: the same bits as the wasm kernel.
            assertSame(wP, refP, `newParam against the reference (${what})`);
            if (wV !== null) assertSame(wV, refV!, `newVelocity against the reference (${what})`);
          }
        }
      }
      // Non-finite gradients, and finite ones whose update overflows in the parameter or only in the buffer, in the SIMD body and the tail.
      for (const n of [1, 5, 17]) {
        const p = new Float32Array(n).fill(1);
        const g = new Float32Array(n).fill(0.5);
        const v = new Float32Array(n).fill(0.25);
        g[0] = NaN;
        if (n > 1) g[n - 1] = -Infinity;
        if (n > 4) g[2] = 3e38; // d finite; μ·v + d finite; p − lr·d overflows only with lr 10
        if (n > 16) v[9] = 3.4e38; // μ·v + d overflows in the buffer (μ = 1, d = 3e38 below)
        if (n > 16) g[9] = 3e38;
        for (const [lr, momentum] of [[0.1, 0], [10, 0], [0.1, 1], [10, 1]]) {
          const outs = () => [new Float32Array(n), momentum === 0 ? null : new Float32Array(n)] as const;
          const [rp, rv] = outs();
          const [wp, wv] = outs();
          const vIn = momentum === 0 ? null : v;
          const expected = ref.sgdStepChecked(p, g, vIn, rp, rv, false, lr, momentum, 0, 0, false);
          assert.equal(w.sgdStepChecked(p, g, vIn, wp, wv, false, lr, momentum, 0, 0, false), expected, `n = ${n}, lr ${lr}, momentum ${momentum}`);
          assert.ok(expected >= (n > 1 ? 2 : 1), `n = ${n}: the non-finite gradients are counted`);
          // The same bits, NaN and ±∞ included: so SGD names the same first offending entry on either backend.
          assertSame(wp, rp, `newParam with overflows (n = ${n}, lr ${lr}, momentum ${momentum})`);
          if (wv !== null) assertSame(wv, rv!, `newVelocity with overflows (n = ${n}, lr ${lr}, momentum ${momentum})`);
        }
      }
    });

    it("addInPlace is exact (one correctly rounded float32 sum per element) on 1, 3, 17, 100, 784 and 10⁵ elements", () => {
      const next = rng(21);
      for (const n of [1, 3, 17, 100, 784, 100_000]) {
        const src = randomF32(n, next, 5);
        const d0 = randomF32(n, next, 5);
        const d1 = d0.slice();
        ref.addInPlace(d0, src);
        w.addInPlace(d1, src);
        assertSame(d1, d0, `dst (${n} elements)`);
      }
    });

    it("fill and copy set every element (the value rounded to float32, the source's bits), on the JavaScript heap and in linear memory, below and above the lengths where the kernel takes over from JavaScript", () => {
      const next = rng(23);
      for (const n of [1, 3, 17, 100, 2047, 2048, 4095, 4096, 10_001]) {
        const src = randomF32(n + 3, next, 5);
        src[n >> 1] = NaN; // copied as bits
        const inMemory = (k: number) => w.storage?.allocateFloat32(k) ?? new Float32Array(k);
        for (const dst of [new Float32Array(n), inMemory(n)]) {
          const from = dst.length === n && w.storage?.owns(dst) ? inMemory(n + 3) : src.slice();
          from.set(src);
          w.copy(dst, from);
          assertSame(dst, src.subarray(0, n), `copy (${n} elements${w.storage?.owns(dst) ? ", linear memory" : ""})`);
          w.fill(dst, 0.1);
          assert.ok(dst.every((v) => v === Math.fround(0.1)), `fill(0.1) (${n} elements)`);
          w.fill(dst, 0);
          assert.ok(dst.every((v) => Object.is(v, 0)), `fill(0) (${n} elements)`);
          w.fill(dst, -0);
          assert.ok(dst.every((v) => Object.is(v, -0)), `fill(-0) (${n} elements)`);
        }
      }
      assert.throws(() => w.copy(new Float32Array(5), new Float32Array(4)), /'src' holds 4 elements; 5 elements, as dst needs 5/);
    });

    it("countNonFinite counts NaN, +∞ and −∞ (and no finite value: not the largest float32, not subnormals) on awkward lengths", () => {
      const specials = [NaN, Infinity, -Infinity, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -0, 0];
      for (const n of [1, 3, 4, 17, 100, 784]) {
        const x = new Float32Array(n);
        for (let i = 0; i < n; i++) x[i] = specials[(i * 5 + n) % specials.length];
        assert.equal(w.countNonFinite(x), ref.countNonFinite(x), `${n} elements`);
      }
      const x = new Float32Array(1001);
      assert.equal(w.countNonFinite(x), 0);
      x[1000] = NaN; // in the scalar tail
      x[3] = -Infinity; // in the SIMD body
      assert.equal(w.countNonFinite(x), 2);
    });

    it("the scratch arena grows for a large call and stays correct for small calls after it", () => {
      const next = rng(17);
      checkGemm(w, next, false, false, 3, 5, 7, 1, 0);
      checkGemm(w, next, false, true, 300, 200, 500, 1, 0.5);
      checkGemm(w, next, false, false, 3, 5, 7, 1, 0);
      const x = randomF32(2_000_000, next, 1);
      const [y0, y1] = [new Float32Array(x.length), new Float32Array(x.length)];
      ref.relu(x, y0);
      w.relu(x, y1);
      assertSame(y1, y0, "relu over 2·10⁶ elements");
    });
  });
}

const bnShapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 1],
  [60, 100, 1],
  [7, 3, 17],
  [4, 17, 3],
  [2, 3, 49],
  [3, 2, 14],
  [16, 4, 256],
];

const matrixShapes: [number, number][] = [
  [1, 1],
  [3, 17],
  [60, 100],
  [17, 3],
  [5, 784],
];

/** One gemm against the reference, with the error bound of float32 accumulation. */
function checkGemm(
  w: WasmBackend,
  next: () => number,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  beta: number,
): void {
  const a = randomF32(M * K, next, 1);
  const b = randomF32(K * N, next, 1);
  const c = randomF32(M * N, next, 1);
  if (beta === 0) c.fill(NaN);
  const c0 = c.slice();
  const c1 = c.slice();
  ref.gemm(transA, transB, M, N, K, alpha, a, b, beta, c0);
  w.gemm(transA, transB, M, N, K, alpha, a, b, beta, c1);
  // Σ_k |a_ik|·|b_kj|: the scale of the terms the sum adds up.
  const mag = new Float32Array(M * N);
  ref.gemm(transA, transB, M, N, K, Math.abs(alpha), a.map(Math.abs), b.map(Math.abs), 0, mag);
  // A float32 sum of K products errs by at most (K + 1)·u of Σ|terms| (a bound, seldom approached);
  // the result and the beta·C term round once more each.
  const tol = (i: number) => (K + 2) * u * mag[i] + (beta === 0 ? 0 : 2 * u * Math.abs(beta * c[i])) + 1e-30;
  assertAllClose(c1, c0, { atol: tol, rtol: 0, equalNan: true }, `gemm ${transA ? "T" : "N"}${transB ? "T" : "N"} ${M}×${N}×${K} alpha=${alpha} beta=${beta}`);
}

/** (N, C, S) data laid out as (N·S, C): row (n, s) holds the C channels of one position. */
function transposeToRows(x: Float32Array, N: number, C: number, S: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < S; s++) out[(n * S + s) * C + c] = x[(n * C + c) * S + s];
  return out;
}
