/**
 * covshift's default path against PyTorch and TensorFlow.js, measured
 * interleaved: every side runs in its own persistent process (bench/driver.ts)
 * and the sides take turns, round after round — covshift, PyTorch 1 thread,
 * PyTorch 2 threads, TF.js wasm, TF.js cpu, then the same in reverse order,
 * and so on — each turn running the step for a fixed time. On this virtual
 * machine either side's speed moves by ±30% from one minute to the next;
 * measured minutes apart, their ratio mostly measures that drift. Taking
 * turns every fraction of a second puts both sides under the same drift.
 *
 * Reported per side and work: the best and the median round (steps/s), the
 * CPU time per step (median and best round; the process's, all its
 * threads), and every round's steps, wall and CPU time in the JSON. Against
 * each peer: best ÷ best over the same window, and the median of the
 * per-round ratios — covshift's round ÷ the peer's best configuration in the
 * same round (the rounds are adjacent, the order reversed every other round
 * so neither side always goes first).
 *
 * Run by `npm run bench` when both the default and peers sections are on:
 *   node dist/bench/index.js --only default,peers [--quick] [--rounds K]
 */
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Driver, type HelloReply, type RunReply } from "./driver.js";
import { fmt, table } from "./table.js";

/** The work measured side by side: the §4.1 MLP step with BN (batch 60) and the Conv2d+BN2d+ReLU step at (64, 32, 16, 16). */
export const WORKS = ["mlp-bn", "conv"] as const;
export type Work = (typeof WORKS)[number];

export type Side = "covshift" | "pytorch" | "tfjs";

export interface ContenderSpec {
  id: string;
  side: Side;
  /** Row label, completed from the driver's hello (version, backend). */
  label: string;
  command: string;
  args: string[];
  works: readonly Work[];
}

export interface RoundRecord {
  round: number;
  /** Position in the round's order (0 = first). */
  slot: number;
  /** Seconds since the comparison started, when the turn began. */
  at: number;
  /** 1-minute load average when the turn began. */
  load1: number;
  steps: number;
  wallSeconds: number;
  cpuSeconds: number;
  /** How long the process took to go quiet after its timed steps (bench/driver.ts settle), and the CPU it used meanwhile. */
  settleSeconds: number;
  settleCpuSeconds: number;
  /** CPU the process spent while the other sides had their turns since its previous one. */
  idleCpuSeconds: number;
  idleWallSeconds: number;
}

export interface ContenderSummary {
  id: string;
  side: Side;
  label: string;
  version?: string;
  threads?: number;
  backend?: string;
  rounds: RoundRecord[];
  stepsPerSecond: number;
  medianStepsPerSecond: number;
  msPerStep: number;
  medianMsPerStep: number;
  /** Process CPU ms per step: the median round and the best (lowest) round. */
  cpuMsPerStep: number;
  bestCpuMsPerStep: number;
  /** CPU the process spent while sitting out, as a fraction of the wall time it sat out (all rounds). */
  idleCpuFraction: number;
}

export interface PeerRatio {
  peer: Side;
  /** The peer's configuration with the best round. */
  bestConfig: string;
  /** covshift's best round ÷ the peer's best round (any configuration), steps/s. */
  bestOverBest: number;
  /** Median over rounds of covshift's steps/s ÷ the best of the peer's configurations in the same round. */
  medianRoundRatio: number;
  minRoundRatio: number;
  maxRoundRatio: number;
  roundRatios: number[];
  /** Rounds in which both sides ran. */
  rounds: number;
  /** Per configuration of the peer: best ÷ best, the median per-round ratio, and its CPU ms per step ÷ covshift's (medians). */
  perConfig: Record<string, { bestOverBest: number; medianRoundRatio: number; cpuRatio: number }>;
}

export interface InterleavedWork {
  work: Work;
  rounds: number;
  roundSeconds: number;
  contenders: ContenderSummary[];
  /** By peer side: "pytorch", "tfjs". */
  ratios: Partial<Record<Side, PeerRatio>>;
}

export interface InterleavedResults {
  method: string;
  rounds: number;
  notes: string[];
  loadStart: number[];
  loadEnd: number[];
  works: InterleavedWork[];
  seconds: number;
}

export interface InterleaveOptions {
  rounds: number;
  roundSeconds: Record<Work, number>;
  /** Warm-up of each side's step when it is built (V8 and PyTorch tier up). */
  warmupSeconds: number;
  /** Untimed calls at the start of each turn (caches after another side ran). */
  warmupCalls: number;
  works: readonly Work[];
  python: string;
  /** PyTorch thread counts, one driver each. */
  torchThreads: number[];
  tfjsBackends: string[];
}

export const INTERLEAVE_DEFAULTS: Record<"quick" | "full", Omit<InterleaveOptions, "python">> = {
  quick: { rounds: 3, roundSeconds: { "mlp-bn": 0.2, conv: 0.3 }, warmupSeconds: 0.3, warmupCalls: 1, works: WORKS, torchThreads: [1, 2], tfjsBackends: ["wasm", "cpu"] },
  full: { rounds: 10, roundSeconds: { "mlp-bn": 0.5, conv: 1 }, warmupSeconds: 1, warmupCalls: 1, works: WORKS, torchThreads: [1, 2], tfjsBackends: ["wasm", "cpu"] },
};

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
/** bench/torch_bench.py, found from dist/bench/ or bench/. */
const TORCH_SCRIPT = here(import.meta.url.includes("/dist/bench/") ? "../../bench/torch_bench.py" : "./torch_bench.py");

/** The drivers: covshift's default path (a fresh node, no flags), PyTorch per thread count, TF.js per backend. */
export function contenderSpecs(o: Pick<InterleaveOptions, "python" | "torchThreads" | "tfjsBackends">): ContenderSpec[] {
  return [
    { id: "covshift", side: "covshift", label: "covshift default", command: process.execPath, args: [here("./defaultPath.js"), "--serve"], works: ["mlp-bn", "conv"] },
    ...o.torchThreads.map((t): ContenderSpec => ({
      id: `pytorch-${t}`,
      side: "pytorch",
      label: `PyTorch, ${t} thread${t > 1 ? "s" : ""}`,
      command: o.python,
      args: [TORCH_SCRIPT, "--serve", "--threads", String(t)],
      works: ["mlp-bn", "conv"],
    })),
    ...o.tfjsBackends.map((b): ContenderSpec => ({
      id: `tfjs-${b}`,
      side: "tfjs",
      label: `TF.js ${b}`,
      command: process.execPath,
      args: [here("./tfjsServe.js"), "--backend", b],
      works: ["mlp-bn"],
    })),
  ];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Best and median steps/s, ms per step and CPU per step over one side's rounds. */
export function summarizeRounds(rounds: RoundRecord[]): Pick<
  ContenderSummary,
  "stepsPerSecond" | "medianStepsPerSecond" | "msPerStep" | "medianMsPerStep" | "cpuMsPerStep" | "bestCpuMsPerStep" | "idleCpuFraction"
> {
  const rate = rounds.map((r) => r.steps / r.wallSeconds);
  const cpu = rounds.map((r) => (r.cpuSeconds / r.steps) * 1e3);
  const idleWall = rounds.reduce((a, r) => a + r.idleWallSeconds, 0);
  const best = Math.max(...rate);
  const med = median(rate);
  return {
    stepsPerSecond: best,
    medianStepsPerSecond: med,
    msPerStep: 1e3 / best,
    medianMsPerStep: 1e3 / med,
    cpuMsPerStep: median(cpu),
    bestCpuMsPerStep: Math.min(...cpu),
    idleCpuFraction: idleWall > 0 ? rounds.reduce((a, r) => a + r.idleCpuSeconds, 0) / idleWall : 0,
  };
}

/**
 * covshift against one peer side (all its configurations): best ÷ best, and
 * the per-round ratios against the peer's best configuration in each round.
 */
export function peerRatio(covshift: ContenderSummary, configs: ContenderSummary[]): PeerRatio | undefined {
  if (configs.length === 0 || covshift.rounds.length === 0) return undefined;
  const rateIn = (c: ContenderSummary, round: number) => {
    const r = c.rounds.find((x) => x.round === round);
    return r === undefined ? undefined : r.steps / r.wallSeconds;
  };
  const best = configs.reduce((a, b) => (b.stepsPerSecond > a.stepsPerSecond ? b : a));
  const roundRatios: number[] = [];
  for (const r of covshift.rounds) {
    const peer = Math.max(...configs.map((c) => rateIn(c, r.round) ?? -Infinity));
    if (peer > 0) roundRatios.push(r.steps / r.wallSeconds / peer);
  }
  const perConfig: PeerRatio["perConfig"] = {};
  for (const c of configs) {
    const ratios = covshift.rounds.flatMap((r) => {
      const p = rateIn(c, r.round);
      return p === undefined ? [] : [r.steps / r.wallSeconds / p];
    });
    perConfig[c.id] = { bestOverBest: covshift.stepsPerSecond / c.stepsPerSecond, medianRoundRatio: median(ratios), cpuRatio: c.cpuMsPerStep / covshift.cpuMsPerStep };
  }
  return {
    peer: best.side,
    bestConfig: best.id,
    bestOverBest: covshift.stepsPerSecond / best.stepsPerSecond,
    medianRoundRatio: median(roundRatios),
    minRoundRatio: Math.min(...roundRatios),
    maxRoundRatio: Math.max(...roundRatios),
    roundRatios,
    rounds: roundRatios.length,
    perConfig,
  };
}

/** The order of round r: the drivers as given, reversed in every other round. */
export function roundOrder<T>(items: T[], round: number): T[] {
  return round % 2 === 0 ? [...items] : [...items].reverse();
}

/** Starts the drivers, runs the interleaved rounds for each work, and stops them. */
export async function interleave(o: InterleaveOptions, log: (s: string) => void): Promise<InterleavedResults> {
  const t0 = performance.now();
  const notes: string[] = [];
  const loadStart = loadavg();
  const live: { spec: ContenderSpec; driver: Driver; hello: HelloReply }[] = [];
  const specs = contenderSpecs(o);
  // Start every process first (their imports overlap, before anything is timed), then greet them.
  const started = specs.map((spec) => ({ spec, driver: new Driver(spec.label, spec.command, spec.args) }));
  for (const { spec, driver } of started) {
    try {
      const hello = await driver.hello();
      live.push({ spec, driver, hello });
    } catch (err) {
      notes.push(`${spec.label} not measured side by side: ${(err as Error).message}`);
      await driver.close();
    }
  }
  const works: InterleavedWork[] = [];
  try {
    if (!live.some((c) => c.spec.side === "covshift")) {
      notes.push("covshift's driver did not start: no side-by-side comparison");
      return { method: METHOD, rounds: o.rounds, notes, loadStart, loadEnd: loadavg(), works, seconds: (performance.now() - t0) / 1000 };
    }
    for (const work of o.works) {
      const seconds = o.roundSeconds[work];
      const sides = live.filter((c) => c.spec.works.includes(work));
      const ready: typeof sides = [];
      for (const c of sides) {
        log(`side by side, ${work}: warming up ${c.spec.label}`);
        try {
          await c.driver.prepare(work, o.warmupSeconds);
          ready.push(c);
        } catch (err) {
          notes.push(`${c.spec.label}, ${work}: ${(err as Error).message}`);
        }
      }
      const rounds = new Map<string, RoundRecord[]>(ready.map((c) => [c.spec.id, []]));
      const dropped = new Set<string>();
      log(`side by side, ${work}: ${o.rounds} rounds of ${ready.map((c) => c.spec.label).join(", ")}, ${seconds} s each`);
      for (let round = 0; round < o.rounds; round++) {
        const order = roundOrder(ready.filter((c) => !dropped.has(c.spec.id)), round);
        for (const [slot, c] of order.entries()) {
          const at = (performance.now() - t0) / 1000;
          const load1 = loadavg()[0];
          let reply: RunReply;
          try {
            reply = await c.driver.run(work, seconds, o.warmupCalls);
          } catch (err) {
            notes.push(`${c.spec.label}, ${work}: dropped after round ${round}: ${(err as Error).message}`);
            dropped.add(c.spec.id);
            continue;
          }
          rounds.get(c.spec.id)!.push({
            round,
            slot,
            at,
            load1,
            steps: reply.steps,
            wallSeconds: reply.wallSeconds,
            cpuSeconds: reply.cpuSeconds,
            settleSeconds: reply.settleSeconds,
            settleCpuSeconds: reply.settleCpuSeconds,
            // The first turn's idle time includes the warm-ups of the others: not "sitting out a round".
            idleCpuSeconds: round === 0 ? 0 : reply.idleCpuSeconds,
            idleWallSeconds: round === 0 ? 0 : reply.idleWallSeconds,
          });
        }
      }
      const contenders: ContenderSummary[] = ready
        .filter((c) => rounds.get(c.spec.id)!.length > 0)
        .map((c) => ({
          id: c.spec.id,
          side: c.spec.side,
          label: describe(c.spec, c.hello),
          version: c.hello.version,
          threads: c.hello.threads,
          backend: typeof c.hello.backend === "string" ? c.hello.backend : undefined,
          rounds: rounds.get(c.spec.id)!,
          ...summarizeRounds(rounds.get(c.spec.id)!),
        }));
      const covshift = contenders.find((c) => c.side === "covshift");
      const ratios: InterleavedWork["ratios"] = {};
      if (covshift) {
        for (const side of ["pytorch", "tfjs"] as const) {
          const r = peerRatio(covshift, contenders.filter((c) => c.side === side));
          if (r) ratios[side] = r;
        }
      }
      works.push({ work, rounds: o.rounds, roundSeconds: seconds, contenders, ratios });
    }
  } finally {
    await Promise.all(started.map(({ driver }) => driver.close()));
  }
  return { method: METHOD, rounds: o.rounds, notes, loadStart, loadEnd: loadavg(), works, seconds: (performance.now() - t0) / 1000 };
}

const METHOD =
  "interleaved rounds: each side in its own persistent process (bench/driver.ts), one side running at a time, " +
  "the order reversed every other round; per round: untimed warm-up call(s), then the step for a fixed time; " +
  "wall and process CPU time per round";

function describe(spec: ContenderSpec, hello: HelloReply): string {
  if (spec.side === "covshift") return `covshift default (${String(hello.backend)}, ${hello.threads} thread${hello.threads > 1 ? "s" : ""}, plain loop)`;
  if (spec.side === "pytorch") return `PyTorch ${hello.version}, ${hello.threads} thread${hello.threads > 1 ? "s" : ""}`;
  return `TF.js ${hello.version} ${String(hello.backend)}`;
}

const WORK_TITLE: Record<Work, string> = {
  "mlp-bn": "MLP of §4.1 with BN, batch 60, one SGD step",
  conv: "Conv2d(32→32, 3×3) + BatchNorm2d + ReLU on (64, 32, 16, 16), one training step",
};

/** The side-by-side tables: per side, then covshift ÷ each peer. */
export function interleavedTables(r: InterleavedResults): string[] {
  const out: string[] = [];
  for (const w of r.works) {
    const loads = w.contenders.flatMap((c) => c.rounds.map((x) => x.load1));
    out.push("");
    out.push(
      `Side by side: ${WORK_TITLE[w.work]} — ${w.rounds} interleaved round${w.rounds > 1 ? "s" : ""} of ${w.roundSeconds} s per side ` +
        `(order reversed every other round; 1-min load ${fmt(Math.min(...loads), 1)}–${fmt(Math.max(...loads), 1)})`,
    );
    const conv = w.work === "conv";
    out.push(
      table(
        ["", "best steps/s", "median steps/s", "best ms/step", "CPU ms/step (median)", "CPU ÷ wall", "settle ms", "idle CPU"],
        w.contenders.map((c) => {
          const wall = c.rounds.reduce((a, x) => a + x.wallSeconds, 0);
          const cpu = c.rounds.reduce((a, x) => a + x.cpuSeconds, 0);
          return [
            c.label,
            fmt(c.stepsPerSecond, conv ? 1 : 0),
            fmt(c.medianStepsPerSecond, conv ? 1 : 0),
            fmt(c.msPerStep, 2),
            fmt(c.cpuMsPerStep, 2),
            fmt(cpu / wall, 2),
            fmt(median(c.rounds.map((x) => x.settleSeconds * 1e3)), 0),
            `${fmt(c.idleCpuFraction * 100, 1)}%`,
          ];
        }),
      ),
    );
    // Every round's figure, to see the drift the interleaving absorbs.
    const roundNumbers = [...new Set(w.contenders.flatMap((c) => c.rounds.map((x) => x.round)))].sort((a, b) => a - b);
    out.push(
      "",
      table(
        ["steps/s, round by round", ...roundNumbers.map((r) => String(r + 1))],
        w.contenders.map((c) => [
          c.label,
          ...roundNumbers.map((r) => {
            const x = c.rounds.find((y) => y.round === r);
            return x ? fmt(x.steps / x.wallSeconds, conv ? 1 : 0) : "—";
          }),
        ]),
      ),
    );
    const rows: string[][] = [];
    for (const [side, p] of Object.entries(w.ratios) as [Side, PeerRatio][]) {
      const name = side === "pytorch" ? "PyTorch" : "TF.js";
      rows.push([`covshift ÷ ${name}'s best`, `${fmt(p.bestOverBest, 2)}×`, `${fmt(p.medianRoundRatio, 2)}×`, `${fmt(p.minRoundRatio, 2)}–${fmt(p.maxRoundRatio, 2)}×`, String(p.rounds), p.bestConfig]);
      for (const [id, c] of Object.entries(p.perConfig)) {
        rows.push([`  ÷ ${id}`, `${fmt(c.bestOverBest, 2)}×`, `${fmt(c.medianRoundRatio, 2)}×`, "", "", `CPU per step: covshift ${fmt(c.cpuRatio, 2)}× less`]);
      }
    }
    if (rows.length > 0) out.push("", table(["", "best ÷ best", "median of rounds", "range of rounds", "rounds", "detail"], rows, "lrrrrl"));
  }
  out.push(
    "",
    "best ÷ best: each side's best round in the same window; median of rounds: covshift's turn ÷ the peer's best configuration's turn in the same round; " +
      "CPU ms/step: the process's CPU time (all threads) per step; CPU ÷ wall > 1: more than one core busy, < 1 (for one thread): the turns waited for a core, other jobs ran; " +
      "settle ms: how long a side's process took to go quiet after its turn (median; its spinning worker threads, waited out before the next turn); " +
      "idle CPU: what a side burned anyway while the others ran",
  );
  return out;
}
