/**
 * The kernel table is the whole wasm glue: every kernel of the Backend
 * interface (as the reference backend implements it) has exactly one row,
 * each row's export exists in every build with the arity the row passes,
 * and the convolution and pooling kernels take their window as one struct.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { referenceBackend } from "../../src/backend/reference/index.js";
import { KERNELS } from "../../src/backend/wasm/kernelTable.js";
import { kernelsRelaxedSimdBase64 } from "../../src/backend/wasm/generated/kernels-relaxed-simd.js";
import { kernelsScalarBase64 } from "../../src/backend/wasm/generated/kernels-scalar.js";
import { kernelsSimdBase64 } from "../../src/backend/wasm/generated/kernels-simd.js";
import "./builds.js"; // V8's relaxed-SIMD flag, before the first compile

it("one row per Backend kernel, no more, no less", () => {
  const methods = Object.keys(referenceBackend).filter((m) => typeof (referenceBackend as unknown as Record<string, unknown>)[m] === "function").sort();
  const rows = KERNELS.map((r) => r.method).sort();
  assert.deepEqual(rows, methods);
});

it("each row's export takes the arguments the row passes, in every build (and a split's kernel those of its split)", () => {
  const builds = { "relaxed-simd": kernelsRelaxedSimdBase64, simd: kernelsSimdBase64, scalar: kernelsScalarBase64 };
  for (const [name, base64] of Object.entries(builds)) {
    const w = { name };
    const module = new WebAssembly.Module(Buffer.from(base64, "base64"));
    const exports = WebAssembly.Module.exports(module).map((e) => e.name);
    const instance = new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 1 }) } });
    const fn = instance.exports as Record<string, (...a: number[]) => unknown>;
    for (const row of KERNELS) {
      assert.ok(exports.includes(row.export), `${w.name}: no export ${row.export}`);
      assert.equal(fn[row.export].length, row.args.length, `${w.name}: ${row.export} takes ${fn[row.export].length} arguments; its row passes ${row.args.length}`);
      if (row.split) assert.equal(fn[row.split.kernel].length, row.split.args.length, `${w.name}: ${row.split.kernel}`);
    }
  }
});

it("convolution and pooling kernels take the window as one struct operand, not ten arguments", () => {
  const windowed = ["im2col", "col2im", "conv2dForward", "conv2dBackward", "maxPool2dForward"];
  for (const row of KERNELS.filter((r) => windowed.includes(r.method))) {
    assert.ok(row.args.includes("g") && !row.args.includes("kh"), row.method);
    assert.ok(row.operands.some((op) => op.name === "g" && op.from !== undefined), row.method);
  }
});
