/**
 * What `import "covshift"` gives, each case in a fresh Node process (the
 * default is chosen once per process): the best wasm build that validates
 * (relaxed SIMD on Node ≥ 20.16, which turns V8's flag on itself), float64
 * still on the reference kernels, setBackend("reference") still the oracle;
 * and the reference backend, without an error, where WebAssembly is missing;
 * in Node, the kernels' threads started in the background by the package's
 * node entry (COVSHIFT_THREADS, worker threads, a backend chosen before).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const entry = pathToFileURL(resolve("dist/src/index.js")).href;

/** Run an ES module body in a fresh node (no preload, no flags) and parse the JSON it prints. */
function fresh(body: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", body], { encoding: "utf8", env: { ...process.env, COVSHIFT_TEST_BACKEND: "" } });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, unknown>;
}

it("import 'covshift' selects the relaxed-SIMD wasm build with no flag, float64 stays on the reference kernels, setBackend('reference') still works", () => {
  const out = fresh(`
    const c = await import(${JSON.stringify(entry)});
    const name = c.getBackend().name;
    const x = c.tensor([1, -2, 3]);
    const y = c.ops.relu(x);
    const d = c.tensor([1, -2, 3], [3], { dtype: "float64" });
    const { backendFor } = await import(${JSON.stringify(entry.replace(/index\.js$/, "backend/index.js"))});
    c.setBackend("reference");
    const after = c.getBackend().name;
    c.setBackend("wasm");
    console.log(JSON.stringify({ name, relu: Array.from(y.data), f64: backendFor(d.dtype).name, after, again: c.getBackend().name }));
  `);
  const canRelaxed = typeof (process as { getBuiltinModule?: unknown }).getBuiltinModule === "function";
  assert.equal(out.name, canRelaxed ? "wasm-relaxed-simd" : "wasm-simd");
  assert.deepEqual(out.relu, [1, 0, 3]);
  assert.equal(out.f64, "reference");
  assert.equal(out.after, "reference");
  assert.equal(out.again, out.name);
});

it("a backend chosen with setBackend before the import is kept", () => {
  const out = fresh(`
    const b = await import(${JSON.stringify(entry.replace(/index\.js$/, "backend/index.js"))});
    b.setBackend("reference");
    const c = await import(${JSON.stringify(entry)});
    console.log(JSON.stringify({ name: c.getBackend().name }));
  `);
  assert.equal(out.name, "reference");
});

it("where WebAssembly is missing, import 'covshift' falls back to the reference backend without an error, and trains", () => {
  const out = fresh(`
    delete globalThis.WebAssembly;
    const c = await import(${JSON.stringify(entry)});
    const lin = new c.nn.Linear(3, 2);
    const loss = c.ops.sum(lin.forward(c.tensor([[1, 2, 3]])));
    loss.backward();
    console.log(JSON.stringify({ name: c.getBackend().name, grad: lin.weight.grad !== null }));
  `);
  assert.deepEqual(out, { name: "reference", grad: true });
});

/** Run an ES module body in a fresh node with `env` added, returning its last JSON line and its stderr. */
function freshWith(body: string, env: Record<string, string>): { out: Record<string, unknown>; stderr: string } {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", body], { encoding: "utf8", env: { ...process.env, COVSHIFT_TEST_BACKEND: "", COVSHIFT_THREADS: "", ...env } });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  return { out: JSON.parse(r.stdout.trim().split("\n").pop()!) as Record<string, unknown>, stderr: r.stderr };
}

describe("import 'covshift' in Node (the package's node entry): the kernels' threads by default", () => {
  // What the "node" export condition of "." resolves to; resolved by name too, below.
  const nodeEntry = pathToFileURL(resolve("dist/src/node/entry.js")).href;
  const waitForThreads = (want: string) => `
    const b = c.getBackend();
    const atImport = b.threads;
    for (let i = 0; i < 500 && b.threads < ${want}; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // nothing more starts later
    `;

  it("starts one kernel thread per core in the background (the kernels run on one until then), with the same bits; the package name resolves to this entry in Node", () => {
    const { out } = freshWith(
      `const c = await import("covshift");
      ${waitForThreads(String(availableParallelism()))}
      const m = new c.nn.Linear(784, 300, { generator: new c.Generator(1) });
      const x = c.tensor(Array.from({ length: 64 * 784 }, (_, i) => Math.sin(i)), [64, 784]);
      const y = m.forward(x);
      console.log(JSON.stringify({ atImport, threads: b.threads, name: b.name, sum: Array.from(y.data).reduce((s, v) => s + v, 0) }));`,
      {},
    );
    assert.equal(out.atImport, 1, "the threads start in the background: one thread at import");
    assert.equal(out.threads, availableParallelism(), "one per core once started");
    assert.match(String(out.name), /^wasm-/);
    // The same product (64×784×300: split between the threads above 2^21 multiply-adds) on one thread.
    const one = freshWith(
      `const c = await import("covshift");
      const m = new c.nn.Linear(784, 300, { generator: new c.Generator(1) });
      const x = c.tensor(Array.from({ length: 64 * 784 }, (_, i) => Math.sin(i)), [64, 784]);
      const y = m.forward(x);
      console.log(JSON.stringify({ threads: c.getBackend().threads, sum: Array.from(y.data).reduce((s, v) => s + v, 0) }));`,
      { COVSHIFT_THREADS: "1" },
    ).out;
    assert.equal(one.threads, 1);
    assert.equal(one.sum, out.sum, "the same bits on one thread");
  });

  it("a synchronous training loop started right after the import gets the threads once they are up (no turn of the event loop needed)", () => {
    const { out } = freshWith(
      `const c = await import(${JSON.stringify(nodeEntry)});
      const b = c.getBackend();
      const m = new c.nn.Linear(784, 300);
      const x = c.tensor(Array.from({ length: 64 * 784 }, (_, i) => Math.sin(i)), [64, 784]);
      const t0 = Date.now();
      let steps = 0;
      // Never awaits: the event loop does not turn while this runs.
      while (b.threads < 2 && Date.now() - t0 < 10000) { m.forward(x); steps++; }
      console.log(JSON.stringify({ threads: b.threads, steps }));`,
      { COVSHIFT_THREADS: "2" },
    );
    assert.equal(out.threads, 2, "the team was installed during the synchronous loop");
  });

  it("COVSHIFT_THREADS sets the count; a bad value is a warning naming it and leaves one thread; a backend chosen before the import starts none", () => {
    const three = freshWith(`const c = await import(${JSON.stringify(nodeEntry)}); ${waitForThreads("3")} console.log(JSON.stringify({ threads: b.threads }));`, { COVSHIFT_THREADS: "3" });
    assert.equal(three.out.threads, 3);
    const bad = freshWith(`const c = await import(${JSON.stringify(nodeEntry)}); ${waitForThreads("2")} console.log(JSON.stringify({ threads: b.threads }));`, { COVSHIFT_THREADS: "two" });
    assert.equal(bad.out.threads, 1);
    assert.match(bad.stderr, /COVSHIFT_THREADS must be a whole number ≥ 1 .*got "two"; running the kernels on one thread/);
    const chosen = freshWith(
      `const be = await import(${JSON.stringify(entry.replace(/index\.js$/, "backend/index.js"))});
      be.setBackend("reference");
      const c = await import(${JSON.stringify(nodeEntry)}); ${waitForThreads("2")}
      console.log(JSON.stringify({ name: b.name, threads: b.threads ?? 1 }));`,
      {},
    );
    assert.deepEqual(chosen.out, { name: "reference", threads: 1 });
  });

  it("not on a worker thread (an experiment's job or a replica chooses its own threads); a later startWasmThreads replaces the background start", () => {
    const { out } = freshWith(
      `const { Worker } = await import("node:worker_threads");
      const code = 'const c = await import(${JSON.stringify(nodeEntry)}); await new Promise((r) => setTimeout(r, 300)); (await import("node:worker_threads")).parentPort.postMessage(c.getBackend().threads);';
      const w = new Worker(code, { eval: true, type: "module" });
      const inWorker = await new Promise((r) => w.once("message", r));
      await w.terminate();
      const c = await import(${JSON.stringify(nodeEntry)});
      const { startWasmThreads } = await import(${JSON.stringify(pathToFileURL(resolve("dist/src/node/wasmThreads.js")).href)});
      const b = c.getBackend();
      await startWasmThreads(b, 1); // while the background start may still wait for its workers
      await new Promise((r) => setTimeout(r, 500));
      console.log(JSON.stringify({ inWorker, afterOne: b.threads }));`,
      { COVSHIFT_THREADS: "2" },
    );
    assert.deepEqual(out, { inWorker: 1, afterOne: 1 });
  });
});
