/**
 * copyRows, concat's strided block copy: every build of the wasm kernels
 * and the reference write exactly the blocks (the source's bits, NaN
 * included) and leave every other element of dst as it was — on the
 * JavaScript heap and in linear memory, below and above the size where the
 * kernel takes over from JavaScript — and refuse overlapping blocks.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { assertSame } from "./assert.js";
import { wasmBuilds } from "./builds.js";
import { randomF32, rng } from "./rng.js";
import { referenceBackend } from "../../src/backend/reference/index.js";
import type { Backend } from "../../src/backend/backend.js";
import type { WasmBackend } from "../../src/backend/wasm/index.js";

/** The expected dst: `before` with block r of src (at r·srcStride) at r·dstStride. */
function expected(before: Float32Array, src: Float32Array, rows: number, len: number, dstStride: number, srcStride: number): Float32Array {
  const out = before.slice();
  for (let r = 0; r < rows; r++) for (let j = 0; j < len; j++) out[r * dstStride + j] = src[r * srcStride + j];
  return out;
}

function check(k: Backend, inMemory: (n: number) => Float32Array): void {
  const next = rng(31);
  // (rows, len, dstStride, srcStride): concat's forward (dense src into strided dst), its backward (the reverse), both strided, and sizes on both sides of 4,096 copied elements.
  for (const [rows, len, dstStride, srcStride] of [
    [1, 1, 1, 1],
    [3, 5, 12, 5],
    [3, 5, 5, 12],
    [4, 7, 9, 11],
    [64, 784, 3136, 784],
    [64, 784, 784, 3136],
    [0, 4, 8, 4],
  ]) {
    const dn = Math.max(0, (rows - 1) * dstStride + len) + 3;
    const sn = Math.max(0, (rows - 1) * srcStride + len) + 2;
    const src = randomF32(sn, next, 4);
    src[0] = NaN;
    const before = randomF32(dn, next, 9);
    for (const where of ["heap", "linear memory"]) {
      const dst = where === "heap" ? new Float32Array(dn) : inMemory(dn);
      const from = where === "heap" ? src.slice() : inMemory(sn);
      dst.set(before);
      from.set(src);
      k.copyRows(dst, from, rows, len, dstStride, srcStride);
      assertSame(dst, expected(before, src, rows, len, dstStride, srcStride), `${k.name}: ${rows}×${len} at strides ${dstStride} ← ${srcStride} (${where})`);
    }
  }
}

describe("copyRows writes exactly its blocks", () => {
  it("reference backend", () => check(referenceBackend, (n) => new Float32Array(n)));
  it("every wasm build (relaxed SIMD, SIMD, scalar)", () => {
    for (const w of wasmBuilds() as WasmBackend[]) check(w, (n) => w.storage?.allocateFloat32(n) ?? new Float32Array(n));
  });
  it("the wasm backend refuses blocks that overlap and a dst too short for them", () => {
    const w = wasmBuilds()[0];
    assert.throws(() => w.copyRows(new Float32Array(40), new Float32Array(40), 3, 5, 4, 5), /overlap/);
    assert.throws(() => w.copyRows(new Float32Array(20), new Float32Array(40), 3, 5, 8, 5), /'dst' holds 20 elements/);
  });
});
