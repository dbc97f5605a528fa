/**
 * "covshift/browser" as a user's tools see it, without a browser: the packed
 * package installed into an empty folder, then
 *  (a) Node imports "covshift/browser" by name and finds both halves of it —
 *      the wasm kernel threads (startWasmThreadsInBrowser) and data-parallel
 *      training (startDataParallelInBrowser, serveReplica) — and refuses to
 *      start a group where SharedArrayBuffer is missing, as a page that is not
 *      cross-origin isolated lacks it (checked in a child process whose
 *      SharedArrayBuffer is deleted);
 *  (b) TypeScript (the repository's tsc, strict, skipLibCheck off)
 *      compiles the README's browser example against the package's
 *      declarations — the replica module, the replica workers' script and
 *      the trainer with lib WebWorker (as workers have), the page's script
 *      with lib DOM — and rejects a module URL as `replica` (the browser API
 *      takes the factory itself);
 *  (c) covshift/node's startDataParallel refuses a function as replica with
 *      what to pass instead (a function cannot be sent to a worker thread).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { installPackedCovshift } from "../package/installPacked.js";
import { startDataParallel } from "../../src/node/parallel.js";
import { createReplica } from "../parallel/replicaModel.js";
import { readmeBrowserApp } from "./readmeApp.js";

const tsc = resolve("node_modules/typescript/bin/tsc");

const WRONG = `
import { startDataParallelInBrowser } from "covshift/browser";
await startDataParallelInBrowser({
  replica: new URL("./replica.js", import.meta.url),
  worker: () => new Worker(new URL("./replicaWorker.js", import.meta.url), { type: "module" }),
  workers: 2,
  inputShape: [784],
  maxBatchSize: 60,
});
`;

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    lib: ["ES2022", "WebWorker"],
    types: [],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
  },
};

describe("covshift/browser from the packed package", () => {
  let dir = "";
  before(() => {
    dir = installPackedCovshift("covshift-browser-exports-");
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "covshift-user", version: "1.0.0", private: true, type: "module" }));
  });
  after(() => {
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("imports by name in Node with both the kernel threads and data-parallel training, and refuses to start without SharedArrayBuffer", () => {
    const program = `
      const browser = await import("covshift/browser");
      const names = ["startWasmThreadsInBrowser", "webWorkerSpawner", "defaultThreadCount", "startDataParallelInBrowser", "serveReplica", "webWorkerReplicaSpawner", "DataParallel"];
      const missing = names.filter((n) => typeof browser[n] !== "function");
      const core = await import("covshift");
      delete globalThis.SharedArrayBuffer;
      let refused = "";
      try {
        await browser.startDataParallelInBrowser({ replica: () => ({}), worker: () => null, workers: 2, inputShape: [1], maxBatchSize: 2 });
      } catch (err) {
        refused = err.message;
      }
      console.log(JSON.stringify({ missing, same: browser.DataParallel === core.DataParallel, refused }));
    `;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", program], { cwd: dir, encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { missing: string[]; same: boolean; refused: string };
    assert.deepEqual(out.missing, [], "covshift/browser exports");
    assert.equal(out.same, true, "covshift/browser's DataParallel is the core's class, not a copy");
    assert.match(out.refused, /^startDataParallelInBrowser: it needs SharedArrayBuffer, .*Cross-Origin-Embedder-Policy: require-corp/);
  });

  it("type-checks the README's browser example against the package's declarations, and rejects a module URL as replica", () => {
    const app = join(dir, "app");
    mkdirSync(app, { recursive: true });
    for (const [name, source] of Object.entries(readmeBrowserApp())) writeFileSync(join(app, name), source);
    // main.ts uses the app's data: declared here, as the README leaves it to the app.
    writeFileSync(join(app, "data.d.ts"), "declare const images: Float32Array;\ndeclare const labels: Int32Array;\n");
    const configs = {
      "tsconfig.workers.json": { ...TSCONFIG, include: ["replica.ts", "replicaWorker.ts", "trainer.ts"] },
      "tsconfig.page.json": { ...TSCONFIG, compilerOptions: { ...TSCONFIG.compilerOptions, lib: ["ES2022", "DOM"] }, include: ["main.ts", "data.d.ts"] },
    };
    for (const [name, config] of Object.entries(configs)) {
      writeFileSync(join(app, name), JSON.stringify(config));
      const run = spawnSync(process.execPath, [tsc, "-p", name], { cwd: app, encoding: "utf8" });
      assert.equal(run.status, 0, `tsc -p ${name} failed:\n${run.stdout}${run.stderr}`);
    }

    writeFileSync(join(app, "wrong.ts"), WRONG);
    writeFileSync(join(app, "tsconfig.wrong.json"), JSON.stringify({ ...TSCONFIG, include: ["replica.ts", "wrong.ts"] }));
    const wrong = spawnSync(process.execPath, [tsc, "-p", "tsconfig.wrong.json"], { cwd: app, encoding: "utf8" });
    assert.notEqual(wrong.status, 0, "a module URL as replica must not type-check");
    assert.match(wrong.stdout, /wrong\.ts\(4,3\): error TS2322: Type 'URL' is not assignable to type 'ReplicaFactory/);
  });
});

describe("covshift/node's startDataParallel", () => {
  it("refuses a function as replica, naming the module URL it needs", async () => {
    await assert.rejects(
      startDataParallel({ replica: createReplica, workers: 2, inputShape: [6], maxBatchSize: 4 }),
      /^Error: startDataParallel: replica must be the URL of the module exporting the replica factory .*a function cannot be sent to a thread$/,
    );
  });
});
