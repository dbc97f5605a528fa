import { it } from "node:test";
import assert from "node:assert/strict";
import { getBackend } from "../../src/index.js";

it("the suite runs its float32 ops on the backend COVSHIFT_TEST_BACKEND names (reference when unset)", () => {
  assert.equal(getBackend().name, process.env.COVSHIFT_TEST_BACKEND ?? "reference");
});
