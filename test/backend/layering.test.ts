/**
 * The layering of the core, read from the sources' import statements (type
 * imports included, static and dynamic): backend is the ground floor, then
 * tensor, ops, nn, optim. A file may import from its own floor or below,
 * never from above, and no circle of files runs through the core floors.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve("src");
const FLOORS = ["backend", "tensor", "ops", "nn", "optim"];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Relative module specifiers of `import … from`, `export … from`, `import "…"` and `import("…")`. */
function importsOf(text: string): string[] {
  const specs: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) specs.push(m[1]);
  return specs;
}

/** The project-relative .ts file an import of `spec` from `file` names, or null for a package. */
function resolveImport(file: string, spec: string): string | null {
  if (!spec.startsWith(".")) return null;
  return relative(SRC, join(dirname(file), spec)).replace(/\.js$/, ".ts");
}

/** The floor of a file under src/: its index in FLOORS, or FLOORS.length for everything above the core. */
function floorOf(srcRelative: string): number {
  const top = srcRelative.split("/")[0];
  const i = FLOORS.indexOf(top);
  return i < 0 ? FLOORS.length : i;
}

const graph = new Map<string, string[]>();
for (const file of sourceFiles(SRC)) {
  const targets: string[] = [];
  for (const spec of importsOf(readFileSync(file, "utf8"))) {
    const t = resolveImport(file, spec);
    if (t !== null) targets.push(t);
  }
  graph.set(relative(SRC, file), targets);
}

describe("layering of src/", () => {
  it("the scan sees the known imports (tensor → backend, ops → tensor), so an empty result cannot pass by accident", () => {
    assert.ok(graph.get("tensor/autograd.ts")?.includes("backend/index.ts"));
    assert.ok(graph.get("ops/matmul.ts")?.some((t) => t.startsWith("tensor/")));
  });

  it("no core file imports from a floor above its own (backend < tensor < ops < nn < optim < the rest)", () => {
    const upward: string[] = [];
    for (const [file, targets] of graph) {
      const floor = floorOf(file);
      if (floor === FLOORS.length) continue;
      for (const t of targets) if (floorOf(t) > floor) upward.push(`${file} → ${t}`);
    }
    assert.deepEqual(upward, [], `imports running up a floor:\n${upward.join("\n")}`);
  });

  it("src/backend imports nothing from src/tensor (DType, Storage and the allocator live in backend/storage.ts)", () => {
    const wrong = [...graph].flatMap(([f, ts]) => (f.startsWith("backend/") ? ts.filter((t) => t.startsWith("tensor/")).map((t) => `${f} → ${t}`) : []));
    assert.deepEqual(wrong, []);
  });

  it("the core files form no import circle", () => {
    // Tarjan's strongly connected components over the core floors' files; any component of 2+ files is a circle.
    const core = [...graph.keys()].filter((f) => floorOf(f) < FLOORS.length);
    const index = new Map<string, number>();
    const low = new Map<string, number>();
    const onStack = new Set<string>();
    const stack: string[] = [];
    const circles: string[][] = [];
    let next = 0;
    const visit = (v: string): void => {
      index.set(v, next);
      low.set(v, next++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w) || floorOf(w) === FLOORS.length) continue;
        if (!index.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
      if (low.get(v) === index.get(v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== v);
        if (component.length > 1) circles.push(component.sort());
      }
    };
    for (const v of core) if (!index.has(v)) visit(v);
    assert.deepEqual(circles, [], `import circles:\n${circles.map((c) => c.join(" ↔ ")).join("\n")}`);
  });
});

describe("the wasm glue", () => {
  // The glue as written by hand: generated/ holds what the build derives from assembly/ (KernelExports, with
  // asc's doc block of every export, and the modules' bytes), which grows by ~15 lines with each kernel.
  it("no file of src/backend/wasm is over 400 lines (generated/ aside)", () => {
    const long = sourceFiles(join(SRC, "backend", "wasm"))
      .filter((f) => !relative(SRC, f).split(/[\\/]/).includes("generated"))
      .map((f) => [relative(SRC, f), readFileSync(f, "utf8").split("\n").length] as const)
      .filter(([, n]) => n > 400);
    assert.deepEqual(long, []);
  });
});
