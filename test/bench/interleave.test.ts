/**
 * The bench's side-by-side comparison (bench/interleave.ts, bench/driver.ts):
 * no timing is asserted. What is checked:
 *  - the arithmetic of the reported ratios on hand-made rounds: best ÷ best,
 *    the median of per-round ratios against the peer's best configuration in
 *    each round, per-configuration ratios, CPU per step, the round order;
 *  - the driver protocol: covshift's default-path driver (a fresh node)
 *    answers hello, prepare, run and quit, and refuses bad commands with a
 *    reason; PyTorch's driver (bench/torch_bench.py --serve) the same, and
 *    says "unavailable" when torch cannot be imported — skipped without
 *    /usr/bin/python3 or torch; TF.js's driver when bench/peers is installed.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Driver, settle } from "../../bench/driver.js";
import { contenderSpecs, peerRatio, roundOrder, summarizeRounds, type ContenderSummary, type RoundRecord } from "../../bench/interleave.js";
import { describeOrSkip } from "../skip.js";

/** Rounds with the given steps/s (1 s of wall time each) and CPU seconds per round. */
function rounds(rates: number[], cpuPerRound = 1): RoundRecord[] {
  return rates.map((r, round) => ({ round, slot: 0, at: round, load1: 0, steps: r, wallSeconds: 1, cpuSeconds: cpuPerRound, settleSeconds: 0, settleCpuSeconds: 0, idleCpuSeconds: 0.01, idleWallSeconds: 2 }));
}

function side(id: string, s: ContenderSummary["side"], rates: number[], cpuPerRound = 1): ContenderSummary {
  const r = rounds(rates, cpuPerRound);
  return { id, side: s, label: id, rounds: r, ...summarizeRounds(r) };
}

describe("interleaved rounds: the reported figures", () => {
  it("summarizeRounds: best and median steps/s, ms per step, CPU ms per step (median and best), idle CPU fraction", () => {
    const s = summarizeRounds([...rounds([100, 300, 200, 400]), ...rounds([50], 0.5)].map((r, i) => ({ ...r, round: i })));
    assert.equal(s.stepsPerSecond, 400);
    assert.equal(s.medianStepsPerSecond, 200); // of 50, 100, 200, 300, 400
    assert.equal(s.msPerStep, 2.5);
    assert.equal(s.medianMsPerStep, 5);
    // CPU per step: 1 s over 100/300/200/400 steps, 0.5 s over 50 → 10, 3.33, 5, 2.5, 10 ms; median 5, best 2.5.
    assert.equal(s.cpuMsPerStep, 5);
    assert.equal(s.bestCpuMsPerStep, 2.5);
    assert.equal(s.idleCpuFraction, 0.05 / 10);
  });

  it("an even number of rounds: the median is the mean of the middle two", () => {
    assert.equal(summarizeRounds(rounds([100, 400, 200, 300])).medianStepsPerSecond, 250);
  });

  it("peerRatio: best ÷ best against the best configuration, per-round ratios against each round's best configuration", () => {
    const cov = side("covshift", "covshift", [100, 120, 90]);
    // Configuration a is better in rounds 0 and 2, b in round 1 and holds the best round overall.
    const a = side("a", "pytorch", [50, 40, 90], 2);
    const b = side("b", "pytorch", [40, 150, 30], 4);
    const p = peerRatio(cov, [a, b])!;
    assert.equal(p.bestConfig, "b");
    assert.equal(p.bestOverBest, 120 / 150);
    assert.deepEqual(p.roundRatios, [100 / 50, 120 / 150, 90 / 90]);
    assert.equal(p.medianRoundRatio, 1);
    assert.equal(p.minRoundRatio, 0.8);
    assert.equal(p.maxRoundRatio, 2);
    assert.equal(p.rounds, 3);
    assert.equal(p.perConfig.a.bestOverBest, 120 / 90);
    assert.equal(p.perConfig.a.medianRoundRatio, 2); // 100/50, 120/40, 90/90 → 2, 3, 1
    // CPU: covshift 1 s per round over 100, 120, 90 steps (median 1/100 s); a: 2 s over 50, 40, 90 (median 2/50 s).
    assert.ok(Math.abs(p.perConfig.a.cpuRatio - (2 / 50 / (1 / 100))) < 1e-12);
  });

  it("peerRatio: a round the peer missed (its driver dropped out) is left out, not counted as zero", () => {
    const cov = side("covshift", "covshift", [100, 100, 100]);
    const peer = { ...side("p", "tfjs", [10, 20]) };
    const p = peerRatio(cov, [peer])!;
    assert.deepEqual(p.roundRatios, [10, 5]);
    assert.equal(p.rounds, 2);
    assert.equal(peerRatio(cov, []), undefined);
  });

  it("roundOrder: the given order in even rounds, reversed in odd ones", () => {
    assert.deepEqual(roundOrder(["c", "t1", "t2"], 0), ["c", "t1", "t2"]);
    assert.deepEqual(roundOrder(["c", "t1", "t2"], 1), ["t2", "t1", "c"]);
    assert.deepEqual(roundOrder(["c", "t1", "t2"], 2), ["c", "t1", "t2"]);
  });

  it("settle: waits while the process keeps using CPU, and stops at the first quiet window", async () => {
    // A fake CPU clock: +1 s of CPU between each of the first readings (busy), then flat (quiet).
    let readings = 0;
    const cpuNow = () => Math.min(++readings, 7);
    const s = await settle(cpuNow, 60_000, 1);
    // Readings: the start, then two per window; busy windows (1,2)→(3,4)… until the clock stops at 7.
    assert.ok(readings >= 8 && readings <= 10, `readings ${readings}`);
    assert.ok(s.cpu >= 5, `cpu ${s.cpu}`);
    // A process that never goes quiet is waited for at most maxMs.
    let busy = 0;
    const never = await settle(() => (busy += 1), 20, 1);
    assert.ok(never.cpu > 0 && never.wall >= 0.02, JSON.stringify(never));
  });

  it("the drivers: covshift first, PyTorch per thread count (both works), TF.js per backend (MLP only)", () => {
    const specs = contenderSpecs({ python: "/usr/bin/python3", torchThreads: [1, 2], tfjsBackends: ["wasm", "cpu"] });
    assert.deepEqual(specs.map((s) => s.id), ["covshift", "pytorch-1", "pytorch-2", "tfjs-wasm", "tfjs-cpu"]);
    assert.deepEqual(specs.find((s) => s.id === "pytorch-2")!.args.slice(1), ["--serve", "--threads", "2"]);
    assert.deepEqual(specs.find((s) => s.id === "tfjs-cpu")!.works, ["mlp-bn"]);
    for (const s of specs) if (s.command === process.execPath) assert.ok(existsSync(s.args[0]), `${s.args[0]} is built`);
  });
});

/** The protocol as every driver speaks it: hello, refusals, prepare, run, quit. */
async function protocol(driver: Driver, side: string): Promise<void> {
  try {
    const hello = await driver.hello();
    assert.equal(hello.side, side);
    assert.ok(hello.work.includes("mlp-bn"), `work ${hello.work}`);
    assert.ok(hello.threads >= 1);
    const early = await driver.request({ op: "run", work: "mlp-bn", seconds: 0 });
    assert.equal(early.ok, false);
    assert.match(String(!early.ok && early.error), /not prepared/);
    const unknown = await driver.request({ op: "prepare", work: "no-such-work" });
    assert.equal(unknown.ok, false);
    assert.match(String(!unknown.ok && unknown.error), /no-such-work/);
    const badOp = await driver.request({ op: "dance" });
    assert.match(String(!badOp.ok && badOp.error), /unknown op/);
    await driver.prepare("mlp-bn", 0);
    const r = await driver.run("mlp-bn", 0, 1);
    assert.equal(r.work, "mlp-bn");
    assert.ok(r.steps >= 1, `steps ${r.steps}`);
    assert.ok(r.wallSeconds > 0 && r.cpuSeconds >= 0 && r.idleCpuSeconds >= 0 && r.idleWallSeconds >= 0, JSON.stringify(r));
    assert.ok(r.settleSeconds > 0 && r.settleCpuSeconds >= 0, `the driver settled before answering: ${JSON.stringify(r)}`);
  } finally {
    await driver.close();
  }
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

describe("interleaved rounds: the driver protocol", () => {
  it("covshift's default path driver (node dist/bench/defaultPath.js --serve)", async () => {
    await protocol(new Driver("covshift", process.execPath, [here("../../bench/defaultPath.js"), "--serve"]), "covshift");
  });

  it("a driver that exits is reported with its stderr, not waited for", async () => {
    const d = new Driver("broken", process.execPath, ["-e", "console.error('boom: no such side'); process.exit(3)"]);
    await assert.rejects(() => d.hello(), /broken: .*(closed its output|exited).*boom: no such side/);
    await d.close();
  });
});

const python = process.env.COVSHIFT_BENCH_PYTHON ?? "/usr/bin/python3";
const torchScript = here("../../../bench/torch_bench.py");
const hasPython = spawnSync(python, ["-c", "pass"]).status === 0;
const hasTorch = hasPython && spawnSync(python, ["-c", "import torch"]).status === 0;

describeOrSkip("interleaved rounds: PyTorch's driver (bench/torch_bench.py --serve)", { skip: hasTorch ? false : `no torch for ${python}` }, () => {
  it("answers the protocol at one thread", async () => {
    await protocol(new Driver("pytorch", python, [torchScript, "--serve", "--threads", "1"]), "pytorch");
  });

  it("without torch (python -S: no site packages) it answers the first command 'unavailable', with the import error", async () => {
    const d = new Driver("pytorch", python, ["-S", torchScript, "--serve", "--threads", "1"]);
    const r = await d.request({ op: "hello" });
    assert.equal(r.ok, false);
    assert.match(String(!r.ok && r.unavailable), /import torch failed/);
    await d.close();
  });
});

const tfjsInstalled = existsSync(here("../../../bench/peers/node_modules/@tensorflow/tfjs-backend-wasm/package.json"));

describeOrSkip("interleaved rounds: TF.js's driver (dist/bench/tfjsServe.js)", { skip: tfjsInstalled ? false : "TF.js not installed in bench/peers" }, () => {
  it("answers the protocol on the cpu backend", async () => {
    await protocol(new Driver("tfjs", process.execPath, [here("../../bench/tfjsServe.js"), "--backend", "cpu"]), "tfjs");
  });
});
