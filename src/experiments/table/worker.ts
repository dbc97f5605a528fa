/**
 * Worker thread: trains one row of the Inception table, reporting progress
 * to the main thread, checkpointing at every evaluation and when asked to
 * stop (a shared flag set on Ctrl-C), and writing the finished row.
 */
import { parentPort, workerData } from "node:worker_threads";
import { existsSync, rmSync } from "node:fs";
import { useBackend } from "../backend.js";
import { readJson, writeFileAtomic } from "../../io/files.js";
import type { DerivedRow, TableConfig } from "./rows.js";
import { encodeRowOutputs, TableCheckpoint, TableData, TableTrainer } from "./trainer.js";
import { writeModelFiles } from "../modelFiles.js";

export interface TableWorkerData {
  config: TableConfig;
  row: DerivedRow;
  /** The data, loaded once by the main thread, in shared memory. */
  data: TableData;
  checkpointPath: string;
  resultPath: string;
  /** Where the final network's softmax outputs go (see {@link encodeRowOutputs}); written before the result. */
  outputsPath: string;
  /** The trained network goes to <modelPath>.safetensors and .onnx. */
  modelPath: string;
  resume: boolean;
  /** Threads of the wasm kernels. */
  threads: number;
  /** Int32Array over a SharedArrayBuffer: [0] becomes 1 when the run must stop. */
  stopFlag: SharedArrayBuffer;
}

export type TableWorkerMessage =
  | { type: "started"; step: number; backend: string }
  | { type: "progress"; step: number; loss: number }
  | { type: "eval"; step: number; accuracy: number; loss: number }
  | { type: "done"; testAccuracy: number }
  | { type: "stopped"; step: number };

const PROGRESS_EVERY_MS = 250;

async function main(): Promise<void> {
  const d = workerData as TableWorkerData;
  const stop = new Int32Array(d.stopFlag);
  const post = (m: TableWorkerMessage) => parentPort!.postMessage(m);
  const backend = await useBackend(d.config.backend, { threads: d.threads });
  const trainer = new TableTrainer(d.row, d.config, d.data);
  if (d.resume && existsSync(d.checkpointPath)) trainer.restore(readJson<TableCheckpoint>(d.checkpointPath));
  const r = trainer.result;
  r.backend = backend;
  const wallBefore = r.wallSeconds;
  post({ type: "started", step: trainer.step, backend });
  const t0 = performance.now();
  const save = () => {
    r.wallSeconds = wallBefore + (performance.now() - t0) / 1000;
    writeFileAtomic(d.checkpointPath, JSON.stringify(trainer.checkpoint()));
  };
  let lastPost = performance.now();
  while (!trainer.done) {
    if (Atomics.load(stop, 0) === 1) {
      save();
      post({ type: "stopped", step: trainer.step });
      return;
    }
    const s0 = performance.now();
    const loss = trainer.trainStep();
    r.trainSeconds += (performance.now() - s0) / 1000;
    if (trainer.step % d.config.evalEvery === 0 || trainer.done) {
      trainer.record();
      post({ type: "eval", step: trainer.step, accuracy: r.validationAccuracy.at(-1)!, loss: r.trainLoss.at(-1)! });
      if (!trainer.done) save();
    } else if (performance.now() - lastPost > PROGRESS_EVERY_MS) {
      lastPost = performance.now();
      post({ type: "progress", step: trainer.step, loss });
    }
  }
  const outputs = trainer.finish();
  writeFileAtomic(d.outputsPath, JSON.stringify(encodeRowOutputs(outputs)));
  writeModelFiles(trainer.model, d.modelPath, [1, 3, d.config.crop, d.config.crop], `table row ${d.row.id} after ${trainer.step} steps (miniature BN-Inception of §4.2; input: centered ${d.config.crop}×${d.config.crop} crops of CIFAR-10 pixels / 255, NCHW, each channel normalized by the mean and std in settings.inputStats)`, { ...d.config, row: d.row.id, settings: d.row.settings, step: trainer.step, inputStats: d.data.stats });
  r.wallSeconds = wallBefore + (performance.now() - t0) / 1000;
  writeFileAtomic(d.resultPath, JSON.stringify(r));
  rmSync(d.checkpointPath, { force: true });
  post({ type: "done", testAccuracy: r.testAccuracy! });
}

main().catch((err: Error) => {
  // Rethrown in the worker, this surfaces as the Worker's 'error' event with the message intact.
  throw err;
});
