/**
 * covshift inside a user's bundled app. A small app that imports "covshift",
 * "covshift/wasm" and "covshift/browser" by name (the packed package
 * installed into a temp folder, as a user's `npm install` places it) is bundled by
 * esbuild into one file, served alone with the cross-origin-isolation
 * headers, and run in Chromium: it starts 2 wasm kernel threads, splits every
 * kernel (minParallelWork = 0) and trains a small conv + BN network, which
 * must give the same bits as on 1 thread. This is what failed while the
 * worker was a separate file next to the module: esbuild keeps
 * `new URL("./wasmThreadWorker.js", import.meta.url)` as a runtime URL and
 * never emits that file, so the threads never started in a bundled app.
 * Skips without Chromium (fails under CI=true, see chromium.ts).
 */
import { after, before, it } from "node:test";
import { describeOrSkip } from "../skip.js";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { installPackedCovshift } from "../package/installPacked.js";
import type { Browser } from "playwright-core";
import { type AppServer, bundleApp, closeServer, ISOLATION_HEADERS, pageResult, serveApp } from "./bundledApp.js";
import { CHROMIUM_ARGS, chromiumPath, loadPlaywright } from "./chromium.js";

const { playwright, skipReason } = await loadPlaywright();

const APP = `
import { Generator, Tensor, nn, optim, scope, setBackend } from "covshift";
import { initWasmBackend } from "covshift/wasm";
import { startWasmThreadsInBrowser } from "covshift/browser";

function train() {
  const g = new Generator(7);
  const model = new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { padding: 1, bias: false, generator: g }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
    new nn.GlobalAvgPool2d(),
    new nn.Flatten(),
    new nn.Linear(8, 4, { generator: g }),
  );
  const opt = new optim.SGD(model.parameters(), { lr: 0.3, momentum: 0.9 });
  const lossFn = new nn.CrossEntropyLoss();
  const gen = new Generator(11);
  const data = new Float32Array(8 * 3 * 10 * 10);
  for (let i = 0; i < data.length; i++) data[i] = gen.normal();
  const x = new Tensor(data, [8, 3, 10, 10]);
  const y = new Int32Array([0, 1, 2, 3, 0, 1, 2, 3]);
  const losses = [];
  for (let s = 0; s < 5; s++) {
    scope(() => {
      opt.zeroGrad({ setToNone: false });
      const loss = lossFn.forward(model.forward(x), y);
      losses.push(loss.item());
      loss.backward();
      opt.step();
    });
  }
  return { losses, state: Object.values(model.stateDict()).map((t) => Array.from(t.data, Number)) };
}

try {
  const wasm = await initWasmBackend();
  setBackend("wasm");
  const one = train();
  const threads = await startWasmThreadsInBrowser(wasm, 2);
  wasm.minParallelWork = 0;
  const two = train();
  wasm.stopThreads();
  window.__result = { sharedMemory: wasm.sharedMemory, threads, one, two };
} catch (err) {
  window.__result = { error: String((err && err.stack) || err) };
}
`;

describeOrSkip("an app bundled by esbuild", { skip: skipReason, timeout: 120_000 }, () => {
  let dir = "";
  let app: AppServer | null = null;
  let browser: Browser | null = null;
  let outputs: string[] = [];

  before(async () => {
    dir = installPackedCovshift("covshift-bundle-");
    writeFileSync(join(dir, "app.js"), APP);
    outputs = await bundleApp(dir, ["app.js"]);
    app = await serveApp(dir, { "index.html": "app.js" }, () => ISOLATION_HEADERS);
    browser = await playwright!.chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    await closeServer(app?.server ?? null);
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("is one file, and starts 2 kernel threads in Chromium that train to the same bits as 1", async () => {
    assert.deepEqual(outputs, ["app.js"], "esbuild emits the app alone: no worker file to lose");
    const { result: r, log } = await pageResult<{
      error?: string;
      sharedMemory: boolean;
      threads: number;
      one: { losses: number[]; state: number[][] };
      two: { losses: number[]; state: number[][] };
    }>(browser!, `${app!.origin}/`, 60_000);
    assert.equal(r.error, undefined, `${r.error}\n${log.join("\n")}`);
    assert.equal(r.sharedMemory, true, "the page is cross-origin isolated: shared memory");
    assert.equal(r.threads, 2, "the backend runs on 2 threads");
    assert.ok(r.one.losses.every(Number.isFinite), `finite losses: ${r.one.losses}`);
    assert.deepEqual(r.two.losses, r.one.losses, "losses: 2 threads vs 1");
    assert.deepEqual(r.two.state, r.one.state, "parameters and running statistics: 2 threads vs 1");
    assert.deepEqual(log, [], "no console error, page error or failed request");
  });
});
