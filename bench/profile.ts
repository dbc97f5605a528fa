/**
 * Where the time of one §4.1 MLP training step goes: runs the step (the same
 * closure `npm run bench` times) in a loop under V8's sampling profiler and
 * prints the functions with the most self time.
 *
 *   node dist/bench/profile.js [--backend wasm-relaxed-simd] [--network batchnorm] [--plain] [--seconds 5] [--top 20]
 *
 * --plain profiles the plain loop (no scope(), zeroGrad() setting gradients
 * to null) instead of the scoped one.
 *
 * It re-runs itself with `node --cpu-prof` (profile written to
 * bench/results/profile/), then summarizes the .cpuprofile it wrote. To
 * summarize an existing profile: node dist/bench/profile.js --summarize FILE [--backend B].
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { kernelsRelaxedSimdSharedBase64 } from "../src/backend/wasm/generated/kernels-relaxed-simd-shared.js";
import { kernelsScalarBase64 } from "../src/backend/wasm/generated/kernels-scalar.js";
import { kernelsSimdSharedBase64 } from "../src/backend/wasm/generated/kernels-simd-shared.js";
import { enableRelaxedSimd } from "../src/experiments/backend.js";
import { backendConfigs, mlpStep } from "./covshift.js";
import { fmt, table } from "./table.js";

/** Names of a wasm module's exported functions by function index (the kernels module imports nothing). */
export function wasmExportNames(bytes: Uint8Array): Map<number, string> {
  const names = new Map<number, string>();
  let p = 8; // magic, version
  const leb = () => {
    let r = 0;
    let shift = 0;
    let b: number;
    do {
      b = bytes[p++];
      r |= (b & 127) << shift;
      shift += 7;
    } while (b & 128);
    return r >>> 0;
  };
  while (p < bytes.length) {
    const id = bytes[p++];
    const size = leb();
    const end = p + size;
    if (id === 7) {
      for (let n = leb(); n > 0; n--) {
        const len = leb();
        const name = new TextDecoder().decode(bytes.subarray(p, p + len));
        p += len;
        const kind = bytes[p++];
        const index = leb();
        if (kind === 0) names.set(index, name);
      }
    }
    p = end;
  }
  return names;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};

/**
 * Self time per function (name and source location), as a share of all
 * samples. Wasm functions are named from the module's exports; an internal
 * one by the exported kernel it was called from ("wasm-function[5] in gemm").
 */
export function summarize(path: string, top: number, wasmNames = new Map<number, string>()): string {
  const p = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const wasmIndex = (n: ProfileNode) => /^wasm-function\[(\d+)\]$/.exec(n.callFrame.functionName)?.[1];
  const nameOf = (n: ProfileNode): string => {
    const index = wasmIndex(n);
    if (index === undefined) return n.callFrame.functionName || "(anonymous)";
    const exported = wasmNames.get(Number(index));
    if (exported !== undefined) return `wasm ${exported}`;
    for (let q = parent.get(n.id); q !== undefined; q = parent.get(q)) {
      const up = byId.get(q)!;
      const i = wasmIndex(up);
      if (i === undefined) break;
      const name = wasmNames.get(Number(i));
      if (name !== undefined) return `${n.callFrame.functionName} in ${name}`;
    }
    return n.callFrame.functionName;
  };
  const self = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const node = byId.get(id)!;
    const f = node.callFrame;
    const where = f.url === "" || wasmIndex(node) !== undefined ? "" : `${basename(f.url)}:${f.lineNumber + 1}`;
    const key = `${nameOf(node)}\t${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  // Inclusive time by phase of the step: the first phase function met walking up from the sampled frame.
  const phases: [string, RegExp, RegExp][] = [
    ["model forward (Sequential.forward)", /^forward$/, /sequential\.js$/],
    ["loss forward (CrossEntropyLoss)", /^forward$/, /loss\.js$/],
    ["backward (runBackward)", /^runBackward$/, /autograd\.js$/],
    ["optimizer step (SGD.step)", /^step$/, /sgd\.js$/],
    ["zeroGrad", /^zeroGrad$/, /./],
  ];
  const inPhase = new Map<string, number>();
  p.samples.forEach((id, i) => {
    let phase = "other (idle, GC, harness)";
    for (let q: number | undefined = id; q !== undefined; q = parent.get(q)) {
      const f = byId.get(q)!.callFrame;
      const hit = phases.find(([, fn, url]) => fn.test(f.functionName) && url.test(f.url));
      if (hit) {
        phase = hit[0];
        break;
      }
    }
    inPhase.set(phase, (inPhase.get(phase) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  const phaseRows = [...inPhase.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => [name, fmt(us / 1e3, 0), `${fmt((100 * us) / total, 1)} %`]);
  const rows = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, us]) => {
      const [fn, where] = key.split("\t");
      return [fn, where, fmt(us / 1e3, 0), `${fmt((100 * us) / total, 1)} %`];
    });
  return (
    `${basename(path)}: ${fmt(total / 1e6, 1)} s sampled\n\n` +
    table(["phase of the step (inclusive time)", "ms", "share"], phaseRows) +
    "\n\n" +
    table(["function (self time)", "where", "ms", "share"], rows, "llrr")
  );
}

/** Export names of the kernels build the profiled backend ran. */
function kernelNames(backend: string): Map<number, string> {
  if (!backend.startsWith("wasm")) return new Map();
  // The builds backendConfigs loads: shared memory where there is SIMD.
  const b64 = backend === "wasm-scalar" ? kernelsScalarBase64 : backend === "wasm-relaxed-simd" ? kernelsRelaxedSimdSharedBase64 : kernelsSimdSharedBase64;
  return wasmExportNames(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
}

if (args.includes("--summarize")) {
  console.log(summarize(resolve(opt("summarize", "")), Number(opt("top", "25")), kernelNames(opt("backend", "wasm-simd"))));
} else if (process.env.COVSHIFT_PROFILE_CHILD === "1") {
  // The child: run the step for the requested time under the profiler.
  const backend = opt("backend", "wasm-simd");
  enableRelaxedSimd();
  const config = (await backendConfigs([backend])).configs[0];
  if (config === undefined) throw new Error(`--backend ${backend}: not available (reference, wasm-scalar, wasm-simd, wasm-relaxed-simd)`);
  config.activate();
  const step = mlpStep(opt("network", "batchnorm") === "baseline" ? "baseline" : "batchnorm", { plain: args.includes("--plain") });
  const end = performance.now() + Number(opt("seconds", "5")) * 1000;
  let steps = 0;
  while (performance.now() < end) {
    step();
    steps++;
  }
  console.log(`${steps} steps on ${config.label}`);
} else {
  const dir = fileURLToPath(new URL("../../bench/results/profile/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const child = spawnSync(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${dir}`, fileURLToPath(import.meta.url), ...args], {
    stdio: "inherit",
    env: { ...process.env, COVSHIFT_PROFILE_CHILD: "1" },
  });
  if (child.status !== 0) process.exit(child.status ?? 1);
  const newest = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).mtimeMs >= started)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (newest === undefined) throw new Error(`no .cpuprofile was written to ${dir}`);
  console.log(summarize(newest, Number(opt("top", "25")), kernelNames(opt("backend", "wasm-simd"))));
}
