/**
 * The core in a real browser. What this test proves: the compiled ESM of
 * the core (tensors, ops, nn, optim, scope) and of the WebAssembly backend
 * loads as-is in Chromium (Debian's build, driven by playwright-core) from a
 * static server — no bundler, no Node API — and trains a small conv + BN
 * network there:
 *  (a) on a cross-origin-isolated page (COOP/COEP headers) the wasm backend
 *      is a SIMD build over a shared memory, the loss goes down, and its
 *      parameters and running statistics agree with the reference backend's
 *      within float32 tolerance;
 *  (b) on a page without those headers (no SharedArrayBuffer) the backend
 *      falls back to a private memory and trains to the same bits as the
 *      shared-memory run (same kernels; only where the operands live differs);
 *  (c) on the isolated page, with 2 kernel threads started as module Web
 *      Workers through webWorkerSpawner (src/browser/wasmThreads.ts) and
 *      every kernel split (minParallelWork = 0), training gives the same
 *      bits as on 1 thread.
 * The suite skips where there is no Chromium at /usr/bin/chromium (or at
 * $CHROMIUM_PATH) or playwright-core is missing — and fails instead under
 * CI=true (see chromium.ts).
 */
import { after, before, describe, it } from "node:test";
import { describeOrSkip } from "../skip.js";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";
import { CHROMIUM_ARGS, chromiumPath, loadPlaywright } from "./chromium.js";
import { assertAllClose, maxAbs } from "../allclose.js";

const { playwright, skipReason } = await loadPlaywright();

/** The repository root: this file runs as dist/test/browser/browser.test.js. */
const root = fileURLToPath(new URL("../../../", import.meta.url));

/** The numbers one training run reports. */
interface Run {
  losses: number[];
  /** state-dict entries in order: [name, values] */
  state: [string, number[]][];
}

/** What the page reports (window.__result). */
interface PageResult {
  error?: string;
  crossOriginIsolated: boolean;
  sharedArrayBuffer: boolean;
  variant: string;
  sharedMemory: boolean;
  reference?: Run;
  wasm: Run;
  threads?: { count: number; run: Run };
  threadsRefused?: string;
}

/**
 * The test page: a module script that imports the compiled core straight
 * from dist/ (relative to the page, so the same page works under either
 * prefix), trains, and leaves its numbers in window.__result.
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>covshift in the browser</title></head>
<body>
<script type="module">
const params = new URLSearchParams(location.search);
const STEPS = 10;
try {
  const { Generator, Tensor, nn, optim, scope, setBackend } = await import("./dist/src/index.js");
  const { initWasmBackend } = await import("./dist/src/backend/wasm/index.js");
  const { startWasmThreadsInBrowser } = await import("./dist/src/browser/wasmThreads.js");

  const randn = (shape, gen) => {
    const data = new Float32Array(shape.reduce((p, d) => p * d, 1));
    for (let i = 0; i < data.length; i++) data[i] = gen.normal();
    return new Tensor(data, shape);
  };

  /** Conv → BN → ReLU → strided conv → ReLU → global average → flatten → linear; SGD with momentum inside scope(). */
  const train = (backend) => {
    setBackend(backend);
    const g = new Generator(7);
    const model = new nn.Sequential(
      new nn.Conv2d(3, 8, 3, { padding: 1, bias: false, generator: g }),
      new nn.BatchNorm2d(8),
      new nn.ReLU(),
      new nn.Conv2d(8, 8, 3, { stride: 2, padding: 1, generator: g }),
      new nn.ReLU(),
      new nn.GlobalAvgPool2d(),
      new nn.Flatten(),
      new nn.Linear(8, 4, { generator: g }),
    );
    const opt = new optim.SGD(model.parameters(), { lr: 0.3, momentum: 0.9 });
    const lossFn = new nn.CrossEntropyLoss();
    const x = randn([8, 3, 10, 10], new Generator(11));
    const y = new Int32Array([0, 1, 2, 3, 0, 1, 2, 3]);
    const losses = [];
    for (let s = 0; s < STEPS; s++) {
      scope(() => {
        opt.zeroGrad({ setToNone: false });
        const loss = lossFn.forward(model.forward(x), y);
        losses.push(loss.item());
        loss.backward();
        opt.step();
      });
    }
    const state = Object.entries(model.stateDict()).map(([name, t]) => [name, Array.from(t.data, Number)]);
    return { losses, state };
  };

  const result = { crossOriginIsolated: self.crossOriginIsolated === true, sharedArrayBuffer: typeof SharedArrayBuffer === "function" };
  if (params.has("reference")) result.reference = train("reference");
  const wasm = await initWasmBackend();
  result.variant = wasm.variant;
  result.sharedMemory = wasm.sharedMemory;
  result.wasm = train("wasm");
  const threads = Number(params.get("threads") ?? "1");
  if (threads > 1) {
    if (wasm.sharedMemory) {
      const count = await startWasmThreadsInBrowser(wasm, threads);
      wasm.minParallelWork = 0;
      try {
        result.threads = { count, run: train("wasm") };
      } finally {
        wasm.stopThreads();
      }
    } else {
      try {
        await startWasmThreadsInBrowser(wasm, threads);
      } catch (err) {
        result.threadsRefused = String(err && err.message || err);
      }
    }
  }
  window.__result = result;
} catch (err) {
  window.__result = { error: String(err && err.stack || err) };
}
</script>
</body></html>
`;

const MIME: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
};

const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
};

/** Serves the repository under /isolated/ (with COOP/COEP) and /plain/ (without); page.html under each is the test page. */
function startServer(): Promise<Server> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const match = /^\/(isolated|plain)(\/.*)$/.exec(url.pathname);
    const headers: Record<string, string> = { "Cache-Control": "no-store" };
    if (match === null) {
      res.writeHead(404, headers).end("not found");
      return;
    }
    if (match[1] === "isolated") Object.assign(headers, ISOLATION_HEADERS);
    const rest = decodeURIComponent(match[2]);
    if (rest === "/page.html") {
      res.writeHead(200, { ...headers, "Content-Type": MIME[".html"] }).end(PAGE);
      return;
    }
    const file = resolve(root, "." + rest);
    if (!file.startsWith(root.endsWith(sep) ? root : root + sep)) {
      res.writeHead(403, headers).end("outside the repository");
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...headers, "Content-Type": MIME[extname(file)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404, headers).end("not found");
    }
  });
  return new Promise((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => done(server));
  });
}

/** Within float32 tolerance of the reference, entry by entry: |Δ| ≤ 1e-4·max|ref| + 1e-4·|ref|. */
const f32OfReference = (ref: ArrayLike<number>) => ({ atol: 1e-4 * maxAbs(ref), rtol: 1e-4 });

/** Bit-for-bit equality of two runs (numbers compared with Object.is: −0 ≠ 0). */
function assertSameBits(actual: Run, expected: Run, label: string): void {
  assert.deepEqual(actual.losses, expected.losses, `${label}: losses`);
  assert.deepEqual(
    actual.state.map(([name]) => name),
    expected.state.map(([name]) => name),
    `${label}: state-dict entries`,
  );
  for (let i = 0; i < expected.state.length; i++) {
    assert.deepEqual(actual.state[i][1], expected.state[i][1], `${label}: ${expected.state[i][0]}`);
  }
}

describeOrSkip("the core and the wasm backend in Chromium", { skip: skipReason, timeout: 60_000 }, () => {
  let server: Server | null = null;
  let browser: Browser | null = null;
  let origin = "";
  const pages = new Map<string, Promise<PageResult>>();

  before(async () => {
    server = await startServer();
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await playwright!.chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, headless: true });
  });

  after(async () => {
    await browser?.close();
    if (server !== null) {
      server.closeAllConnections();
      await new Promise((done) => server!.close(done));
    }
  });

  /** Opens `path` once (later calls share the result) and returns its window.__result, with the page's errors in any failure. */
  function result(path: string): Promise<PageResult> {
    let pending = pages.get(path);
    if (pending === undefined) {
      pending = (async () => {
        const page = await browser!.newPage();
        const log: string[] = [];
        page.on("console", (m) => log.push(`console.${m.type()}: ${m.text()}`));
        page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
        page.on("requestfailed", (r) => log.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
        page.on("response", (r) => {
          if (r.status() >= 400) log.push(`HTTP ${r.status()}: ${r.url()}`);
        });
        try {
          await page.goto(origin + path);
          await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, null, { timeout: 40_000 });
          const r = (await page.evaluate(() => (window as unknown as { __result: unknown }).__result)) as PageResult;
          if (r.error !== undefined) throw new Error(`${path} failed in the browser:\n${r.error}\n${log.join("\n")}`);
          return r;
        } catch (err) {
          if (log.length > 0 && !(err as Error).message.includes(log[0])) (err as Error).message += `\n${log.join("\n")}`;
          throw err;
        } finally {
          await page.close();
        }
      })();
      pages.set(path, pending);
    }
    return pending;
  }

  const isolated = () => result("/isolated/page.html?reference&threads=2");
  const plain = () => result("/plain/page.html?threads=2");

  it("(a) cross-origin isolated: a SIMD build over a shared memory trains, and agrees with the reference backend", async () => {
    const r = await isolated();
    assert.equal(r.crossOriginIsolated, true, "the page is cross-origin isolated");
    assert.equal(r.sharedArrayBuffer, true);
    assert.ok(r.variant === "simd" || r.variant === "relaxed-simd", `a SIMD build; got ${r.variant}`);
    assert.equal(r.sharedMemory, true, "the wasm memory is shared (zero-copy storage)");
    const { losses } = r.wasm;
    assert.ok(losses.every(Number.isFinite), `finite losses: ${losses}`);
    assert.ok(
      losses.every((l, i) => i === 0 || l < losses[i - 1]) && losses[losses.length - 1] < 0.9 * losses[0],
      `the loss goes down at every step, by over 10% in all: ${losses.join(", ")}`,
    );
    const ref = r.reference!;
    assertAllClose(losses, ref.losses, f32OfReference(ref.losses), "loss: wasm vs reference");
    assert.deepEqual(
      r.wasm.state.map(([name]) => name),
      ref.state.map(([name]) => name),
    );
    for (let i = 0; i < ref.state.length; i++) assertAllClose(r.wasm.state[i][1], ref.state[i][1], f32OfReference(ref.state[i][1]), `${ref.state[i][0]}: wasm vs reference`);
  });

  it("(b) not isolated: the private-memory fallback trains to the same bits as the shared memory", async () => {
    const [p, iso] = await Promise.all([plain(), isolated()]);
    assert.equal(p.crossOriginIsolated, false);
    assert.equal(p.sharedArrayBuffer, false, "no SharedArrayBuffer without COOP/COEP");
    assert.equal(p.sharedMemory, false, "the backend falls back to a private memory");
    assert.equal(p.variant, iso.variant, "the same kernels");
    assertSameBits(p.wasm, iso.wasm, "private vs shared memory");
    assert.match(p.threadsRefused ?? "", /shared memory/, "threads are refused with a clear error");
  });

  it("(c) isolated: 2 threads (module Web Workers, every kernel split) train to the same bits as 1", async () => {
    const r = await isolated();
    assert.ok(r.threads !== undefined, "the threaded run happened");
    assert.equal(r.threads.count, 2, "the backend runs on 2 threads");
    assertSameBits(r.threads.run, r.wasm, "2 threads vs 1");
  });
});
