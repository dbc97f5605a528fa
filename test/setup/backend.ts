/**
 * Preloaded with `node --import` to run the whole suite on another backend:
 * COVSHIFT_TEST_BACKEND=wasm selects the wasm backend (its best build) for
 * every float32 op; float64 always runs on the reference backend.
 */
import { setBackend } from "../../src/backend/index.js";
import { enableRelaxedSimd } from "../../src/experiments/backend.js";
import { initWasmBackendSync } from "../../src/backend/wasm/index.js";

if (process.env.COVSHIFT_TEST_BACKEND === "wasm") {
  enableRelaxedSimd();
  initWasmBackendSync();
  setBackend("wasm");
}
