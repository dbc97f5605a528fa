import { it } from "node:test";
import assert from "node:assert/strict";
import { getBackend } from "../../src/index.js";

it("the suite runs its float32 ops on the backend COVSHIFT_TEST_BACKEND names (without it: the default, a wasm build)", () => {
  const wanted = process.env.COVSHIFT_TEST_BACKEND;
  if (wanted === "reference") assert.equal(getBackend().name, "reference");
  else assert.match(getBackend().name, /^wasm-(relaxed-simd|simd|scalar)$/);
});
