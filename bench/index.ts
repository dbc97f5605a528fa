/**
 * `npm run bench`: how fast covshift trains, next to PyTorch and TensorFlow.js
 * on the same work, measured in one run. A program, not a test: it prints
 * tables and writes every number to bench/results/bench.json.
 *
 *   npm run build && npm run bench [-- --quick] [-- --only mlp,gemm,bn,conv,peers] [-- --json PATH]
 *
 * Sections:
 *   default  what `import "covshift"` gives, timed first in a fresh process with no flags (bench/defaultPath.ts):
 *          the plain loop (no scope) on the MLP and the conv step, and plain ÷ scoped; the targets are judged on it
 *   mlp    the §4.1 network's SGD step (784-100-100-100-10 sigmoid, batch 60), with and without BN,
 *          on every backend and thread count; and one Figure 1 evaluation (10,000 test images)
 *   gemm   GFLOP/s at the network's Linear shapes, 64×784×112 (target ≥ 35 on one core) and 256³
 *   bn     BN forward + backward GB/s through the op (autograd) and through the kernels alone,
 *          next to the memory-copy bandwidth measured in the same run
 *   conv   Conv2d(32→32, 3×3) → BatchNorm2d → ReLU on (64, 32, 16, 16): ms per training step
 *   threads  GEMM and convolution on one thread and split between the cores: where splitting pays
 *   peers  PyTorch (bench/torch_bench.py, 1 and 2 threads) and TensorFlow.js (wasm, cpu) on the same work;
 *          with default: the default path against them in interleaved rounds (bench/interleave.ts), each side in
 *          its own persistent process taking turns with the others, so that the machine's drift hits all alike —
 *          the targets' ratios come from these rounds
 *
 * Every figure is the best of several timed rounds after a warm-up (the
 * round least disturbed by other work on the machine); medians are in the
 * JSON. The load average at start and end is printed and stored: on a busy
 * machine the figures are lower bounds.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  backendConfigs,
  benchBatchNorm,
  benchConv,
  benchEvaluation,
  benchGemm,
  benchMlp,
  BN_GBS_DEFINITION,
  convFlops,
  RAW,
  rawSimdKernels,
  type BnResult,
  type ConvResult,
  type GemmResult,
  type MlpResult,
} from "./covshift.js";
import { bnCases, efforts, gemmCases, memoryCopy } from "./measure.js";
import { enableRelaxedSimd } from "../src/experiments/backend.js";
import { fmt, table } from "./table.js";
import { benchTfjs, type TfjsResults } from "./tfjs.js";
import { benchThreads, type ThreadResults } from "./threads.js";
import { benchTorch, torchPython, type TorchResults } from "./torch.js";
import type { DefaultPathResults } from "./defaultPath.js";
import { INTERLEAVE_DEFAULTS, interleave, interleavedTables, type ContenderSummary, type InterleavedResults, type Work } from "./interleave.js";

enableRelaxedSimd(); // before the first wasm compile: Node 20 keeps relaxed SIMD behind a V8 flag

const SECTIONS = ["default", "mlp", "gemm", "bn", "conv", "threads", "peers"] as const;
type Section = (typeof SECTIONS)[number];

/** Targets of issue 4, item 5, and issue 9 (the default path: plainVsScoped, defaultVsTorch, defaultConvVsTorch, vsTfjs). */
const TARGETS = {
  defaultVsTorch: 1.0,
  defaultConvVsTorch: 0.5,
  plainVsScoped: 0.9,
  vsTorch: 0.5,
  vsTfjs: 10,
  gemmGflops: 35,
  bnFractionOfCopy: 0.5,
  figure1Seconds: 120,
};

/** Figure 1's schedule (README, src/experiments/figure1/config.ts): per network, 50,000 steps and an evaluation every 500. */
const FIGURE1 = { networks: 2, steps: 50_000, evaluationsPerNetwork: 100 };

interface Options {
  quick: boolean;
  sections: Section[];
  json: string;
  backends?: string[];
  /** Interleaved rounds of the side-by-side comparison (default: 3 with --quick, 10 otherwise). */
  rounds?: number;
}

const USAGE = `usage: node dist/bench/index.js [--quick] [--only ${SECTIONS.join(",")}] [--json PATH] [--backends reference,wasm-scalar,wasm-simd,wasm-relaxed-simd] [--rounds K]

  --quick      fewer repetitions (under a minute)
  --only LIST  run only these sections (default: all)
  --json PATH  where to write the results (default: bench/results/bench.json)
  --backends   restrict covshift to these backends (e.g. to profile one)
  --rounds K   interleaved rounds of the default path against the peers (default 10, 3 with --quick)`;

function parseArgs(argv: string[]): Options {
  const here = dirname(fileURLToPath(import.meta.url));
  const o: Options = { quick: false, sections: [...SECTIONS], json: resolve(here, "../../bench/results/bench.json") };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--only") {
      const list = value().split(",").map((s) => s.trim()).filter(Boolean);
      const unknown = list.filter((s) => !(SECTIONS as readonly string[]).includes(s));
      if (unknown.length > 0) throw new Error(`--only: unknown section(s) ${unknown.join(", ")}; choose from ${SECTIONS.join(", ")}`);
      o.sections = list as Section[];
    } else if (a === "--json") o.json = resolve(value());
    else if (a === "--backends") o.backends = value().split(",").map((s) => s.trim());
    else if (a === "--rounds") {
      const v = value();
      const k = Number(v);
      if (!Number.isInteger(k) || k < 1) throw new Error(`--rounds: expected a whole number of rounds ≥ 1, got ${JSON.stringify(v)}`);
      o.rounds = k;
    }
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  return o;
}

const t0 = performance.now();
const log = (s: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${s}\n`);
const loadString = (l: number[]) => l.map((v) => v.toFixed(2)).join(", ");

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const has = (s: Section) => options.sections.includes(s);
  const effort = efforts[options.quick ? "quick" : "full"];
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    loadAverageStart: loadavg(),
    loadAverageEnd: [] as number[],
    /** 1-minute load average as each part of the run started. */
    loadAtPart: {} as Record<string, number>,
    git: gitState(),
  };
  const startedAt = new Date().toISOString();

  // First, before this process loads any build: what a user gets, in a fresh process.
  const loadAt: Record<string, number> = {};
  const mark = (part: string) => (loadAt[part] = loadavg()[0]);
  let defaultPath: DefaultPathResults | null = null;
  const defaultNotes: string[] = [];
  if (has("default")) {
    mark("covshift default");
    log("default path: import \"covshift\", plain loop, in a fresh node");
    const script = fileURLToPath(new URL("./defaultPath.js", import.meta.url));
    const run = spawnSync(process.execPath, [script, ...(options.quick ? ["--quick"] : [])], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    if (run.status === 0) defaultPath = JSON.parse(run.stdout.trim().split("\n").pop()!) as DefaultPathResults;
    else defaultNotes.push(`default path: node ${script} failed (exit ${run.status})`);
  }

  const { configs, notes } = await backendConfigs(options.backends);
  notes.unshift(...defaultNotes);
  const raw = options.backends === undefined || options.backends.includes("wasm-simd") ? rawSimdKernels() : null;
  let mlp: MlpResult[] = [];
  let evaluation: ReturnType<typeof benchEvaluation> | null = null;
  let gemm: GemmResult[] = [];
  let bn: BnResult[] = [];
  let copy: ReturnType<typeof memoryCopy> | null = null;
  let conv: ConvResult[] = [];
  let torch: TorchResults | null = null;
  let tfjs: TfjsResults | null = null;
  let threads: ThreadResults | null = null;
  let interleaved: InterleavedResults | null = null;

  // The 1-minute load average as each part starts (loadAt, above): peers run at other moments than covshift, so a ratio is only as fair as these are close.
  if (has("mlp")) {
    mark("covshift mlp");
    mlp = benchMlp(configs, effort, log);
    const best = bestBy(mlp.filter((r) => r.network === "batchnorm"), (r) => r.stepsPerSecond);
    const cfg = configs.find((c) => c.label === best?.config);
    if (cfg) evaluation = benchEvaluation(cfg, effort, log);
  }
  if (has("gemm")) {
    mark("covshift gemm");
    gemm = benchGemm(configs, raw, effort, log);
  }
  if (has("bn")) {
    mark("covshift bn");
    log("memory copy");
    copy = memoryCopy(options.quick ? { rounds: 3, roundSeconds: 0.1, warmupMs: 50 } : { rounds: 5, roundSeconds: 0.15 });
    bn = benchBatchNorm(configs, raw, effort, log);
  }
  if (has("conv")) {
    mark("covshift conv");
    conv = benchConv(configs, effort, log);
  }
  if (has("threads")) {
    mark("covshift threads");
    threads = benchThreads(configs, effort, log);
    if (threads === null) notes.push("threads: no multi-threaded configuration (one core, or no shared WebAssembly memory); skipped");
  }
  if (has("peers")) {
    // The default path against the peers: interleaved rounds, each side in its own persistent process.
    if (has("default")) {
      mark("side by side");
      const base = INTERLEAVE_DEFAULTS[options.quick ? "quick" : "full"];
      interleaved = await interleave({ ...base, rounds: options.rounds ?? base.rounds, python: torchPython() }, log);
    }
    // The tuned sections' peers, one after the other as before (not needed for the default path alone).
    const work = (["mlp", "gemm", "bn", "conv"] as const).filter(has);
    if (work.length > 0 || !has("default")) {
      mark("pytorch");
      torch = benchTorch({ quick: options.quick, sections: work.length > 0 ? [...work] : ["mlp", "gemm", "bn", "conv"], threads: [1, 2] }, log);
    }
    if (has("mlp") || (work.length === 0 && !has("default"))) {
      mark("tfjs");
      tfjs = await benchTfjs(effort, log);
    } else if (work.length > 0) notes.push("TF.js: measured in the mlp section only (add mlp to --only)");
  }
  machine.loadAverageEnd = loadavg();
  machine.loadAtPart = loadAt;

  // --- report ---------------------------------------------------------------------

  const out: string[] = [];
  const say = (s = "") => out.push(s);
  say(`covshift bench (${options.quick ? "--quick" : "full"}), ${startedAt}`);
  say(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}`);
  if (machine.git) say(`commit ${machine.git.commit.slice(0, 10)}${machine.git.dirtyFiles > 0 ? ` + ${machine.git.dirtyFiles} modified files in the working tree` : ""}`);
  say(`load average (1, 5, 15 min): ${loadString(machine.loadAverageStart)} at start, ${loadString(machine.loadAverageEnd)} at end`);
  say(`1-min load as each part started: ${Object.entries(loadAt).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}`);
  say(
    `each figure: the best of up to ${effort.fast.rounds} rounds of ≥ ${(effort.fast.roundSeconds ?? 0) * 1000} ms (at most ${effort.fast.maxSeconds} s; ` +
      `conv step: best of up to ${effort.slow.rounds} calls) after a warm-up`,
  );

  const configLabels = configs.map((c) => c.label);
  const ratios: Record<string, unknown> = {};

  if (defaultPath !== null) {
    say();
    say(`Default: what \`import "covshift"\` gives (${defaultPath.backend}), no flags, a plain loop without scope(): opt.zeroGrad(); loss = lossFn.forward(model.forward(x), y); loss.backward(); opt.step()`);
    const b = defaultPath.mlp.find((r) => r.network === "baseline");
    const n = defaultPath.mlp.find((r) => r.network === "batchnorm");
    say(
      table(
        ["", "MLP no BN steps/s", "MLP BN steps/s", "MLP BN ms/step", "conv step ms"],
        [[`covshift default (${defaultPath.backend}, ${defaultPath.threads ?? 1} thread${(defaultPath.threads ?? 1) > 1 ? "s" : ""})`, fmt(b?.stepsPerSecond, 0), fmt(n?.stepsPerSecond, 0), fmt(n?.msPerStep, 2), fmt(defaultPath.conv.msPerStep, 1)]],
      ),
    );
    const p = defaultPath.plainVsScoped;
    say(
      `plain loop ÷ the same loop inside scope() (alternating rounds): ${fmt(p.plainStepsPerSecond, 0)} ÷ ${fmt(p.scopedStepsPerSecond, 0)} steps/s = ${fmt(p.ratio, 2)}× by the clock; ` +
        `by CPU time ${fmt(p.scopedCpuMsPerStep, 2)} ÷ ${fmt(p.plainCpuMsPerStep, 2)} ms = ${fmt(p.cpuRatio, 2)}×`,
    );
  }

  if (interleaved !== null) for (const line of interleavedTables(interleaved)) say(line);

  if (mlp.length > 0 || torch?.mlp.length || tfjs?.mlp.length) {
    say();
    say("Tuned: MLP training step inside scope() on every build, §4.1 network (784-100-100-100-10 sigmoid, batch 60, SGD momentum 0.9: zeroGrad, forward, loss, backward, step)");
    const rows: string[][] = [];
    for (const label of configLabels) {
      const b = mlp.find((r) => r.config === label && r.network === "baseline");
      const n = mlp.find((r) => r.config === label && r.network === "batchnorm");
      if (b || n) rows.push([`covshift ${label}`, fmt(b?.stepsPerSecond, 0), fmt(n?.stepsPerSecond, 0), fmt(n?.msPerStep, 2), fmt(n?.medianStepsPerSecond, 0)]);
    }
    for (const t of [1, 2]) {
      const b = torch?.mlp.find((r) => r.threads === t && r.network === "baseline");
      const n = torch?.mlp.find((r) => r.threads === t && r.network === "batchnorm");
      if (b || n) rows.push([`PyTorch ${torch?.torch}, ${t} thread${t > 1 ? "s" : ""}`, fmt(b?.stepsPerSecond, 0), fmt(n?.stepsPerSecond, 0), fmt(n?.msPerStep, 2), fmt(n?.medianStepsPerSecond, 0)]);
    }
    for (const be of ["wasm", "cpu"]) {
      const b = tfjs?.mlp.find((r) => r.backend === be && r.network === "baseline");
      const n = tfjs?.mlp.find((r) => r.backend === be && r.network === "batchnorm");
      if (b || n) rows.push([`TF.js ${tfjs?.version} ${be}`, fmt(b?.stepsPerSecond, 0), fmt(n?.stepsPerSecond, 0), fmt(n?.msPerStep, 2), fmt(n?.medianStepsPerSecond, 0)]);
    }
    say(table(["", "no BN steps/s", "BN steps/s", "BN ms/step", "BN median steps/s"], rows));
  }

  if (gemm.length > 0) {
    say();
    say("GEMM, GFLOP/s (2·M·N·K flop per call); covshift through Backend.gemm (operands copied into wasm memory and back),");
    say(`"${RAW}" = the SIMD kernel on operands already in wasm memory`);
    const cols = [...configLabels, ...(raw ? [RAW] : [])];
    const torchCols = torch?.gemm.length ? ["PyTorch 1 thr", "PyTorch 2 thr"] : [];
    say(
      table(
        ["case", "M×N×K", ...cols, ...torchCols],
        gemm.map((g) => [
          g.case,
          `${g.M}×${g.N}×${g.K}`,
          ...cols.map((c) => fmt(g.gflops[c])),
          ...(torchCols.length ? [1, 2].map((t) => fmt(torch!.gemm.find((r) => r.case === g.case && r.threads === t)?.gflops)) : []),
        ]),
      ),
    );
  } else if (torch?.gemm.length) {
    say();
    say("GEMM, GFLOP/s, PyTorch only");
    say(table(["case", "PyTorch 1 thr", "PyTorch 2 thr"], gemmCases.map((g) => [g.label, ...[1, 2].map((t) => fmt(torch!.gemm.find((r) => r.case === g.label && r.threads === t)?.gflops))])));
  }

  if (bn.length > 0 || torch?.bn.length) {
    const torchCols = torch?.bn.length ? [1, 2] : [];
    const torchRow = (label: string, key: "opGBs" | "kernelGBs") => torchCols.map((t) => fmt(torch!.bn.find((r) => r.case === label && r.threads === t)?.[key], 2));
    say();
    say(`BatchNorm forward + backward, GB/s. ${BN_GBS_DEFINITION}.`);
    say("op = ops.batchNormTrain + y.backward(dy) through autograd (PyTorch: F.batch_norm + backward);");
    say(`kernels = moments, affine, grad sums, grad input called directly (PyTorch: aten native_batch_norm + _backward)`);
    const opCols = bn.length > 0 ? configLabels : [];
    const kCols = bn.length > 0 ? [...configLabels, ...(raw ? [RAW] : [])] : [];
    say(
      table(
        ["shape", ...opCols.map((c) => `op ${c}`), ...torchCols.map((t) => `op PyTorch ${t} thr`)],
        bnCases.map((s) => [s.label, ...opCols.map((c) => fmt(bn.find((r) => r.case === s.label)?.opGBs[c], 2)), ...torchRow(s.label, "opGBs")]),
      ),
    );
    say();
    say(
      table(
        ["shape", ...kCols.map((c) => `kernels ${c}`), ...torchCols.map((t) => `aten PyTorch ${t} thr`)],
        bnCases.map((s) => [s.label, ...kCols.map((c) => fmt(bn.find((r) => r.case === s.label)?.kernelGBs[c], 2)), ...torchRow(s.label, "kernelGBs")]),
      ),
    );
    if (copy) say(`memory copy (Float32Array.set of 64 MiB, bytes read + written): ${fmt(copy.GBsReadPlusWrite, 2)} GB/s`);
  }

  if (conv.length > 0 || torch?.conv.length) {
    say();
    say("Convolution layer training step: Conv2d(32→32, 3×3, pad 1, no bias) → BatchNorm2d → ReLU on (64, 32, 16, 16),");
    say(`forward + backward (with dx) + SGD momentum step; GFLOP/s counts the three GEMMs (${fmt(convFlops / 1e9, 2)} GFLOP per step)`);
    const rows = conv.map((c) => [`covshift ${c.config}`, fmt(c.msPerStep, 1), fmt(c.medianMsPerStep, 1), fmt(c.gemmGflops, 1)]);
    for (const c of torch?.conv ?? []) rows.push([`PyTorch ${c.threads} thread${c.threads > 1 ? "s" : ""}`, fmt(c.msPerStep, 1), fmt(c.medianMsPerStep, 1), fmt(convFlops / (c.msPerStep / 1e3) / 1e9, 1)]);
    say(table(["", "ms/step", "median ms/step", "GFLOP/s"], rows));
  }

  if (threads !== null) {
    say();
    say(`Splitting kernels between threads: ${threads.config} (same instance, minParallelWork ∞ vs 0)`);
    say(
      table(
        ["case", "multiply-adds", "1 thread ms", `${threads.threads} threads ms`, "speedup"],
        threads.cases.map((c) => [c.case, c.work.toExponential(2), fmt(c.msOneThread, 3), fmt(c.msTeam, 3), `${fmt(c.speedup, 2)}×`]),
      ),
    );
    say(
      `split pays (≥ 1.1× at every larger case) from ${threads.threshold === null ? "— (nowhere)" : threads.threshold.toExponential(2)} multiply-adds; ` +
        `the backend's default minParallelWork is ${threads.defaultMinParallelWork.toExponential(2)}`,
    );
  }

  // --- ratios against the targets ----------------------------------------------------

  const lines: string[][] = [];
  const verdict = (ok: boolean) => (ok ? "meets target" : "BELOW target");
  if (defaultPath !== null) {
    const n = defaultPath.mlp.find((r) => r.network === "batchnorm")!;
    const who = `default ${defaultPath.backend}, plain loop`;
    // Both ratios of the interleaved rounds must reach the target to meet it.
    const verdict2 = (best: number, rounds: number, t: number) =>
      best >= t && rounds >= t ? "meets target" : best < t && rounds < t ? "BELOW target" : "inconclusive: one ratio each side";
    /** A target judged on the interleaved rounds: covshift's default ÷ a peer's best configuration, into `ratios[key]` and the table. */
    const sideBySide = (work: Work, peerSide: "pytorch" | "tfjs", key: string, name: string, target: number, rows: (cov: ContenderSummary, peer: ContenderSummary) => object) => {
      const w = interleaved?.works.find((x) => x.work === work);
      const cov = w?.contenders.find((c) => c.side === "covshift");
      const r = w?.ratios[peerSide];
      if (!w || !cov || !r) return undefined;
      const peer = w.contenders.find((c) => c.id === r.bestConfig)!;
      ratios[key] = { ratio: r.bestOverBest, medianRoundRatio: r.medianRoundRatio, rounds: r.rounds, method: "interleaved", target, ...rows(cov, peer), perConfig: r.perConfig };
      const digits = target >= 10 ? 1 : 2;
      const figures =
        work === "conv" ? `${fmt(cov.msPerStep, 1)} ms vs ${peer.label} ${fmt(peer.msPerStep, 1)} ms` : `${fmt(cov.stepsPerSecond, 0)} vs ${peer.label} ${fmt(peer.stepsPerSecond, 0)} steps/s`;
      lines.push([
        name,
        `${fmt(r.bestOverBest, digits)}× · ${fmt(r.medianRoundRatio, digits)}×`,
        `≥ ${target}×`,
        verdict2(r.bestOverBest, r.medianRoundRatio, target),
        `side by side, ${r.rounds} rounds: best ÷ best ${figures} · median of per-round ratios (range ${fmt(r.minRoundRatio, digits)}–${fmt(r.maxRoundRatio, digits)}×)`,
      ]);
      return { w, cov };
    };
    const mlpVsTorch = sideBySide("mlp-bn", "pytorch", "defaultMlpBnVsTorch", "MLP with BN, default ÷ PyTorch's best", TARGETS.defaultVsTorch, (cov, peer) => ({
      covshift: sideRow(cov),
      torch: { threads: peer.threads, ...sideRow(peer) },
    }));
    // By CPU time, which other jobs disturb less: against PyTorch on one thread, medians of the same rounds.
    const one = mlpVsTorch?.w.contenders.find((c) => c.side === "pytorch" && c.threads === 1);
    if (mlpVsTorch && one) {
      const x = one.cpuMsPerStep / mlpVsTorch.cov.cpuMsPerStep;
      ratios.defaultMlpBnVsTorchCpu = { ratio: x, target: TARGETS.defaultVsTorch, method: "interleaved, median CPU ms per step", covshiftCpuMsPerStep: mlpVsTorch.cov.cpuMsPerStep, torchCpuMsPerStep: one.cpuMsPerStep };
      lines.push(["MLP with BN, default ÷ PyTorch 1 thread, by CPU time", `${fmt(x, 2)}×`, `≥ ${TARGETS.defaultVsTorch}×`, verdict(x >= TARGETS.defaultVsTorch), `${who} ${fmt(mlpVsTorch.cov.cpuMsPerStep, 3)} vs ${fmt(one.cpuMsPerStep, 3)} CPU ms per step (medians of the same rounds)`]);
    }
    sideBySide("mlp-bn", "tfjs", "defaultMlpBnVsTfjs", "MLP with BN, default ÷ TF.js's best", TARGETS.vsTfjs, (cov, peer) => ({
      covshift: sideRow(cov),
      tfjs: { backend: peer.backend, threads: peer.threads, ...sideRow(peer) },
    }));
    sideBySide("conv", "pytorch", "defaultConvVsTorch", "conv step, default ÷ PyTorch's best", TARGETS.defaultConvVsTorch, (cov, peer) => ({
      covshiftMs: cov.msPerStep,
      covshiftMedianMs: cov.medianMsPerStep,
      covshiftCpuMsPerStep: cov.cpuMsPerStep,
      torch: { threads: peer.threads, msPerStep: peer.msPerStep, medianMsPerStep: peer.medianMsPerStep, cpuMsPerStep: peer.cpuMsPerStep },
    }));
    // Without the interleaved rounds (their drivers failed): the one-after-the-other figures, when there are any.
    const torchBest = bestBy(torch?.mlp.filter((r) => r.network === "batchnorm") ?? [], (r) => r.stepsPerSecond);
    const tfBest = bestBy(tfjs?.mlp.filter((r) => r.network === "batchnorm") ?? [], (r) => r.stepsPerSecond);
    const torchConv = bestBy(torch?.conv ?? [], (r) => -r.msPerStep);
    if (torchBest && ratios.defaultMlpBnVsTorch === undefined) {
      const x = n.stepsPerSecond / torchBest.stepsPerSecond;
      ratios.defaultMlpBnVsTorch = { ratio: x, target: TARGETS.defaultVsTorch, covshift: n, torch: torchBest };
      lines.push(["MLP with BN, default ÷ PyTorch's best", `${fmt(x, 2)}×`, `≥ ${TARGETS.defaultVsTorch}×`, verdict(x >= TARGETS.defaultVsTorch), `${who} ${fmt(n.stepsPerSecond, 0)} vs ${torchBest.threads} thread(s) ${fmt(torchBest.stepsPerSecond, 0)} steps/s`]);
    }
    // By CPU time, which other jobs disturb less: the plain loop's (alternating rounds with the scoped one) against PyTorch on one thread.
    const torchCpu = torch?.mlp.find((r) => r.network === "batchnorm" && r.threads === 1)?.cpuMsPerStep;
    if (torchCpu !== undefined && ratios.defaultMlpBnVsTorchCpu === undefined) {
      const x = torchCpu / defaultPath.plainVsScoped.plainCpuMsPerStep;
      ratios.defaultMlpBnVsTorchCpu = { ratio: x, target: TARGETS.defaultVsTorch, covshiftCpuMsPerStep: defaultPath.plainVsScoped.plainCpuMsPerStep, torchCpuMsPerStep: torchCpu };
      lines.push(["MLP with BN, default ÷ PyTorch 1 thread, by CPU time", `${fmt(x, 2)}×`, `≥ ${TARGETS.defaultVsTorch}×`, verdict(x >= TARGETS.defaultVsTorch), `${who} ${fmt(defaultPath.plainVsScoped.plainCpuMsPerStep, 3)} vs ${fmt(torchCpu, 3)} CPU ms per step`]);
    }
    if (tfBest && ratios.defaultMlpBnVsTfjs === undefined) {
      const x = n.stepsPerSecond / tfBest.stepsPerSecond;
      ratios.defaultMlpBnVsTfjs = { ratio: x, target: TARGETS.vsTfjs, covshift: n, tfjs: tfBest };
      lines.push(["MLP with BN, default ÷ TF.js's best", `${fmt(x, 1)}×`, `≥ ${TARGETS.vsTfjs}×`, verdict(x >= TARGETS.vsTfjs), `${who} ${fmt(n.stepsPerSecond, 0)} vs TF.js ${tfBest.backend} ${fmt(tfBest.stepsPerSecond, 0)} steps/s`]);
    }
    if (torchConv && ratios.defaultConvVsTorch === undefined) {
      const x = torchConv.msPerStep / defaultPath.conv.msPerStep;
      ratios.defaultConvVsTorch = { ratio: x, target: TARGETS.defaultConvVsTorch, covshiftMs: defaultPath.conv.msPerStep, torch: torchConv };
      lines.push(["conv step, default ÷ PyTorch's best", `${fmt(x, 2)}×`, `≥ ${TARGETS.defaultConvVsTorch}×`, verdict(x >= TARGETS.defaultConvVsTorch), `${who} ${fmt(defaultPath.conv.msPerStep, 1)} ms vs ${torchConv.threads} thread(s) ${fmt(torchConv.msPerStep, 1)} ms`]);
    }
    const p = defaultPath.plainVsScoped;
    ratios.plainVsScoped = { ...p, target: TARGETS.plainVsScoped };
    lines.push([
      "MLP with BN, plain loop ÷ scope()",
      `${fmt(p.ratio, 2)}×`,
      `≥ ${TARGETS.plainVsScoped}×`,
      verdict(p.ratio >= TARGETS.plainVsScoped),
      `${defaultPath.backend}: ${fmt(p.plainStepsPerSecond, 0)} vs ${fmt(p.scopedStepsPerSecond, 0)} steps/s, alternating rounds; by CPU time ${fmt(p.cpuRatio, 2)}×`,
    ]);
  }
  const bestBn = bestBy(mlp.filter((r) => r.network === "batchnorm"), (r) => r.stepsPerSecond);
  if (bestBn) {
    const torchBest = bestBy(torch?.mlp.filter((r) => r.network === "batchnorm") ?? [], (r) => r.stepsPerSecond);
    if (torchBest) {
      const x = bestBn.stepsPerSecond / torchBest.stepsPerSecond;
      ratios.mlpBnVsTorch = { ratio: x, target: TARGETS.vsTorch, covshift: bestBn, torch: torchBest };
      lines.push([
        "MLP with BN, tuned ÷ PyTorch's best",
        `${fmt(x, 2)}×`,
        `≥ ${TARGETS.vsTorch}×`,
        verdict(x >= TARGETS.vsTorch),
        `${bestBn.config} ${fmt(bestBn.stepsPerSecond, 0)} vs ${torchBest.threads} thread(s) ${fmt(torchBest.stepsPerSecond, 0)} steps/s`,
      ]);
    } else lines.push(["MLP with BN, tuned ÷ PyTorch's best", "—", `≥ ${TARGETS.vsTorch}×`, "", torch?.notes[0] ?? "PyTorch not run (--only without peers)"]);
    const tfBest = bestBy(tfjs?.mlp.filter((r) => r.network === "batchnorm") ?? [], (r) => r.stepsPerSecond);
    if (tfBest) {
      const x = bestBn.stepsPerSecond / tfBest.stepsPerSecond;
      ratios.mlpBnVsTfjs = { ratio: x, target: TARGETS.vsTfjs, covshift: bestBn, tfjs: tfBest };
      lines.push([
        "MLP with BN, tuned ÷ TF.js's best",
        `${fmt(x, 1)}×`,
        `≥ ${TARGETS.vsTfjs}×`,
        verdict(x >= TARGETS.vsTfjs),
        `${bestBn.config} ${fmt(bestBn.stepsPerSecond, 0)} vs TF.js ${tfBest.backend} ${fmt(tfBest.stepsPerSecond, 0)} steps/s`,
      ]);
    } else lines.push(["MLP with BN, tuned ÷ TF.js's best", "—", `≥ ${TARGETS.vsTfjs}×`, "", tfjs?.notes[0] ?? "TF.js not run (--only without peers)"]);
  }
  const target = gemm.find((g) => g.M === 64 && g.N === 112 && g.K === 784);
  if (target) {
    // The target is for one core: configurations on one thread only.
    const oneThread = new Set(configs.filter((c) => c.threads === 1).map((c) => c.label));
    const [label, best] = bestEntry(Object.fromEntries(Object.entries(target.gflops).filter(([k]) => oneThread.has(k))));
    const x = best / TARGETS.gemmGflops;
    ratios.gemmTarget = { gflops: best, config: label, rawGflops: target.gflops[RAW], target: TARGETS.gemmGflops };
    lines.push([
      "GEMM 64×784×112 ÷ 35 GFLOP/s",
      `${fmt(x, 2)}×`,
      "≥ 1×",
      verdict(x >= 1),
      `${label} ${fmt(best)} GFLOP/s through Backend.gemm; ${RAW} ${fmt(target.gflops[RAW])}`,
    ]);
  }
  const bigBn = bn.find((r) => r.case === "(64, 64, 32, 32)");
  if (bigBn && copy) {
    const half = copy.GBsReadPlusWrite * TARGETS.bnFractionOfCopy;
    const [opLabel, op] = bestEntry(bigBn.opGBs);
    const [kLabel, k] = bestEntry(bigBn.kernelGBs);
    ratios.bnTarget = { opGBs: op, opConfig: opLabel, kernelGBs: k, kernelConfig: kLabel, memoryCopyGBs: copy.GBsReadPlusWrite, target: half };
    lines.push([
      "BN (64,64,32,32) op ÷ ½ memcpy",
      `${fmt(op / half, 2)}×`,
      "≥ 1×",
      verdict(op >= half),
      `op ${opLabel} ${fmt(op, 2)} GB/s; kernels ${kLabel} ${fmt(k, 2)} GB/s (${fmt(k / half, 2)}×); ½ memcpy = ${fmt(half, 2)} GB/s`,
    ]);
  }
  let figure1: Record<string, unknown> | null = null;
  if (bestBn && evaluation) {
    const base = mlp.find((r) => r.config === bestBn.config && r.network === "baseline")!;
    const e = evaluation.secondsPerEvaluation;
    const train = FIGURE1.steps / base.stepsPerSecond + FIGURE1.steps / bestBn.stepsPerSecond;
    const evals = FIGURE1.evaluationsPerNetwork * (e.baseline + e.batchnorm);
    const total = train + evals;
    // The two runs are independent (figure1 trains them in worker threads): on two free cores, the longer one.
    const parallel = Math.max(
      FIGURE1.steps / base.stepsPerSecond + FIGURE1.evaluationsPerNetwork * e.baseline,
      FIGURE1.steps / bestBn.stepsPerSecond + FIGURE1.evaluationsPerNetwork * e.batchnorm,
    );
    figure1 = {
      config: bestBn.config,
      trainingSeconds: train,
      evaluationSeconds: evals,
      secondsOneCore: total,
      secondsTwoWorkers: parallel,
      secondsPerEvaluation: e,
      target: TARGETS.figure1Seconds,
      assumptions: `${FIGURE1.networks} networks × (${FIGURE1.steps} steps + ${FIGURE1.evaluationsPerNetwork} evaluations of 10,000 images), one seed; evaluation without checkpoint writes`,
    };
    ratios.figure1 = figure1;
    // `covshift figure1` trains the two networks side by side when there are two cores: judge what it does.
    const asRun = machine.cores >= 2 ? parallel : total;
    lines.push([
      "Figure 1 run time (one seed)",
      `${fmt(asRun, 0)} s`,
      `≤ ${TARGETS.figure1Seconds} s`,
      verdict(asRun <= TARGETS.figure1Seconds),
      `${bestBn.config}: 2 × 50,000 steps ${fmt(train, 0)} s + 2 × 100 evaluations ${fmt(evals, 0)} s ` +
        `(one eval: ${fmt(e.baseline * 1e3, 0)} / ${fmt(e.batchnorm * 1e3, 0)} ms no BN / BN) = ${fmt(total, 0)} s one after the other; ` +
        `${machine.cores >= 2 ? "the two side by side, as figure1 runs them on 2 cores" : "on one core, one after the other"}: ${fmt(asRun, 0)} s ` +
        `(the real command: node bin/covshift.js figure1 --seeds 1)`,
    ]);
  }
  if (lines.length > 0) {
    say();
    say("Against the targets");
    say(table(["", "measured", "target", "", "detail"], lines, "lrrll"));
    const busiest = Math.max(...machine.loadAverageStart.slice(0, 1), ...machine.loadAverageEnd.slice(0, 1), ...Object.values(loadAt));
    if (busiest > machine.cores) {
      say(
        `caution: the machine was busy (1-min load up to ${busiest.toFixed(1)} on ${machine.cores} cores): every figure is a lower bound, ` +
          (interleaved?.works.length
            ? "the side-by-side ratios took turns under the same load but a multi-threaded peer suffers more from other jobs than a single-threaded side; "
            : "and a ratio against a peer measured minutes apart can move either way; ") +
          "rerun on an idle machine to judge the targets",
      );
    }
  }
  const allNotes = [...notes, ...(interleaved?.notes ?? []), ...(torch?.notes ?? []), ...(tfjs?.notes ?? [])];
  if (torch?.available) allNotes.push(`PyTorch ${torch.torch} (${torch.python}), default threads ${torch.defaultThreads}`);
  else if (interleaved?.works.some((w) => w.contenders.some((c) => c.side === "pytorch"))) allNotes.push(`PyTorch via ${torchPython()} bench/torch_bench.py --serve, one driver per thread count`);
  if (tfjs?.available) allNotes.push(`TF.js ${tfjs.version}: wasm backend with ${tfjs.mlp.find((r) => r.backend === "wasm")?.threads ?? "?"} thread(s), binaries from node_modules`);
  if (allNotes.length > 0) {
    say();
    for (const n of allNotes) say(`note: ${n}`);
  }
  say();
  say(`load average at end: ${loadString(machine.loadAverageEnd)}; total ${fmt((performance.now() - t0) / 1000, 0)} s`);

  const results = {
    startedAt,
    mode: options.quick ? "quick" : "full",
    sections: options.sections,
    machine,
    method: { ...effort, summary: "best of timed rounds after a warm-up; medians kept alongside" },
    definitions: {
      bnGBs: BN_GBS_DEFINITION,
      memoryCopyGBs: "Float32Array.set of 64 MiB; bytes read + bytes written, per second",
      gemmGflops: "2·M·N·K / seconds per call / 1e9",
      convGflops: `${convFlops} flop per step (forward, dW and dx GEMMs) / seconds per step / 1e9`,
    },
    targets: TARGETS,
    covshift: { default: defaultPath, backends: configLabels, mlp, evaluation, gemm, batchnorm: bn, memoryCopy: copy, conv, threads },
    // Without the tuned sections the peers ran only in the interleaved rounds: their figures in the old shape.
    pytorch: torch ?? (interleaved ? torchFromRounds(interleaved) : null),
    tfjs: tfjs ?? (interleaved ? tfjsFromRounds(interleaved) : null),
    /** The default path against the peers in interleaved rounds: every round's steps, wall and CPU time per side. */
    interleaved,
    ratios,
    notes: allNotes,
    seconds: (performance.now() - t0) / 1000,
  };
  mkdirSync(dirname(options.json), { recursive: true });
  writeFileSync(options.json, JSON.stringify(results, null, 2) + "\n");
  say(`wrote ${options.json}`);
  console.log(out.join("\n"));
}

/** The commit measured, and whether the working tree differed from it (other work in progress). */
function gitState(): { commit: string; dirtyFiles: number } | null {
  const run = (args: string[]) => spawnSync("git", args, { encoding: "utf8", cwd: fileURLToPath(new URL("../..", import.meta.url)) });
  const head = run(["rev-parse", "HEAD"]);
  if (head.status !== 0) return null;
  const status = run(["status", "--porcelain", "--untracked-files=no"]);
  return { commit: head.stdout.trim(), dirtyFiles: status.stdout.split("\n").filter(Boolean).length };
}

/** One side's MLP figures in the shape of the one-shot results (bench/defaultPath.ts, bench/torch.ts), and its CPU per step. */
function sideRow(c: ContenderSummary) {
  return { network: "batchnorm" as const, stepsPerSecond: c.stepsPerSecond, medianStepsPerSecond: c.medianStepsPerSecond, msPerStep: c.msPerStep, cpuMsPerStep: c.cpuMsPerStep };
}

/** PyTorch's interleaved figures as bench.json's `pytorch` (TorchResults): the BN MLP and the conv step per thread count. */
function torchFromRounds(r: InterleavedResults): TorchResults | null {
  const of = (work: string) => r.works.find((w) => w.work === work)?.contenders.filter((c) => c.side === "pytorch") ?? [];
  const mlp = of("mlp-bn");
  const conv = of("conv");
  const any = mlp[0] ?? conv[0];
  if (any === undefined) return null;
  return {
    available: true,
    notes: ["PyTorch measured only in the interleaved rounds beside covshift's default path (see `interleaved`); the tuned sections' peers run with --only mlp,gemm,bn,conv"],
    python: torchPython(),
    torch: any.version,
    mlp: mlp.map((c) => ({ threads: c.threads ?? 1, ...sideRow(c) })),
    gemm: [],
    bn: [],
    conv: conv.map((c) => ({ threads: c.threads ?? 1, msPerStep: c.msPerStep, medianMsPerStep: c.medianMsPerStep })),
  };
}

/** TF.js's interleaved figures as bench.json's `tfjs` (TfjsResults). */
function tfjsFromRounds(r: InterleavedResults): TfjsResults | null {
  const mlp = r.works.find((w) => w.work === "mlp-bn")?.contenders.filter((c) => c.side === "tfjs") ?? [];
  if (mlp.length === 0) return null;
  return {
    available: true,
    notes: ["TF.js measured only in the interleaved rounds beside covshift's default path (see `interleaved`)"],
    version: mlp[0].version,
    mlp: mlp.map((c) => ({ backend: c.backend ?? "?", threads: c.threads ?? 1, network: "batchnorm" as const, stepsPerSecond: c.stepsPerSecond, medianStepsPerSecond: c.medianStepsPerSecond, msPerStep: c.msPerStep })),
  };
}

function bestBy<T>(items: T[], key: (t: T) => number): T | undefined {
  let best: T | undefined;
  for (const t of items) if (best === undefined || key(t) > key(best)) best = t;
  return best;
}

function bestEntry(record: Record<string, number>): [string, number] {
  const entries = Object.entries(record).filter(([, v]) => Number.isFinite(v));
  if (entries.length === 0) return ["—", NaN];
  return entries.reduce((a, b) => (b[1] > a[1] ? b : a));
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exitCode = 1;
});
