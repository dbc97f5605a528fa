/**
 * Data-parallel training in a user's bundled browser app. The README's
 * example ("Data-parallel training in a browser": replica.ts,
 * replicaWorker.ts, trainer.ts, main.ts, word for word) and a checking app
 * of this test's own (check.js, a trainer worker, next to the same replica
 * module and replica workers' script) import "covshift", "covshift/wasm"
 * and "covshift/browser" by name from the packed package installed into a
 * temp folder; esbuild bundles every page's and worker's script as an entry
 * point of its own (each bundle holds its own single copy of covshift), and
 * Chromium runs them served with and without the cross-origin-isolation
 * headers. What it proves:
 *  (a) the README's app trains: its loss goes down over its 200 steps on
 *      2 replica workers, and the trained model comes back as safetensors;
 *  (b) 2 Web Worker replicas (nested in a trainer worker, started through
 *      startDataParallelInBrowser's worker factory, serving through
 *      serveReplica) of the README's MLP with BatchNorm1d → SyncBatchNorm
 *      hold the same bits after 3 steps with momentum, and their losses,
 *      parameters and running statistics match one process on the whole
 *      batch within float32 tolerance (the tolerances of
 *      test/parallel/dataParallel.test.ts), on the reference and the wasm
 *      backends. The same group without SyncBN gives a clearly different
 *      loss, so the match shows that the replica workers' conversion to
 *      SyncBatchNorm took place (it asks `instanceof nn.BatchNorm1d`, which a
 *      second copy of covshift in the worker would answer false);
 *  (c) nothing but the bundles is fetched: no module is loaded by URL at
 *      run time; and the same checking app unbundled (the TypeScript
 *      stripped, covshift's compiled modules imported by path from the
 *      installed package) trains and refuses misuse alike;
 *  (d) misuse gets errors that say what to do: the page's main thread
 *      (Atomics.wait is refused there), a page without COOP/COEP (no
 *      SharedArrayBuffer; on the main thread and in a worker), serveReplica
 *      on a page, a module URL as replica, no worker factory, and a worker
 *      script that does not load (rejects instead of hanging).
 * Skips without Chromium (fails under CI=true, see chromium.ts).
 */
import { after, before, it } from "node:test";
import { describeOrSkip } from "../skip.js";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { transform } from "esbuild";
import type { Browser } from "playwright-core";
import { loadSafetensors } from "../../src/index.js";
import { installPackedCovshift } from "../package/installPacked.js";
import { assertAllClose } from "../allclose.js";
import { type AppServer, bundleApp, closeServer, ISOLATION_HEADERS, pageResult, serveApp } from "./bundledApp.js";
import { CHROMIUM_ARGS, chromiumPath, loadPlaywright } from "./chromium.js";
import { readmeBrowserApp } from "./readmeApp.js";

const { playwright, skipReason } = await loadPlaywright();

/** The data the README's main.ts leaves to the app: 600 points of 784 values, each labelled by the largest of 10 fixed linear scores. */
const README_DATA = `
let seed = 1;
const uniform = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
const W = Float32Array.from({ length: 10 * 784 }, () => uniform() - 0.5);
const images = Float32Array.from({ length: 600 * 784 }, () => uniform() * 2 - 1);
const labels = new Int32Array(600);
for (let i = 0; i < 600; i++) {
  let best = -Infinity;
  for (let k = 0; k < 10; k++) {
    let score = 0;
    for (let j = 0; j < 784; j++) score += W[k * 784 + j] * images[i * 784 + j];
    if (score > best) [best, labels[i]] = [score, k];
  }
}
`;

/** After the README's main.ts: report what its trainer posted. */
const README_REPORT = `
const posted: any[] = [];
trainer.addEventListener("message", ({ data }) => {
  posted.push(data.safetensors ? { step: data.step, safetensors: Array.from(data.safetensors) } : data);
  if (data.safetensors) (window as any).__result = { posted };
});
`;

/** The checking trainer (a worker): equivalence with one process, bit-identical replicas, misuse. */
const CHECK_TRAINER = `
import { Generator, Tensor, getBackend, manualSeed, scope, setBackend } from "covshift";
import { initWasmBackend } from "covshift/wasm";
import { startDataParallelInBrowser } from "covshift/browser";
import { createReplica } from "./replica.js";

const replicaWorker = () => new Worker(new URL("./replicaWorker.js", import.meta.url), { type: "module" });
const options = { lr: 0.1 };
const group = { replica: createReplica, worker: replicaWorker, options, workers: 2, inputShape: [784], maxBatchSize: 60 };
const stateOf = (m) => [...m.namedParameters(), ...m.namedBuffers()].map(([n, t]) => [n, Array.from(t.data, Number)]);

function batch(seed, rows) {
  const g = new Generator(seed);
  const x = new Tensor(Float32Array.from({ length: rows * 784 }, () => g.normal()), [rows, 784]);
  const y = Int32Array.from({ length: rows }, (_, i) => (i * 7 + seed) % 10);
  return { x, y };
}

/** One process on the whole batch, from the same factory and the same initial weights (manualSeed before each factory call). */
function singleProcess(batches) {
  manualSeed(5);
  const { model, loss, optimizer } = createReplica({ rank: -1, size: 1, options });
  const opt = optimizer(model.parameters());
  model.train();
  const losses = batches.map(({ x, y }) =>
    scope(() => {
      opt.zeroGrad({ setToNone: false });
      const value = loss(model.forward(x), y);
      value.backward();
      opt.step();
      return value.item();
    }),
  );
  return { losses, state: stateOf(model) };
}

async function errorOf(promise) {
  try {
    const dp = await promise;
    await dp.close();
    return null;
  } catch (err) {
    return String(err.message);
  }
}

async function train(backend) {
  if (backend === "wasm") {
    await initWasmBackend();
    setBackend("wasm");
  } else setBackend("reference");
  const batches = [0, 1, 2].map((s) => batch(10 + s, 12));
  const reference = singleProcess(batches);
  manualSeed(5); // the coordinator builds its copy first; every replica starts from its state
  const dp = await startDataParallelInBrowser(group);
  const losses = batches.map(({ x, y }) => dp.step(x, y));
  const replicas = dp.replicaStates().map((s) => Array.from(s));
  const pulled = stateOf(dp.pull());
  await dp.close();
  manualSeed(5);
  const noSync = await startDataParallelInBrowser({ ...group, syncBatchNorm: false });
  const noSyncLoss = noSync.step(batches[0].x, batches[0].y);
  await noSync.close();
  return { backend: getBackend().name, reference, losses, replicas, pulled, noSyncLoss };
}

self.onmessage = async ({ data }) => {
  try {
    if (data === "not isolated") {
      postMessage({ notIsolated: await errorOf(startDataParallelInBrowser(group)) });
      return;
    }
    const runs = [await train("reference"), await train("wasm")];
    const misuse = {
      missingScript: await errorOf(
        startDataParallelInBrowser({ ...group, worker: () => new Worker(new URL("./missing.js", import.meta.url), { type: "module" }) }),
      ),
      urlReplica: await errorOf(startDataParallelInBrowser({ ...group, replica: new URL("./replica.js", import.meta.url) })),
      noWorker: await errorOf(startDataParallelInBrowser({ ...group, worker: undefined })),
    };
    postMessage({ runs, misuse });
  } catch (err) {
    postMessage({ error: String((err && err.stack) || err) });
  }
};
`;

/** The checking page: misuse on the main thread, then the checking trainer. */
const CHECK_PAGE = `
import { serveReplica, startDataParallelInBrowser } from "covshift/browser";
import { createReplica } from "./replica.js";

const result = { crossOriginIsolated };
try {
  const dp = await startDataParallelInBrowser({ replica: createReplica, worker: () => new Worker("unused.js"), workers: 2, inputShape: [784], maxBatchSize: 60 });
  await dp.close();
  result.mainThread = null;
} catch (err) {
  result.mainThread = String(err.message);
}
try {
  serveReplica(createReplica);
  result.serveOnPage = null;
} catch (err) {
  result.serveOnPage = String(err.message);
}
const trainer = new Worker(new URL("./checkTrainer.js", import.meta.url), { type: "module" });
trainer.onmessage = (event) => (window.__result = { ...result, ...event.data });
trainer.onerror = (event) => (window.__result = { ...result, error: "the trainer worker failed: " + event.message });
trainer.postMessage(crossOriginIsolated ? "train" : "not isolated");
`;

type State = [string, number[]][];
interface Run {
  backend: string;
  reference: { losses: number[]; state: State };
  losses: number[];
  replicas: number[][];
  pulled: State;
  noSyncLoss: number;
}
interface CheckResult {
  error?: string;
  crossOriginIsolated: boolean;
  mainThread: string | null;
  serveOnPage: string | null;
  runs?: Run[];
  misuse?: { missingScript: string | null; urlReplica: string | null; noWorker: string | null };
  notIsolated?: string | null;
}
type Posted = { step: number; loss: number } | { step: number; safetensors: number[] };

/** The checking app's report: equivalence with one process, identical replicas, and the misuse errors. */
function assertTrainedAlike(r: CheckResult, log: string[]): void {
  assert.equal(r.error, undefined, `${r.error}\n${log.join("\n")}`);
  assert.equal(r.crossOriginIsolated, true);
  assert.ok(r.runs !== undefined && r.runs.length === 2);
  assert.equal(r.runs[0].backend, "reference");
  assert.match(r.runs[1].backend, /^wasm/);
  for (const run of r.runs) {
    const what = `(${run.backend})`;
    assert.equal(run.replicas.length, 2);
    assert.ok(run.replicas[0].length > 0);
    assert.deepEqual(run.replicas[1], run.replicas[0], `replica 1 holds replica 0's bits ${what}`);
    assert.ok(run.reference.losses.every(Number.isFinite), `losses: ${run.reference.losses}`);
    run.losses.forEach((loss, s) => assertAllClose(loss, run.reference.losses[s], { atol: 1e-6, rtol: 1e-5 }, `loss of step ${s} ${what}`));
    const expected = new Map(run.reference.state);
    assert.deepEqual(run.pulled.map(([n]) => n), run.reference.state.map(([n]) => n));
    assert.ok(run.pulled.some(([n]) => n.endsWith("running_var")));
    for (const [name, values] of run.pulled) assertAllClose(values, expected.get(name)!, { atol: 2e-6, rtol: 1e-5 }, `${name} ${what}`);
    // Without SyncBN each shard's BN uses its own statistics: the loss moves far beyond the tolerance above.
    assert.ok(Math.abs(run.noSyncLoss - run.reference.losses[0]) > 1e-3, `without SyncBN: ${run.noSyncLoss} vs ${run.reference.losses[0]} ${what}`);
  }
  assert.match(r.mainThread ?? "", /Atomics\.wait, which a page's main thread may not do: run the training loop \(the coordinator\) in a dedicated Web Worker/);
  assert.doesNotMatch(r.mainThread ?? "", /SharedArrayBuffer/, "the page is isolated: only the main thread is wrong");
  assert.match(r.serveOnPage ?? "", /serveReplica: call it in the replica workers' script/);
  assert.match(r.misuse!.missingScript ?? "", /^DataParallel: replica [01] failed: its script did not load or threw before serving/);
  assert.match(r.misuse!.urlReplica ?? "", /replica must be the replica factory itself .* not a module URL/);
  assert.match(r.misuse!.noWorker ?? "", /worker must be a function that starts one replica worker/);
  assert.deepEqual(
    log.filter((l) => !/missing\.js/.test(l)),
    [],
    "no console error, page error or failed request besides the missing script's",
  );
}

describeOrSkip("data-parallel training in an app bundled by esbuild", { skip: skipReason, timeout: 300_000 }, () => {
  let dir = "";
  let app: AppServer | null = null;
  let browser: Browser | null = null;
  let outputs: string[] = [];
  const fetchedBy = (prefix: string) => [...new Set(app!.requested.filter((p) => p.startsWith(prefix)))].sort();

  before(async () => {
    dir = installPackedCovshift("covshift-dp-bundle-");
    const readme = readmeBrowserApp();
    writeFileSync(join(dir, "replica.ts"), readme["replica.ts"]);
    writeFileSync(join(dir, "replicaWorker.ts"), readme["replicaWorker.ts"]);
    writeFileSync(join(dir, "trainer.ts"), readme["trainer.ts"]);
    writeFileSync(join(dir, "main.ts"), README_DATA + readme["main.ts"] + README_REPORT);
    writeFileSync(join(dir, "checkTrainer.js"), CHECK_TRAINER);
    writeFileSync(join(dir, "checkPage.js"), CHECK_PAGE);
    outputs = await bundleApp(dir, ["main.ts", "trainer.ts", "replicaWorker.ts", "checkPage.js", "checkTrainer.js"]);
    // The same checking app unbundled: TypeScript stripped, "covshift…" imported by path from the installed package.
    const exports = JSON.parse(readFileSync(join(dir, "node_modules/covshift/package.json"), "utf8")).exports as Record<string, { default: string }>;
    const byPath = (code: string) =>
      code.replace(/from "covshift(\/\w+)?"/g, (_, sub: string | undefined) => `from "../node_modules/covshift/${exports[`.${sub ?? ""}`].default.slice(2)}"`);
    mkdirSync(join(dir, "esm"));
    for (const name of ["replica", "replicaWorker"] as const) {
      const { code } = await transform(readme[`${name}.ts`], { loader: "ts", format: "esm" });
      writeFileSync(join(dir, "esm", `${name}.js`), byPath(code));
    }
    writeFileSync(join(dir, "esm", "checkTrainer.js"), byPath(CHECK_TRAINER));
    writeFileSync(join(dir, "esm", "checkPage.js"), byPath(CHECK_PAGE));
    // /isolated/… is served with COOP/COEP, /plain/… without.
    app = await serveApp(dir, { "readme.html": "main.js", "check.html": "checkPage.js" }, (path) => (path.startsWith("/isolated/") ? ISOLATION_HEADERS : {}), {
      "/isolated/esm/": join(dir, "esm"),
      "/isolated/node_modules/covshift/": join(dir, "node_modules/covshift"),
    });
    browser = await playwright!.chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    await closeServer(app?.server ?? null);
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  it("the README's app, bundled: its loss goes down on 2 replica workers, and the model comes back as safetensors", async () => {
    assert.deepEqual(outputs, ["checkPage.js", "checkTrainer.js", "main.js", "replicaWorker.js", "trainer.js"], "one bundle per entry point, nothing else");
    const { result, log, console: lines } = await pageResult<{ posted: Posted[] }>(browser!, `${app!.origin}/isolated/readme.html`, 240_000);
    assert.deepEqual(log, [], "no console error, page error or failed request");
    const losses = result.posted.filter((m): m is { step: number; loss: number } => "loss" in m);
    assert.deepEqual(losses.map((m) => m.step), [0, 50, 100, 150]);
    assert.ok(losses.every((m) => Number.isFinite(m.loss)));
    assert.ok(losses[3].loss < 0.5 * losses[0].loss, `the loss goes down: ${losses.map((m) => m.loss)}`);
    const last = result.posted.at(-1)!;
    assert.ok("safetensors" in last && last.step === 200);
    const state = loadSafetensors(Uint8Array.from(last.safetensors));
    assert.deepEqual(Object.keys(state).sort(), ["0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var", "1.weight", "3.bias", "3.weight"]);
    assert.deepEqual(state["0.weight"].shape, [100, 784]);
    assert.equal(state["1.num_batches_tracked"].data[0], 200, "SyncBN counted the 200 steps");
    assert.equal(lines[0], `step 0: loss ${losses[0].loss.toFixed(4)}`, "main.ts logs the trainer's messages");
    assert.equal(lines.at(-1), `trained: ${last.safetensors.length} bytes of safetensors`);
    assert.deepEqual(fetchedBy("/isolated/"), ["/isolated/main.js", "/isolated/readme.html", "/isolated/replicaWorker.js", "/isolated/trainer.js"], "the bundles and nothing else");
  });

  it("2 Web Worker replicas with SyncBN stay bit-identical and match one process on the whole batch; misuse gets clear errors", async () => {
    const before = app!.requested.length;
    const { result: r, log } = await pageResult<CheckResult>(browser!, `${app!.origin}/isolated/check.html`, 240_000);
    assertTrainedAlike(r, log);
    const fetched = [...new Set(app!.requested.slice(before))].sort();
    assert.deepEqual(
      fetched,
      ["/isolated/check.html", "/isolated/checkPage.js", "/isolated/checkTrainer.js", "/isolated/missing.js", "/isolated/replicaWorker.js"],
      "the bundles (and the missing script of the misuse check), nothing loaded by URL at run time",
    );
  });

  it("unbundled: the same files as ES modules (covshift's compiled files imported by path) train alike and refuse misuse alike", async () => {
    const before = app!.requested.length;
    const { result: r, log } = await pageResult<CheckResult>(browser!, `${app!.origin}/isolated/esm/check.html`, 240_000);
    assertTrainedAlike(r, log);
    const fetched = [...new Set(app!.requested.slice(before))];
    assert.ok(fetched.includes("/isolated/esm/replicaWorker.js") && fetched.includes("/isolated/node_modules/covshift/dist/src/browser/index.js"), "served unbundled");
    const elsewhere = fetched.filter((p) => !p.startsWith("/isolated/esm/") && !p.startsWith("/isolated/node_modules/covshift/dist/src/"));
    assert.deepEqual(elsewhere, [], "the app's files and covshift's compiled modules, nothing else");
  });

  it("on a page without COOP/COEP it refuses, on the main thread and in a worker, naming the headers", async () => {
    const { result: r, log } = await pageResult<CheckResult>(browser!, `${app!.origin}/plain/check.html`, 60_000);
    assert.equal(r.error, undefined, `${r.error}\n${log.join("\n")}`);
    assert.equal(r.crossOriginIsolated, false);
    for (const message of [r.mainThread, r.notIsolated]) {
      assert.match(message ?? "", /needs SharedArrayBuffer, which a browser gives only to cross-origin-isolated pages/);
      assert.match(message ?? "", /Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp/);
    }
    assert.match(r.mainThread ?? "", /a page's main thread may not do/, "the main thread is wrong too, and the error says so");
    assert.doesNotMatch(r.notIsolated ?? "", /main thread/, "a worker may block: only the headers are missing");
  });
});
