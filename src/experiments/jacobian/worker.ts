/**
 * Worker thread: trains one network of `covshift jacobian` (figure1's
 * trainer: same seed, same batches) and measures its layer Jacobians every
 * `every` steps, checkpointing there and when asked to stop.
 */
import { parentPort, workerData } from "node:worker_threads";
import { existsSync, rmSync } from "node:fs";
import { useBackend } from "../backend.js";
import { readJson, writeFileAtomic } from "../../io/files.js";
import type { NetworkKind } from "../figure1/config.js";
import { Figure1Checkpoint, Figure1Trainer, ImageSet } from "../figure1/trainer.js";
import { JacobianConfig, trainingConfig } from "./config.js";
import { measureJacobians } from "./jacobian.js";
import { emptyRun, JacobianRun, recordMeasurement } from "./result.js";

export interface JacobianWorkerData {
  config: JacobianConfig;
  network: NetworkKind;
  train: ImageSet;
  test: ImageSet;
  checkpointPath: string;
  resultPath: string;
  resume: boolean;
  threads: number;
  stopFlag: SharedArrayBuffer;
}

export type JacobianWorkerMessage =
  | { type: "started"; step: number; backend: string }
  | { type: "progress"; step: number; loss: number }
  | { type: "eval"; step: number; accuracy: number; loss: number }
  | { type: "done" }
  | { type: "stopped"; step: number };

interface Checkpoint {
  trainer: Figure1Checkpoint;
  run: JacobianRun;
  lossSum: number;
  lossCount: number;
}

const PROGRESS_EVERY_MS = 250;

async function main(): Promise<void> {
  const d = workerData as JacobianWorkerData;
  const c = d.config;
  const stop = new Int32Array(d.stopFlag);
  const post = (m: JacobianWorkerMessage) => parentPort!.postMessage(m);
  const backend = await useBackend(c.backend, { threads: d.threads });
  const trainer = new Figure1Trainer(d.network, c.seed, trainingConfig(c), d.train, d.test);
  let run = emptyRun(d.network, c);
  let lossSum = 0;
  let lossCount = 0;
  if (d.resume && existsSync(d.checkpointPath)) {
    const saved = readJson<Checkpoint>(d.checkpointPath);
    trainer.restore(saved.trainer);
    run = saved.run;
    lossSum = saved.lossSum;
    lossCount = saved.lossCount;
  }
  run.backend = backend;
  post({ type: "started", step: trainer.step, backend });
  const elapsedBefore = run.wallSeconds;
  const t0 = performance.now();
  const save = () => {
    run.wallSeconds = elapsedBefore + (performance.now() - t0) / 1000;
    writeFileAtomic(d.checkpointPath, JSON.stringify({ trainer: trainer.checkpoint(), run, lossSum, lossCount } satisfies Checkpoint));
  };
  const probe = d.test.images.subarray(0, c.images * 784);
  let lastPost = performance.now();
  while (!trainer.done) {
    if (Atomics.load(stop, 0) === 1) {
      save();
      post({ type: "stopped", step: trainer.step });
      return;
    }
    const loss = trainer.trainStep();
    if (!Number.isFinite(loss)) {
      throw new Error(`jacobian: ${d.network}: the training loss became ${loss} at step ${trainer.step}: the run diverged. Lower --lr (now ${c.lr}).`);
    }
    lossSum += loss;
    lossCount++;
    if (trainer.step % c.every === 0 || trainer.done) {
      const { accuracy } = trainer.evaluate();
      const tm = performance.now();
      const m = measureJacobians(trainer.model, probe, c.images);
      run.jacobianSeconds += (performance.now() - tm) / 1000;
      recordMeasurement(run, trainer.step, accuracy, m);
      post({ type: "eval", step: trainer.step, accuracy, loss: lossSum / lossCount });
      lossSum = 0;
      lossCount = 0;
      if (!trainer.done) save();
    } else if (performance.now() - lastPost > PROGRESS_EVERY_MS) {
      lastPost = performance.now();
      post({ type: "progress", step: trainer.step, loss });
    }
  }
  run.wallSeconds = elapsedBefore + (performance.now() - t0) / 1000;
  writeFileAtomic(d.resultPath, JSON.stringify(run));
  rmSync(d.checkpointPath, { force: true });
  post({ type: "done" });
}

main().catch((err: Error) => {
  throw err;
});
