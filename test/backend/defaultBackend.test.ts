/**
 * What `import "covshift"` gives, each case in a fresh Node process (the
 * default is chosen once per process): the best wasm build that validates
 * (relaxed SIMD on Node ≥ 20.16, which turns V8's flag on itself), float64
 * still on the reference kernels, setBackend("reference") still the oracle;
 * and the reference backend, without an error, where WebAssembly is missing.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
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
