/**
 * Worker thread: trains one (network, seed) run of Figure 1, reporting
 * progress to the main thread, checkpointing at every evaluation and when
 * asked to stop (a shared flag set on Ctrl-C), and writing the finished run.
 */
import { parentPort, workerData } from "node:worker_threads";
import { existsSync, rmSync } from "node:fs";
import { useBackend } from "../backend.js";
import { readJson, writeFileAtomic } from "../../io/files.js";
import type { Figure1Config, NetworkKind } from "./config.js";
import { Figure1Checkpoint, Figure1Trainer, ImageSet } from "./trainer.js";
import { writeModelFiles } from "../modelFiles.js";

export interface Figure1WorkerData {
  config: Figure1Config;
  network: NetworkKind;
  seed: number;
  /** The data, loaded once by the main thread, in shared memory. */
  train: ImageSet;
  test: ImageSet;
  checkpointPath: string;
  resultPath: string;
  /** The trained network goes to <modelPath>.safetensors and .onnx. */
  modelPath: string;
  resume: boolean;
  /** Threads of the wasm kernels. */
  threads: number;
  /** Int32Array over a SharedArrayBuffer: [0] becomes 1 when the run must stop. */
  stopFlag: SharedArrayBuffer;
}

export type Figure1WorkerMessage =
  | { type: "started"; step: number; backend: string }
  | { type: "progress"; step: number; loss: number }
  | { type: "eval"; step: number; accuracy: number; loss: number }
  | { type: "done"; result: unknown }
  | { type: "stopped"; step: number };

const PROGRESS_EVERY_MS = 250;

async function main(): Promise<void> {
  const d = workerData as Figure1WorkerData;
  const stop = new Int32Array(d.stopFlag);
  const post = (m: Figure1WorkerMessage) => parentPort!.postMessage(m);
  const backend = await useBackend(d.config.backend, { threads: d.threads });
  const trainer = new Figure1Trainer(d.network, d.seed, d.config, d.train, d.test);
  let elapsedBefore = 0;
  if (d.resume && existsSync(d.checkpointPath)) {
    const checkpoint = readJson<Figure1Checkpoint>(d.checkpointPath);
    trainer.restore(checkpoint);
    elapsedBefore = checkpoint.result.wallSeconds;
  }
  trainer.result.backend = backend;
  post({ type: "started", step: trainer.step, backend });
  const t0 = performance.now();
  const elapsed = () => elapsedBefore + (performance.now() - t0) / 1000;
  const save = () => {
    trainer.result.wallSeconds = elapsed();
    writeFileAtomic(d.checkpointPath, JSON.stringify(trainer.checkpoint()));
  };
  let lastPost = performance.now();
  while (!trainer.done) {
    if (Atomics.load(stop, 0) === 1) {
      save();
      post({ type: "stopped", step: trainer.step });
      return;
    }
    const loss = trainer.trainStep();
    if (!Number.isFinite(loss)) {
      throw new Error(
        `${d.network} seed ${d.seed}: the training loss became ${loss} at step ${trainer.step}: the run diverged. Lower --lr (now ${d.config.lr}).`,
      );
    }
    if (trainer.step % d.config.evalEvery === 0 || trainer.done) {
      trainer.record();
      const r = trainer.result;
      post({ type: "eval", step: trainer.step, accuracy: r.testAccuracy.at(-1)!, loss: r.trainLoss.at(-1)! });
      if (!trainer.done) save();
    } else if (performance.now() - lastPost > PROGRESS_EVERY_MS) {
      lastPost = performance.now();
      post({ type: "progress", step: trainer.step, loss });
    }
  }
  if (d.network === "batchnorm") trainer.result.finalTestAccuracyPopulation = trainer.populationAccuracy();
  trainer.result.wallSeconds = elapsed();
  writeModelFiles(trainer.model, d.modelPath, [1, 784], `figure1 ${d.network} network, seed ${d.seed}, after ${trainer.step} steps (§4.1: 784 → ${d.config.hidden.join(" → ")} sigmoid → 10 logits; input: MNIST pixels ${d.config.input})`, { ...d.config, network: d.network, seed: d.seed, step: trainer.step });
  writeFileAtomic(d.resultPath, JSON.stringify(trainer.result));
  rmSync(d.checkpointPath, { force: true });
  post({ type: "done", result: trainer.result });
}

main().catch((err: Error) => {
  // Rethrown in the worker, this surfaces as the Worker's 'error' event with the message intact.
  throw err;
});
