/**
 * Preloaded with `node --import` to run the whole suite on one backend,
 * chosen explicitly (so that the default selection at `import "covshift"`
 * leaves it alone): COVSHIFT_TEST_BACKEND=reference selects the reference
 * backend (the oracle), =wasm the wasm backend's best build, for every
 * float32 op; float64 always runs on the reference backend. Without the
 * preload, a test gets what `import "covshift"` gives (the best wasm build).
 */
import { setBackend } from "../../src/backend/index.js";
import { enableRelaxedSimdInNode } from "../../src/backend/default.js";
import { initWasmBackendSync } from "../../src/backend/wasm/index.js";

const wanted = process.env.COVSHIFT_TEST_BACKEND;
if (wanted === "wasm") {
  enableRelaxedSimdInNode();
  initWasmBackendSync();
  setBackend("wasm");
} else if (wanted === "reference") {
  setBackend("reference");
} else if (wanted !== undefined) {
  throw new Error(`COVSHIFT_TEST_BACKEND must be "reference" or "wasm"; got "${wanted}"`);
}
