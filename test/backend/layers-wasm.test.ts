/**
 * The convolution and pooling layers with the wasm backend selected, against
 * the same layers on the reference backend: forward and backward through
 * ops.conv2d, maxPool2d, avgPool2d, adaptiveAvgPool2d and a small
 * Inception-like stack (Conv2d → BatchNorm2d → ReLU → MaxPool2d → 1×1 Conv2d
 * → AvgPool2d → GlobalAvgPool2d), in float32, on the SIMD and the scalar build.
 *
 * float32 tolerance: |wasm − reference| ≤ 1e-5·(max |reference| over the
 * tensor) + 1e-5·|reference| per element — the two backends sum in different
 * orders (float32 GEMM against double accumulation), worth a few units of
 * 2⁻²⁴ times the sums' magnitudes here. Max pooling moves values, so its
 * output and the routing of its gradient agree exactly.
 */
import { after, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, getBackend, nn, ops, registerBackend, setBackend, Tensor } from "../../src/index.js";
import type { WasmBackend } from "../../src/backend/wasm/index.js";
import { wasmBuilds } from "./builds.js";
import { randn } from "../core/helpers.js";
import { assertAllClose, maxAbs } from "../allclose.js";

const initial = getBackend().name;
after(() => setBackend(initial));

/** The build under test: registered as "wasm" just before each use (both builds register under that name). */
let build: WasmBackend;
function use(backend: "reference" | "wasm"): void {
  if (backend === "wasm") registerBackend(build);
  setBackend(backend);
  if (backend === "wasm") assert.equal(getBackend(), build);
}

/** Forward and backward of `f` on fresh copies of `inputs` (all requiring grad) under `backend`: the output and every gradient. */
function run(backend: "reference" | "wasm", f: (t: Tensor[]) => Tensor, inputs: Tensor[], seed = 5): Float32Array[] {
  use(backend);
  const copies = inputs.map((t) => new Tensor(t.data.slice(), t.shape, true));
  const y = f(copies);
  const g = randn([...y.shape], new Generator(seed), { dtype: "float32" });
  y.backward(g);
  return [y.data as Float32Array, ...copies.map((t) => t.grad!.data as Float32Array)];
}

/** The wasm kernels against the reference, entry by entry: |Δ| ≤ 1e-5·max|ref| + 1e-5·|ref|. */
const f32OfReference = (ref: Float32Array) => ({ atol: 1e-5 * maxAbs(ref), rtol: 1e-5 });

function compare(label: string, f: (t: Tensor[]) => Tensor, inputs: Tensor[], exact = false): void {
  const expected = run("reference", f, inputs);
  const actual = run("wasm", f, inputs);
  const names = ["output", ...inputs.map((_, i) => `gradient of input ${i}`)];
  for (let i = 0; i < expected.length; i++) {
    if (exact) assert.deepEqual(actual[i], expected[i], `${label}: ${names[i]}`);
    else assertAllClose(actual[i], expected[i], f32OfReference(expected[i]), `${label}: ${names[i]}`);
  }
}

const builds = wasmBuilds();
for (const b of builds) {
  describe(`layers on the wasm backend (${b.variant} build) against the reference backend, float32`, () => {
    beforeEach(() => {
      build = b;
    });
    const gen = new Generator(2024);
    const R = (shape: number[]) => randn(shape, gen, { dtype: "float32" });

    const convs: [string, number[], number[], { stride: [number, number]; padding: [number, number] }, boolean][] = [
      ["3×3, stride 1, padding 1 on 5×7, bias", [2, 3, 5, 7], [4, 3, 3, 3], { stride: [1, 1], padding: [1, 1] }, true],
      ["3×3, stride 2, padding 1, 17 channels", [3, 17, 5, 7], [5, 17, 3, 3], { stride: [2, 2], padding: [1, 1] }, true],
      ["non-square 2×3, stride [2, 1], padding [1, 2], no bias", [2, 3, 5, 7], [17, 3, 2, 3], { stride: [2, 1], padding: [1, 2] }, false],
      ["3×3 on a 1×1 image, padding 1", [2, 1, 1, 1], [3, 1, 3, 3], { stride: [1, 1], padding: [1, 1] }, true],
      ["pointwise 1×1", [3, 4, 5, 7], [5, 4, 1, 1], { stride: [1, 1], padding: [0, 0] }, true],
      ["32→32 3×3 on 16×16 (the benchmark layer, 4 images)", [4, 32, 16, 16], [32, 32, 3, 3], { stride: [1, 1], padding: [1, 1] }, false],
    ];
    for (const [label, xs, ws, opts, bias] of convs) {
      it(`conv2d ${label}: output and the gradients of input, weight${bias ? ", bias" : ""}`, () => {
        const inputs = [R(xs), R(ws)];
        if (bias) inputs.push(R([ws[0]]));
        compare(label, ([x, w, b]) => ops.conv2d(x, w, b ?? null, opts), inputs);
      });
    }

    it("maxPool2d 3×3, stride 2, padding 1 and 2×3, stride [1, 2], padding [1, 1]: output and routed gradient exactly equal", () => {
      compare("maxPool2d 3/2/1", ([x]) => ops.maxPool2d(x, 3, { stride: 2, padding: 1 }), [R([2, 17, 9, 11])], true);
      compare("maxPool2d 2×3", ([x]) => ops.maxPool2d(x, [2, 3], { stride: [1, 2], padding: [1, 1] }), [R([2, 3, 5, 7])], true);
    });

    it("avgPool2d with and without countIncludePad, adaptiveAvgPool2d and global average pooling", () => {
      for (const countIncludePad of [true, false]) {
        compare(`avgPool2d 3/1/1 ${countIncludePad}`, ([x]) => ops.avgPool2d(x, 3, { stride: 1, padding: 1, countIncludePad }), [R([2, 3, 5, 7])]);
        compare(`avgPool2d 2×3 ${countIncludePad}`, ([x]) => ops.avgPool2d(x, [2, 3], { stride: [1, 2], padding: [1, 1], countIncludePad }), [R([2, 17, 5, 7])]);
      }
      compare("adaptiveAvgPool2d (5, 7) → (2, 3)", ([x]) => ops.adaptiveAvgPool2d(x, [2, 3]), [R([2, 3, 5, 7])]);
      compare("global average pooling", ([x]) => ops.adaptiveAvgPool2d(x, 1), [R([3, 17, 7, 7])]);
    });

    it("an Inception-like stack: Conv2d → BatchNorm2d → ReLU → MaxPool2d → 1×1 Conv2d → AvgPool2d → GlobalAvgPool2d → Flatten", () => {
      const g = new Generator(7);
      const model = new nn.Sequential(
        new nn.Conv2d(3, 8, 3, { padding: 1, bias: false, generator: g }),
        new nn.BatchNorm2d(8),
        new nn.ReLU(),
        new nn.MaxPool2d(3, { stride: 2, padding: 1 }),
        new nn.Conv2d(8, 6, 1, { generator: g }),
        new nn.AvgPool2d(3, { stride: 1, padding: 1 }),
        new nn.GlobalAvgPool2d(),
        new nn.Flatten(),
      );
      const x = R([4, 3, 12, 10]);
      const results = (["reference", "wasm"] as const).map((backend) => {
        use(backend);
        for (const p of model.parameters()) p.grad = null;
        const xi = new Tensor(x.data.slice(), x.shape, true);
        const y = model.forward(xi);
        y.backward(randn([...y.shape], new Generator(9), { dtype: "float32" }));
        // Copies: the next pass drops these gradients (p.grad = null), and the backward pass after that writes into their storage.
        return [y.data, xi.grad!.data, ...model.parameters().map((p) => p.grad!.data.slice())] as Float32Array[];
      });
      const [expected, actual] = results;
      for (let i = 0; i < expected.length; i++) assertAllClose(actual[i], expected[i], f32OfReference(expected[i]), `tensor ${i} (output, input gradient, parameter gradients)`);
    });

    it("float64 tensors still run on the reference backend while wasm is selected: bit-identical results", () => {
      const x64 = randn([2, 3, 5, 7], gen);
      const w64 = randn([4, 3, 3, 3], gen);
      const f = ([x, w]: Tensor[]) => ops.maxPool2d(ops.conv2d(x, w, null, { stride: 1, padding: 1 }), 3, { stride: 2, padding: 1 });
      const expected = (() => {
        use("reference");
        const t = [x64, w64].map((v) => new Tensor(v.data.slice(), v.shape, true));
        const y = f(t);
        y.backward(new Float64Array(y.size).fill(1));
        return [y.data, t[0].grad!.data, t[1].grad!.data];
      })();
      use("wasm");
      const t = [x64, w64].map((v) => new Tensor(v.data.slice(), v.shape, true));
      const y = f(t);
      y.backward(new Float64Array(y.size).fill(1));
      assert.equal(y.dtype, "float64");
      assert.deepEqual([y.data, t[0].grad!.data, t[1].grad!.data], expected);
    });
  });
}
