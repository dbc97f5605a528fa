/**
 * `covshift jacobian`'s job module: one network in a worker thread of the
 * experiment runner (see runner/runner.ts, which owns the loop, checkpoints
 * and files). Figure 1's trainer (same seed, same batches) with the layer
 * Jacobians measured at every evaluation.
 */
import type { NetworkKind } from "../figure1/config.js";
import { Figure1Trainer, type ImageSet } from "../figure1/trainer.js";
import { CheckpointFields } from "../runner/checkpointState.js";
import { runJobInWorker } from "../runner/worker.js";
import { JacobianConfig, trainingConfig } from "./config.js";
import { measureJacobians } from "./jacobian.js";
import { emptyRun, recordMeasurement, type JacobianRun } from "./result.js";

export interface JacobianJobPayload {
  config: JacobianConfig;
  network: NetworkKind;
  train: ImageSet;
  test: ImageSet;
}

runJobInWorker<JacobianJobPayload>(({ payload: p }) => {
  const c = p.config;
  const trainer = new Figure1Trainer(p.network, c.seed, trainingConfig(c), p.train, p.test);
  const run: JacobianRun & { trainSeconds: number } = { ...emptyRun(p.network, c), trainSeconds: 0 };
  const probe = p.test.images.subarray(0, c.images * 784);
  let lossSum = 0;
  let lossCount = 0;
  return {
    trainer: {
      get step() {
        return trainer.step;
      },
      get done() {
        return trainer.done;
      },
      trainStep: () => {
        const loss = trainer.trainStep();
        lossSum += loss;
        lossCount++;
        return loss;
      },
      record: () => {
        const { accuracy } = trainer.evaluate();
        const tm = performance.now();
        const m = measureJacobians(trainer.model, probe, c.images);
        run.jacobianSeconds += (performance.now() - tm) / 1000;
        recordMeasurement(run, trainer.step, accuracy, m);
        const shown = { accuracy, loss: lossSum / lossCount };
        lossSum = 0;
        lossCount = 0;
        return shown;
      },
      checkpoint: () => {
        const saved = trainer.checkpoint();
        saved.state.jacobian = { run: structuredClone(run), lossSum, lossCount };
        return saved;
      },
      restore: (saved, path) => {
        // The trainer's own measurements are not used here (its record() never runs): no evaluations to check.
        trainer.restore(saved, path, { evaluations: 0 });
        const f = new CheckpointFields(path, saved.state).object("jacobian");
        const step = trainer.step;
        const restoredRun = f.object("run");
        if (restoredRun.str("network") !== p.network) restoredRun.fail("network", `is not ${p.network}`);
        const n = Math.floor(step / c.every);
        restoredRun.numbers("steps", n);
        restoredRun.numbers("testAccuracy", n, [0, 1]);
        restoredRun.num("wallSeconds", 0);
        restoredRun.num("jacobianSeconds", 0);
        lossSum = f.num("lossSum");
        lossCount = f.int("lossCount", 0, c.every);
        Object.assign(run, f.raw("run"), { trainSeconds: (f.raw("run") as { trainSeconds?: number }).trainSeconds ?? 0 });
      },
    },
    result: run,
    divergenceAdvice: `Lower --lr (now ${c.lr}).`,
    finish: () => {},
  };
});
