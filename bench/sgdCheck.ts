/**
 * What SGD.step()'s check of the updated values costs (issue 15): the §4.1
 * MLP training step (as `npm run bench`'s mlp row: 784-100-100-100-10, BN,
 * batch 60, momentum 0.9, inside scope()) with optim.SGD, against the same
 * step with the update as it was before the check (gradients checked, then
 * the backend's sgdStep, nothing kept aside). The two alternate round by
 * round on one model so the machine's load hits both alike.
 *
 *   npm run build && node dist/bench/sgdCheck.js [--pairs 8]
 */
import { backendFor } from "../src/backend/index.js";
import { allocatePersistent, type Storage } from "../src/backend/storage.js";
import { defaultFigure1Config } from "../src/experiments/figure1/config.js";
import { buildFigure1Network } from "../src/experiments/figure1/network.js";
import { nn, optim, scope, Tensor } from "../src/index.js";
import { Generator } from "../src/tensor/random.js";
import { backendConfigs } from "./covshift.js";
import { random, time } from "./measure.js";

const pairs = Number(process.argv[process.argv.indexOf("--pairs") + 1]) || 8;
const BATCH = defaultFigure1Config.batchSize;
const { configs } = await backendConfigs(["reference", "wasm-relaxed-simd", "wasm-simd"]);
const rows: { config: string; uncheckedMs: number; checkedMs: number; costPercent: number; extraMs: number }[] = [];
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
  const lossFn = new nn.CrossEntropyLoss();
  const x = new Tensor(random(BATCH * 784, 11).map((v) => v + 0.5), [BATCH, 784]);
  const labels = Int32Array.from({ length: BATCH }, (_, i) => (i * 7) % 10);
  const stepWith = (update: () => void) => () =>
    scope(() => {
      checked.zeroGrad({ setToNone: false });
      lossFn.forward(model.forward(x), labels).backward();
      update();
    });
  const a = stepWith(unchecked);
  const b = stepWith(() => checked.step());
  let bestA = Infinity;
  let bestB = Infinity;
  for (let i = 0; i < pairs; i++) {
    bestA = Math.min(bestA, time(a, { rounds: 5, roundSeconds: 0.1, warmupMs: 100 }).best);
    bestB = Math.min(bestB, time(b, { rounds: 5, roundSeconds: 0.1, warmupMs: 100 }).best);
  }
  // The added work alone: keep each parameter and buffer aside, scan both for non-finite values.
  const aside = params.map((p) => ({ p: new Float32Array(p.size), v: new Float32Array(p.size) }));
  const extra = time(() => {
    params.forEach((p, i) => {
      aside[i].p.set(p.data);
      aside[i].v.set(velocity[i]!);
      backendFor(p.dtype).countNonFinite(p.data);
      backendFor(p.dtype).countNonFinite(velocity[i]!);
    });
  }, { rounds: 10, roundSeconds: 0.05 }).best;
  rows.push({ config: c.label, uncheckedMs: bestA * 1e3, checkedMs: bestB * 1e3, costPercent: (bestB / bestA - 1) * 100, extraMs: extra * 1e3 });
}
console.log("MLP training step (784-100-100-100-10 BN, batch 60), best of alternating rounds:");
console.log("config               | step before the check | with the check | cost    | the added work alone");
for (const r of rows) {
  console.log(`${r.config.padEnd(20)} | ${r.uncheckedMs.toFixed(3).padStart(18)} ms | ${r.checkedMs.toFixed(3).padStart(11)} ms | ${r.costPercent >= 0 ? "+" : ""}${r.costPercent.toFixed(2)}% | ${r.extraMs.toFixed(3)} ms (${((r.extraMs / r.uncheckedMs) * 100).toFixed(2)}% of the step)`);
}
