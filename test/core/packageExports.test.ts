/**
 * The package's entry points, imported by name as a user would: the core
 * ("covshift"), the wasm backend ("covshift/wasm"), the Node thread starter
 * ("covshift/node") and the browser one ("covshift/browser") resolve and
 * export what the README shows.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";

describe("package entry points", () => {
  it("covshift, covshift/wasm, covshift/node and covshift/browser resolve by name and export the documented functions", async () => {
    const core = await import("covshift");
    assert.equal(typeof core.scope, "function");
    assert.equal(typeof core.setBackend, "function");
    const wasm = await import("covshift/wasm");
    assert.equal(typeof wasm.initWasmBackend, "function");
    assert.equal(typeof wasm.wasmSharedMemorySupported, "function");
    const node = await import("covshift/node");
    assert.equal(typeof node.startWasmThreads, "function");
    assert.equal(typeof node.startDataParallel, "function");
    assert.equal(typeof core.DataParallel, "function");
    const browser = await import("covshift/browser");
    assert.equal(typeof browser.startWasmThreadsInBrowser, "function");
  });
});
