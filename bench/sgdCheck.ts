/**
 * What SGD.step()'s check of the updated values costs (issue 15): the §4.1
 * MLP training step (as `npm run bench`'s mlp row: 784-100-100-100-10, BN,
 * batch 60, momentum 0.9, inside scope()) three ways, on one model, in
 * rounds that alternate between them so the machine's load hits all alike:
 *
 *   unchecked   the update before any check of its results: gradients
 *               checked, then the backend's in-place sgdStep;
 *   kept aside  the check as SGD.step() first had it: each parameter and
 *               buffer copied aside, updated in place, both scanned for
 *               non-finite values (put back on a failure);
 *   optim.SGD   the step as it is: one fused pass (sgdStepChecked) computes
 *               each update into staging storage and counts non-finite
 *               gradients and results; then the parameters get the staged
 *               values and the staged momentum buffers are swapped in.
 *
 * Each is timed by the wall clock and by this process's CPU time (which
 * other jobs on a busy machine disturb less); both are best of the rounds.
 *
 *   npm run build && node dist/bench/sgdCheck.js [--pairs 8]
 */
import { loadavg } from "node:os";
import { backendFor } from "../src/backend/index.js";
import { allocatePersistent, type Storage } from "../src/backend/storage.js";
import { defaultFigure1Config } from "../src/experiments/figure1/config.js";
import { buildFigure1Network } from "../src/experiments/figure1/network.js";
import { nn, optim, scope, Tensor } from "../src/index.js";
import { Generator } from "../src/tensor/random.js";
import { backendConfigs } from "./covshift.js";
import { alternate, random } from "./measure.js";

const pairs = Number(process.argv[process.argv.indexOf("--pairs") + 1]) || 8;
const BATCH = defaultFigure1Config.batchSize;
const { configs } = await backendConfigs(["reference", "wasm-relaxed-simd", "wasm-simd"]);
const rows: { config: string; wall: number[]; cpu: number[]; alone: number[] }[] = [];
for (const c of configs.filter((c) => c.threads === 1)) {
  c.activate();
  const { model } = buildFigure1Network("batchnorm", defaultFigure1Config, new Generator(0));
  const { lr, momentum } = defaultFigure1Config;
  const checked = new optim.SGD(model.parameters(), { lr, momentum });
  const params = model.parameters();
  const velocity: (Storage | null)[] = params.map(() => null);
  // The step before the check: gradients checked, then one sgdStep per parameter.
  const unchecked = () => {
    for (const p of params) if (backendFor(p.dtype).countNonFinite(p.grad!.data) > 0) throw new Error("diverged");
    params.forEach((p, i) => {
      const first = velocity[i] === null;
      if (first) velocity[i] = allocatePersistent(p.dtype, p.size);
      backendFor(p.dtype).sgdStep(p.data, p.grad!.data, velocity[i], first, lr, momentum, 0, 0, false);
    });
  };
  // The check as it was: kept aside, updated in place, scanned.
  const asideVelocity: (Storage | null)[] = params.map(() => null);
  const aside = params.map((p) => ({ p: new Float32Array(p.size), v: new Float32Array(p.size) }));
  const keptAside = () => {
    for (const p of params) if (backendFor(p.dtype).countNonFinite(p.grad!.data) > 0) throw new Error("diverged");
    params.forEach((p, i) => {
      const first = asideVelocity[i] === null;
      if (first) asideVelocity[i] = allocatePersistent(p.dtype, p.size);
      const v = asideVelocity[i]!;
      aside[i].p.set(p.data);
      if (!first) aside[i].v.set(v);
      const be = backendFor(p.dtype);
      be.sgdStep(p.data, p.grad!.data, v, first, lr, momentum, 0, 0, false);
      if (be.countNonFinite(p.data) > 0 || be.countNonFinite(v) > 0) throw new Error("diverged");
    });
  };
  const lossFn = new nn.CrossEntropyLoss();
  const x = new Tensor(random(BATCH * 784, 11).map((v) => v + 0.5), [BATCH, 784]);
  const labels = Int32Array.from({ length: BATCH }, (_, i) => (i * 7) % 10);
  const stepWith = (update: () => void) => () =>
    scope(() => {
      checked.zeroGrad({ setToNone: false });
      lossFn.forward(model.forward(x), labels).backward();
      update();
    });
  const updates = [unchecked, keptAside, () => checked.step()];
  const rounds = { rounds: pairs, roundSeconds: 0.15, warmupMs: 300 };
  const ms = (t: number[]) => t.map((s) => s * 1e3);
  const steps = alternate(updates.map(stepWith), rounds);
  // The updates alone (the gradients of the last step stay), whose differences are small against a step: measured apart, they are less noisy.
  const alone = alternate(updates, rounds);
  rows.push({ config: c.label, wall: ms(steps.wall), cpu: ms(steps.cpu), alone: ms(alone.cpu) });
}


const pct = (a: number, base: number) => `${a >= base ? "+" : ""}${((a / base - 1) * 100).toFixed(2)}%`;
console.log(`MLP training step (784-100-100-100-10 BN, batch 60), best of ${pairs} alternating rounds; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log("config               | clock | unchecked   | kept aside (cost)     | optim.SGD, fused (cost)");
for (const r of rows) {
  for (const [clock, t] of [["cpu", r.cpu], ["wall", r.wall]] as const) {
    console.log(
      `${r.config.padEnd(20)} | ${clock.padEnd(5)} | ${t[0].toFixed(3).padStart(8)} ms | ${t[1].toFixed(3).padStart(8)} ms (${pct(t[1], t[0]).padStart(7)}) | ${t[2].toFixed(3).padStart(8)} ms (${pct(t[2], t[0]).padStart(7)})`,
    );
  }
}
console.log("\nThe updates alone, CPU time, and what each check adds as a share of the unchecked step's CPU time:");
console.log("config               | unchecked   | kept aside            | optim.SGD, fused");
for (const r of rows) {
  const [u, k, f] = r.alone;
  const share = (t: number) => `${t >= u ? "+" : ""}${(((t - u) / r.cpu[0]) * 100).toFixed(2)}%`;
  console.log(`${r.config.padEnd(20)} | ${u.toFixed(3).padStart(8)} ms | ${k.toFixed(3).padStart(8)} ms (${share(k).padStart(7)}) | ${f.toFixed(3).padStart(8)} ms (${share(f).padStart(7)})`);
}
