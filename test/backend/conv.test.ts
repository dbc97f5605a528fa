/**
 * The convolution and pooling kernels of the wasm backend against the
 * reference backend (the oracle), for every build (relaxed SIMD, SIMD and scalar), on
 * awkward shapes: 1×1, 3×3 and 5×7 images, strides 1–3, padding 0–2,
 * non-square kernels, 1, 3 and 17 channels, and a few larger layers that
 * run the SIMD paths and several GEMM tiles.
 *
 * Tolerances, with u = 2⁻²⁴ the float32 unit roundoff: a float32 sum of k
 * terms errs by at most (k − 1)·u·Σ|terms| (plus one rounding of the result),
 * so each bound is (terms + 2)·u times the same computation on absolute
 * values (`mag`), which the reference computes. Data movement (im2col, max
 * pooling and its argmax) must agree exactly.
 */
import { describe, it } from "node:test";
import { assertSame } from "./assert.js";
import { assertAllClose } from "../allclose.js";
import { wasmBuilds } from "./builds.js";
import assert from "node:assert/strict";
import type { PoolWindows, Window2d } from "../../src/backend/backend.js";
import { referenceBackend as ref } from "../../src/backend/reference/index.js";
import { initWasmBackendSync, wasmSimdSupported, type WasmBackend } from "../../src/backend/wasm/index.js";
import { rng } from "./rng.js";

const u = 2 ** -24;


function randomF32(n: number, next: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = scale * (2 * next() - 1);
  return a;
}

const abs = (a: Float32Array): Float32Array => a.map(Math.abs);


/** The window of a kh×kw kernel with stride and padding over an H×W plane. */
function window(H: number, W: number, [kh, kw]: number[], [sh, sw]: number[], [ph, pw]: number[]): Window2d {
  return { H, W, kh, kw, sh, sw, ph, pw, OH: Math.floor((H + 2 * ph - kh) / sh) + 1, OW: Math.floor((W + 2 * pw - kw) / sw) + 1 };
}

interface ConvCase {
  N: number;
  C: number;
  O: number;
  g: Window2d;
  label: string;
}

function conv(N: number, C: number, O: number, H: number, W: number, k: number[], s: number[], p: number[], label: string): ConvCase {
  return { N, C, O, g: window(H, W, k, s, p), label: `${label}: N ${N}, ${C}→${O} channels, ${H}×${W}, ${k.join("×")} kernel, stride ${s}, padding ${p}` };
}

const convCases: ConvCase[] = [
  conv(1, 1, 1, 1, 1, [1, 1], [1, 1], [0, 0], "1×1 image, pointwise"),
  conv(2, 1, 3, 1, 1, [3, 3], [1, 1], [1, 1], "1×1 image, 3×3 kernel in the padding"),
  conv(2, 3, 4, 5, 7, [3, 3], [1, 1], [1, 1], "3×3 same"),
  conv(3, 17, 5, 5, 7, [3, 3], [2, 2], [1, 1], "stride 2"),
  conv(2, 3, 17, 5, 7, [2, 3], [2, 1], [1, 2], "non-square kernel, stride and padding"),
  conv(1, 17, 3, 3, 3, [3, 3], [1, 1], [2, 2], "padding 2: rows and columns wholly in the padding"),
  conv(2, 1, 3, 5, 7, [1, 3], [1, 3], [0, 2], "1×3 kernel, stride [1, 3]"),
  conv(2, 3, 4, 5, 7, [1, 1], [2, 2], [0, 0], "1×1 kernel with stride 2 (im2col subsamples)"),
  conv(3, 4, 5, 5, 7, [1, 1], [1, 1], [0, 0], "pointwise (no im2col)"),
  conv(2, 3, 2, 5, 7, [5, 7], [1, 1], [0, 0], "kernel as large as the image: a 1×1 output"),
  conv(2, 3, 6, 3, 3, [3, 1], [1, 1], [1, 0], "3×1 kernel on a 3×3 image"),
  conv(2, 3, 5, 19, 17, [3, 3], [2, 2], [1, 1], "stride 2 over rows long enough for the SIMD gather"),
  conv(2, 2, 3, 11, 13, [3, 3], [3, 3], [1, 1], "stride 3"),
  conv(4, 17, 33, 16, 16, [3, 3], [1, 1], [1, 1], "a layer of several GEMM tiles"),
  conv(2, 3, 24, 28, 28, [3, 3], [1, 1], [1, 1], "an Inception stem (reduced)"),
  conv(2, 20, 9, 7, 7, [1, 1], [1, 1], [0, 0], "pointwise on 7×7"),
  // Inception's: rows of 49 and 6 (the dot products' last 1 and 2 lanes), an odd number of rows of ∂W, several tiles and strips.
  conv(5, 13, 6, 7, 7, [1, 1], [1, 1], [0, 0], "pointwise, Inception-like: 13 → 6 on 7×7"),
  conv(3, 7, 22, 2, 3, [1, 1], [1, 1], [0, 0], "pointwise on 2×3 (6 columns)"),
  conv(4, 12, 10, 14, 14, [3, 3], [2, 2], [1, 1], "Inception's stride-2 3×3: 12 → 10 on 14×14"),
  conv(3, 5, 6, 14, 14, [1, 1], [1, 1], [0, 0], "pointwise on 14×14 (a last strip of 4 columns)"),
  // Images side by side in one product (rows not a multiple of 8): 40 images of 7×7 make passes of 21 and 19.
  conv(40, 3, 4, 14, 14, [3, 3], [2, 2], [1, 1], "stride 2 on 40 images: passes of several images side by side"),
];

const builds: WasmBackend[] = wasmBuilds();

for (const w of builds) {
  describe(`wasm backend (${w.variant} build): convolution kernels against the reference`, () => {
    it("im2col is exact (it moves values and writes zeros)", () => {
      const next = rng(1);
      for (const { C, g, label } of convCases) {
        const x = randomF32(C * g.H * g.W, next);
        const K = C * g.kh * g.kw;
        const c0 = new Float32Array(K * g.OH * g.OW);
        const c1 = new Float32Array(c0.length).fill(NaN);
        ref.im2col(x, C, g, c0);
        w.im2col(x, C, g, c1);
        assertSame(c1, c0, `cols (${label})`);
      }
    });

    it("col2im accumulates into dx: within (kh·kw + 1)·u·Σ|terms|", () => {
      const next = rng(2);
      for (const { C, g, label } of convCases) {
        const cols = randomF32(C * g.kh * g.kw * g.OH * g.OW, next);
        const dx = randomF32(C * g.H * g.W, next);
        const [d0, d1, mag] = [dx.slice(), dx.slice(), abs(dx)];
        ref.col2im(cols, C, g, d0);
        w.col2im(cols, C, g, d1);
        ref.col2im(abs(cols), C, g, mag);
        assertAllClose(d1, d0, { atol: (i) => (g.kh * g.kw + 1) * u * mag[i], rtol: 0 }, `dx (${label})`);
      }
    });

    it("conv2dForward with and without bias: within (K + 2)·u·(Σ|W||x| + |b|), K = C·kh·kw", () => {
      const next = rng(3);
      for (const { N, C, O, g, label } of convCases) {
        for (const withBias of [true, false]) {
          const K = C * g.kh * g.kw;
          const x = randomF32(N * C * g.H * g.W, next);
          const weight = randomF32(O * K, next);
          const bias = withBias ? randomF32(O, next) : null;
          const n = N * O * g.OH * g.OW;
          const [y0, y1, mag] = [new Float32Array(n), new Float32Array(n).fill(NaN), new Float32Array(n)];
          ref.conv2dForward(x, weight, bias, y0, N, C, O, g);
          w.conv2dForward(x, weight, bias, y1, N, C, O, g);
          ref.conv2dForward(abs(x), abs(weight), bias === null ? null : abs(bias), mag, N, C, O, g);
          assertAllClose(y1, y0, { atol: (i) => (K + 2) * u * mag[i] + 1e-30, rtol: 0 }, `y (${label}, bias ${withBias})`);
        }
      }
    });

    it("conv2dBackward: gx within (O + kh·kw + 2)·u·mag, gw within (N·L + 2)·u·mag, gb (f64 sums) within 2u·|gb| + 1e-12·Σ|gy|", () => {
      const next = rng(4);
      for (const { N, C, O, g, label } of convCases) {
        const K = C * g.kh * g.kw;
        const L = g.OH * g.OW;
        const x = randomF32(N * C * g.H * g.W, next);
        const weight = randomF32(O * K, next);
        const gy = randomF32(N * O * L, next);
        const out = () => [new Float32Array(x.length).fill(NaN), new Float32Array(weight.length).fill(NaN), new Float32Array(O).fill(NaN)] as const;
        const [gx0, gw0, gb0] = out();
        const [gx1, gw1, gb1] = out();
        const [mx, mw, mb] = out();
        ref.conv2dBackward(x, weight, gy, gx0, gw0, gb0, N, C, O, g);
        w.conv2dBackward(x, weight, gy, gx1, gw1, gb1, N, C, O, g);
        ref.conv2dBackward(abs(x), abs(weight), abs(gy), mx, mw, mb, N, C, O, g);
        assertAllClose(gx1, gx0, { atol: (i) => (O + g.kh * g.kw + 2) * u * mx[i] + 1e-30, rtol: 0 }, `gx (${label})`);
        assertAllClose(gw1, gw0, { atol: (i) => (N * L + 2) * u * mw[i] + 1e-30, rtol: 0 }, `gw (${label})`);
        assertAllClose(gb1, gb0, { atol: (i) => 1e-12 * mb[i], rtol: 2 * u }, `gb (${label})`);
      }
    });

    it("conv2dBackward computes only the gradients asked for, each the same as when all are asked for", () => {
      const next = rng(5);
      for (const { N, C, O, g, label } of [convCases[3], convCases[4], convCases[8]]) {
        const K = C * g.kh * g.kw;
        const x = randomF32(N * C * g.H * g.W, next);
        const weight = randomF32(O * K, next);
        const gy = randomF32(N * O * g.OH * g.OW, next);
        const [gx, gw, gb] = [new Float32Array(x.length), new Float32Array(weight.length), new Float32Array(O)];
        w.conv2dBackward(x, weight, gy, gx, gw, gb, N, C, O, g);
        const gxOnly = new Float32Array(x.length).fill(NaN);
        w.conv2dBackward(null, weight, gy, gxOnly, null, null, N, C, O, g);
        assertSame(gxOnly, gx, `gx alone, x = null (${label})`);
        const gwOnly = new Float32Array(weight.length).fill(NaN);
        // The weight is not read for gw alone: NaN there must not matter.
        w.conv2dBackward(x, new Float32Array(weight.length).fill(NaN), gy, null, gwOnly, null, N, C, O, g);
        assertSame(gwOnly, gw, `gw alone (${label})`);
        const gbOnly = new Float32Array(O).fill(NaN);
        w.conv2dBackward(null, weight, gy, null, null, gbOnly, N, C, O, g);
        assertSame(gbOnly, gb, `gb alone (${label})`);
      }
    });

    it("N = 0 writes a zero weight gradient and nothing else", () => {
      const g = window(5, 7, [3, 3], [1, 1], [1, 1]);
      const gw = new Float32Array(2 * 3 * 9).fill(NaN);
      const gb = new Float32Array(2).fill(NaN);
      w.conv2dBackward(new Float32Array(0), new Float32Array(gw.length), new Float32Array(0), new Float32Array(0), gw, gb, 0, 3, 2, g);
      assertSame(gw, new Float32Array(gw.length), "gw");
      assertSame(gb, new Float32Array(2), "gb");
    });
  });

  describe(`wasm backend (${w.variant} build): pooling kernels against the reference`, () => {
    const poolCases: [string, number, Window2d][] = [
      ["1×1 image, 1×1 window", 3, window(1, 1, [1, 1], [1, 1], [0, 0])],
      ["2×2, stride 2 on 5×7", 3, window(5, 7, [2, 2], [2, 2], [0, 0])],
      ["3×3, stride 2, padding 1 on 5×7", 17, window(5, 7, [3, 3], [2, 2], [1, 1])],
      ["3×3, stride 1, padding 1 on 5×7", 3, window(5, 7, [3, 3], [1, 1], [1, 1])],
      ["non-square 2×3, stride [1, 2], padding [1, 1] on 5×7", 3, window(5, 7, [2, 3], [1, 2], [1, 1])],
      ["3×3, stride 1, padding 1 on 3×3", 1, window(3, 3, [3, 3], [1, 1], [1, 1])],
      ["3×3, stride 3, padding 1 on 11×13", 3, window(11, 13, [3, 3], [3, 3], [1, 1])],
      ["4×4, stride 2, padding 2 on 9×9", 3, window(9, 9, [4, 4], [2, 2], [2, 2])],
      ["3×3, stride 2, padding 1 on 28×28 (Inception's downsampling)", 17, window(28, 28, [3, 3], [2, 2], [1, 1])],
      ["3×3, stride 1, padding 1 on 28×28 (Inception's pool branch)", 3, window(28, 28, [3, 3], [1, 1], [1, 1])],
      ["3×2, stride [2, 3], padding [1, 1] on 17×23", 5, window(17, 23, [3, 2], [2, 3], [1, 1])],
      // Inception's pool branch on its small planes, and the smallest planes of the 3×3 box sums (two rows: only edge rows).
      ["3×3, stride 1, padding 1 on 7×7", 5, window(7, 7, [3, 3], [1, 1], [1, 1])],
      ["3×3, stride 1, padding 1 on 4×4", 6, window(4, 4, [3, 3], [1, 1], [1, 1])],
      ["3×3, stride 1, padding 1 on 2×5", 3, window(2, 5, [3, 3], [1, 1], [1, 1])],
      ["3×3, stride 1, padding 1 on 2×2", 3, window(2, 2, [3, 3], [1, 1], [1, 1])],
    ];

    it("maxPool2dForward: values and argmax exactly equal, on data with ties, NaN, ±∞", () => {
      const next = rng(6);
      for (const [label, planes, g] of poolCases) {
        for (const data of ["random", "ties", "special"]) {
          const n = planes * g.H * g.W;
          const x = data === "ties" ? Float32Array.from({ length: n }, () => Math.floor(next() * 3)) : randomF32(n, next);
          if (data === "special") {
            const specials = [NaN, Infinity, -Infinity, -0, 0];
            for (let i = 0; i < n; i += 1 + Math.floor(next() * 7)) x[i] = specials[Math.floor(next() * specials.length)];
          }
          const ny = planes * g.OH * g.OW;
          const [y0, y1] = [new Float32Array(ny), new Float32Array(ny)];
          const [a0, a1] = [new Int32Array(ny), new Int32Array(ny).fill(-1)];
          ref.maxPool2dForward(x, y0, a0, planes, g);
          w.maxPool2dForward(x, y1, a1, planes, g);
          assertSame(y1, y0, `y (${label}, ${data})`);
          assertSame(a1, a0, `argmax (${label}, ${data})`);
        }
      }
    });

    it("maxPool2dForward: a window of −∞ reports its first in-range position, as the reference", () => {
      for (const g of [window(5, 7, [3, 3], [2, 2], [1, 1]), window(8, 16, [3, 3], [1, 1], [1, 1])]) {
        const x = new Float32Array(2 * g.H * g.W).fill(-Infinity);
        const ny = 2 * g.OH * g.OW;
        const [y0, y1, a0, a1] = [new Float32Array(ny), new Float32Array(ny), new Int32Array(ny), new Int32Array(ny)];
        ref.maxPool2dForward(x, y0, a0, 2, g);
        w.maxPool2dForward(x, y1, a1, 2, g);
        assertSame(y1, y0, "y");
        assertSame(a1, a0, "argmax");
      }
    });

    it("maxPool2dBackward: gx overwritten, each gradient routed to its argmax, sums within 2u·Σ|gy|", () => {
      const next = rng(7);
      for (const [label, planes, g] of poolCases) {
        const x = randomF32(planes * g.H * g.W, next);
        const ny = planes * g.OH * g.OW;
        const argmax = new Int32Array(ny);
        ref.maxPool2dForward(x, new Float32Array(ny), argmax, planes, g);
        const gy = randomF32(ny, next);
        const [gx0, gx1, mag] = [new Float32Array(x.length), new Float32Array(x.length).fill(NaN), new Float32Array(x.length)];
        ref.maxPool2dBackward(gy, argmax, gx0, planes, g);
        w.maxPool2dBackward(gy, argmax, gx1, planes, g);
        ref.maxPool2dBackward(abs(gy), argmax, mag, planes, g);
        assertAllClose(gx1, gx0, { atol: (i) => 2 * u * mag[i], rtol: 0 }, `gx (${label})`);
      }
    });

    it("maxPool2dBackward refuses an argmax outside the plane instead of writing into another plane", () => {
      const g = window(4, 4, [2, 2], [2, 2], [0, 0]);
      const argmax = Int32Array.from([0, 1, 4, 16]);
      assert.throws(() => w.maxPool2dBackward(new Float32Array(4), argmax, new Float32Array(16), 1, g), /argmax\[3\] = 16 is not an index in a 4×4 plane/);
    });

    /** The windows of avgPool2d (countIncludePad true or false) and adaptiveAvgPool2d, as the op layer builds them. */
    function avgWindows(g: Window2d, countIncludePad: boolean): PoolWindows {
      const table = (n: number, size: number, k: number, s: number, p: number) => {
        const t = new Int32Array(3 * n);
        for (let o = 0; o < n; o++) {
          const start = o * s - p;
          t[3 * o] = Math.max(0, start);
          t[3 * o + 1] = Math.min(size, start + k);
          t[3 * o + 2] = countIncludePad ? k : t[3 * o + 1] - t[3 * o];
        }
        return t;
      };
      return { H: g.H, W: g.W, OH: g.OH, OW: g.OW, rows: table(g.OH, g.H, g.kh, g.sh, g.ph), cols: table(g.OW, g.W, g.kw, g.sw, g.pw) };
    }
    function adaptiveWindows(H: number, W: number, OH: number, OW: number): PoolWindows {
      const table = (n: number, size: number) => {
        const t = new Int32Array(3 * n);
        for (let o = 0; o < n; o++) {
          t[3 * o] = Math.floor((o * size) / n);
          t[3 * o + 1] = Math.ceil(((o + 1) * size) / n);
          t[3 * o + 2] = t[3 * o + 1] - t[3 * o];
        }
        return t;
      };
      return { H, W, OH, OW, rows: table(OH, H), cols: table(OW, W) };
    }
    const avgCases: [string, number, PoolWindows][] = [
      ...poolCases.flatMap(([label, planes, g]): [string, number, PoolWindows][] => [
        [`${label}, countIncludePad`, planes, avgWindows(g, true)],
        [`${label}, count only the input`, planes, avgWindows(g, false)],
      ]),
      ["adaptive (5, 7) → (2, 3): overlapping windows", 3, adaptiveWindows(5, 7, 2, 3)],
      ["adaptive (5, 7) → (5, 7): the identity", 3, adaptiveWindows(5, 7, 5, 7)],
      ["adaptive (9, 9) → (4, 4)", 3, adaptiveWindows(9, 9, 4, 4)],
      ["global (7, 7) → (1, 1)", 17, adaptiveWindows(7, 7, 1, 1)],
      ["global (1, 1) → (1, 1)", 3, adaptiveWindows(1, 1, 1, 1)],
    ];
    const windowSize = (w: PoolWindows, p: number) => {
      const oh = Math.floor(p / w.OW) % w.OH;
      const ow = p % w.OW;
      return (w.rows[3 * oh + 1] - w.rows[3 * oh]) * (w.cols[3 * ow + 1] - w.cols[3 * ow]);
    };

    it("avgPool2dForward (regular, countIncludePad both ways, adaptive, global): within (window + 2)·u·Σ|x|/divisor", () => {
      const next = rng(8);
      for (const [label, planes, win] of avgCases) {
        const x = randomF32(planes * win.H * win.W, next);
        const ny = planes * win.OH * win.OW;
        const [y0, y1, mag] = [new Float32Array(ny), new Float32Array(ny).fill(NaN), new Float32Array(ny)];
        ref.avgPool2dForward(x, y0, planes, win);
        w.avgPool2dForward(x, y1, planes, win);
        ref.avgPool2dForward(abs(x), mag, planes, win);
        assertAllClose(y1, y0, { atol: (i) => (windowSize(win, i) + 2) * u * mag[i], rtol: 0 }, `y (${label})`);
      }
    });

    it("avgPool2dBackward: gx overwritten, within (overlapping windows + 2)·u·Σ|gy|/divisor", () => {
      const next = rng(9);
      for (const [label, planes, win] of avgCases) {
        const nx = planes * win.H * win.W;
        const gy = randomF32(planes * win.OH * win.OW, next);
        const [gx0, gx1, mag] = [new Float32Array(nx), new Float32Array(nx).fill(NaN), new Float32Array(nx)];
        ref.avgPool2dBackward(gy, gx0, planes, win);
        w.avgPool2dBackward(gy, gx1, planes, win);
        ref.avgPool2dBackward(abs(gy), mag, planes, win);
        // An input lies in at most ⌈k/s⌉² windows; every one of these cases has fewer than 16.
        assertAllClose(gx1, gx0, { atol: (i) => 18 * u * mag[i], rtol: 0 }, `gx (${label})`);
      }
    });
  });
}

describe("wasm backend: convolution and pooling argument checks", () => {
  const w = builds[0];
  const g = window(5, 7, [3, 3], [1, 1], [1, 1]);
  it("float64 storage is refused, naming the reference backend", () => {
    assert.throws(
      () => w.conv2dForward(new Float64Array(35), new Float64Array(9), null, new Float64Array(35), 1, 1, 1, g),
      (err: Error) => err instanceof TypeError && /float32 only/.test(err.message) && /reference backend/.test(err.message),
    );
    assert.throws(() => w.maxPool2dForward(new Float64Array(35), new Float64Array(35), new Int32Array(35), 1, g), TypeError);
    assert.throws(() => w.avgPool2dBackward(new Float64Array(35), new Float32Array(35), 1, { H: 5, W: 7, OH: 5, OW: 7, rows: new Int32Array(15), cols: new Int32Array(21) }), TypeError);
  });
  it("operands shorter than their shape are refused, naming the operand and the sizes", () => {
    assert.throws(
      () => w.conv2dForward(new Float32Array(2 * 3 * 35 - 1), new Float32Array(4 * 27), null, new Float32Array(2 * 4 * 35), 2, 3, 4, g),
      /conv2dForward: 'x' holds 209 elements; \(N, C, H, W\) = \(2, 3, 5, 7\) needs 210/,
    );
    assert.throws(
      () => w.conv2dBackward(new Float32Array(210), new Float32Array(4 * 27), new Float32Array(279), null, new Float32Array(108), null, 2, 3, 4, g),
      /'gy' holds 279 elements; \(N, O, OH, OW\) = \(2, 4, 5, 7\) needs 280/,
    );
    assert.throws(() => w.maxPool2dForward(new Float32Array(35), new Float32Array(35), new Int32Array(34), 1, g), /'argmax' holds 34 elements/);
  });
  it("a window whose output size does not follow from its geometry is refused", () => {
    assert.throws(() => w.im2col(new Float32Array(35), 1, { ...g, OW: 8 }, new Float32Array(9 * 40)), /inconsistent window/);
    assert.throws(() => w.maxPool2dForward(new Float32Array(35), new Float32Array(35), new Int32Array(35), 1, { ...g, sh: 0 }), /inconsistent window/);
  });
  it("pooling windows outside the plane or empty are refused", () => {
    const bad: PoolWindows = { H: 2, W: 2, OH: 1, OW: 1, rows: Int32Array.from([0, 3, 3]), cols: Int32Array.from([0, 2, 2]) };
    assert.throws(() => w.avgPool2dForward(new Float32Array(4), new Float32Array(1), 1, bad), /row window 0 is \[0, 3\) with divisor 3/);
    const empty: PoolWindows = { ...bad, rows: Int32Array.from([1, 1, 1]) };
    assert.throws(() => w.avgPool2dBackward(new Float32Array(1), new Float32Array(4), 1, empty), /windows must be non-empty/);
  });
  it("the weight gradient without the input is refused", () => {
    assert.throws(() => w.conv2dBackward(null, new Float32Array(9), new Float32Array(35), null, new Float32Array(9), null, 1, 1, 1, g), /needs the input x/);
  });
});
