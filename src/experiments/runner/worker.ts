/**
 * The worker side of the experiment runner (see runner.ts): one job in one
 * worker thread. A command's job module calls {@link runJobInWorker} with a
 * function that builds the job's trainer; the loop here is the same for
 * every command — backend, resume, steps, divergence, checkpoints, stop,
 * result.
 */
import { existsSync, rmSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { writeFileAtomic } from "../../io/files.js";
import { useBackend } from "../backend.js";
import { backendBuild, checkpointError, readCheckpoint, writeCheckpoint, type CheckpointContents } from "./checkpoint.js";

/** What the runner hands every job's worker. */
export interface WorkerJobData<P> {
  command: string;
  /** The job's name (file stem). */
  run: string;
  /** How messages name the job. */
  label: string;
  checkpointPath: string;
  resultPath: string;
  resume: boolean;
  /** The backend option: "auto", "wasm" or "reference". */
  backend: string;
  threads: number;
  steps: number;
  evalEvery: number;
  /** Int32Array over a SharedArrayBuffer: [0] becomes 1 when the job must stop. */
  stopFlag: SharedArrayBuffer;
  /** Checkpoint at an evaluation only this many seconds after the last one (0: every evaluation); a stop always checkpoints. */
  checkpointSeconds: number;
  payload: P;
}

export type WorkerMessage =
  | { type: "started"; step: number; total: number; backend: string }
  | { type: "progress"; step: number; loss: number }
  | { type: "eval"; step: number; accuracy: number; loss: number }
  | { type: "done"; note?: string; [extra: string]: unknown }
  | { type: "stopped"; step: number };

/** A run's trainer as the loop drives it. */
export interface JobTrainer {
  readonly step: number;
  readonly done: boolean;
  /** One optimizer step; returns the training loss. */
  trainStep(): number;
  /** Evaluate, append the measurements to the result, and return what the progress display shows. */
  record(): { accuracy: number; loss: number };
  /** May be asynchronous (a data-parallel trainer asks its replicas for their optimizer state). */
  checkpoint(): CheckpointContents | Promise<CheckpointContents>;
  /** Continue from a checkpoint, checking every field (errors may name fields; the runner adds the file). */
  restore(c: CheckpointContents, path: string): void | Promise<void>;
}

/** The trainers of figure1 and table as the loop drives them: their own steps, asynchronous checkpoints (a data-parallel group asks its replicas). */
export interface AsyncCheckpointTrainer {
  readonly step: number;
  readonly done: boolean;
  trainStep(): number;
  checkpointAsync(): Promise<CheckpointContents>;
  restoreAsync(c: CheckpointContents, path: string): Promise<void>;
}

/** `t` as a {@link JobTrainer} whose `record` measures with `measure` and returns what the progress display shows. */
export function jobTrainer(t: AsyncCheckpointTrainer, measure: () => { accuracy: number; loss: number }): JobTrainer {
  return {
    get step() {
      return t.step;
    },
    get done() {
      return t.done;
    },
    trainStep: () => t.trainStep(),
    record: measure,
    checkpoint: () => t.checkpointAsync(),
    restore: (c, path) => t.restoreAsync(c, path),
  };
}

/** The fields every job's result carries, kept across resumes. */
export interface JobTimes {
  wallSeconds: number;
  /** Seconds spent in training steps (not evaluating, not checkpointing). */
  trainSeconds: number;
  /** The kernel backend the run trained on, e.g. "wasm (simd)". */
  backend?: string;
}

export interface JobDefinition {
  trainer: JobTrainer;
  /** The result the trainer fills (written as the job's result file when done). */
  result: JobTimes;
  /** What a diverged run should try, e.g. "Lower --lr (now 0.5)." */
  divergenceAdvice: string;
  /** After the last step: extra measurements and files; returns fields for the "done" message. */
  finish: () => Record<string, unknown> | void;
  /** Release what the job started (e.g. a data-parallel group's workers); called on every way out. */
  close?: () => Promise<void>;
}

const PROGRESS_EVERY_MS = 250;

/** The job's worker: run it and report to the runner; an error surfaces as the Worker's 'error' with its message. */
export function runJobInWorker<P>(define: JobDefiner<P>): void {
  const d = workerData as WorkerJobData<P>;
  runJob(d, define).catch((err: unknown) => {
    // Every error names the job it stopped.
    const e = err instanceof Error ? err : new Error(String(err));
    if (!e.message.startsWith(d.label)) e.message = `${d.label}: ${e.message}`;
    throw e;
  });
}

/** Builds a job's trainer (asynchronously when it starts workers of its own). */
export type JobDefiner<P> = (data: WorkerJobData<P>, backend: string) => JobDefinition | Promise<JobDefinition>;

async function runJob<P>(d: WorkerJobData<P>, define: JobDefiner<P>): Promise<void> {
  const backend = await useBackend(d.backend, { threads: d.threads });
  const build = backendBuild(backend);
  const job = await define(d, backend);
  try {
    await trainJob(d, job, build, backend);
  } finally {
    await job.close?.();
  }
}

async function trainJob<P>(d: WorkerJobData<P>, job: JobDefinition, build: string, backend: string): Promise<void> {
  const stop = new Int32Array(d.stopFlag);
  const post = (m: WorkerMessage) => parentPort!.postMessage(m);
  const { trainer, result: r } = job;
  if (d.resume && existsSync(d.checkpointPath)) {
    const c = readCheckpoint(d.checkpointPath, { command: d.command, run: d.run });
    if (c.backend !== build) {
      throw checkpointError(
        d.checkpointPath,
        `it was made on backend ${c.backend}, this run would continue on ${build}, and the result would no longer be identical to an uninterrupted run. Resume with the backend that made it (--backend)`,
      );
    }
    try {
      await trainer.restore(c, d.checkpointPath);
    } catch (err) {
      const message = (err as Error).message;
      throw message.startsWith("checkpoint ") ? err : checkpointError(d.checkpointPath, `it does not fit this run: ${message}`);
    }
  }
  r.backend = backend;
  const wallBefore = r.wallSeconds;
  post({ type: "started", step: trainer.step, total: d.steps, backend });
  const t0 = performance.now();
  let lastSave = t0;
  const save = async () => {
    r.wallSeconds = wallBefore + (performance.now() - t0) / 1000;
    writeCheckpoint(d.checkpointPath, { command: d.command, run: d.run, backend: build }, await trainer.checkpoint());
    lastSave = performance.now();
  };
  let lastPost = performance.now();
  while (!trainer.done) {
    if (Atomics.load(stop, 0) === 1) {
      await save();
      post({ type: "stopped", step: trainer.step });
      return;
    }
    const s0 = performance.now();
    const loss = trainer.trainStep();
    r.trainSeconds += (performance.now() - s0) / 1000;
    if (!Number.isFinite(loss)) {
      throw new Error(`the training loss became ${loss} at step ${trainer.step}: the run diverged. ${job.divergenceAdvice}`);
    }
    if (trainer.step % d.evalEvery === 0 || trainer.done) {
      const shown = trainer.record();
      post({ type: "eval", step: trainer.step, ...shown });
      if (!trainer.done && performance.now() - lastSave >= d.checkpointSeconds * 1000) await save();
    } else if (performance.now() - lastPost > PROGRESS_EVERY_MS) {
      lastPost = performance.now();
      post({ type: "progress", step: trainer.step, loss });
    }
  }
  const extra = job.finish() ?? {};
  r.wallSeconds = wallBefore + (performance.now() - t0) / 1000;
  writeFileAtomic(d.resultPath, JSON.stringify(r));
  rmSync(d.checkpointPath, { force: true });
  post({ type: "done", ...extra });
}
