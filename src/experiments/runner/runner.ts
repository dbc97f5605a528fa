/**
 * The experiment runner: what every long-running command (figure1, table,
 * and the commands that follow them) shares, so that Ctrl-C, --resume,
 * --overwrite, divergence and errors behave the same everywhere.
 *
 * It owns, in this order:
 *   1. the shared options (--jobs, --threads, --resume/--overwrite, --out),
 *      checked before anything is loaded (options.ts);
 *   2. the command's data, loaded by `spec.load()` before anything is written;
 *   3. one run per output folder: the lock `<out>/.covshift.lock` (lock.ts),
 *      released on every way out;
 *   4. the output folder: stray temporary files removed, earlier results
 *      refused, discarded (--overwrite) or continued (--resume, settings
 *      compared) — outputDir.ts;
 *   5. the worker pool: one worker thread per job, at most --jobs at once, a
 *      shared stop flag (Ctrl-C: every job checkpoints and stops; a failed
 *      job stops the others the same way, so nothing is lost);
 *   6. in each worker (worker.ts): the backend, resume from the checkpoint
 *      (checkpoint.ts: versioned, checksummed, validated, same backend
 *      build), the training loop with its divergence check, checkpoints at
 *      evaluations at most every 20 s (checkpointSeconds) and always on
 *      stop, the finished result written and the
 *      checkpoint removed;
 *   7. the wall time across resumes, then `spec.finish()` for the command's
 *      own report.
 *
 * How a command becomes a configuration of it:
 *   - main thread: call `runExperiment(spec, options)` with the command's
 *     name, its config (and `comparable`, the part a resume must match), a
 *     `load()` for its data, `plan()` listing its jobs (name + payload for
 *     the worker), the URL of its job module, and `finish()` reading the
 *     finished results from `<out>/<doneDir>/<name>.json`;
 *   - job module (the worker's entry, e.g. figure1/job.ts): call
 *     `runJobInWorker((data, backend) => ({ trainer, result, divergenceAdvice, finish }))`
 *     where `trainer` does one step, evaluates, and saves/restores its state
 *     as CheckpointContents (tensors + JSON, read back with CheckpointFields).
 * Nothing else — pool, flags, files, locks, resume — belongs to a command.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { acquireOutputLock } from "./lock.js";
import { checkSharedOptions, type SharedRunOptions } from "./options.js";
import { prepareOutputDir } from "./outputDir.js";
import { restartAdvice } from "./checkpoint.js";
import { writeFileAtomic } from "../../io/files.js";
import type { WorkerJobData, WorkerMessage } from "./worker.js";

export type { WorkerMessage } from "./worker.js";

export interface RunnerOptions extends SharedRunOptions {
  /** Set element 0 to 1 (Atomics.store) to stop every job after a checkpoint. */
  stopFlag?: SharedArrayBuffer;
  /**
   * A job checkpoints at an evaluation only when this many seconds have passed
   * since its last checkpoint (default {@link DEFAULT_CHECKPOINT_SECONDS}; 0:
   * at every evaluation). A stop (Ctrl-C, another job's failure) always
   * checkpoints, so the bound is on what a killed process loses.
   */
  checkpointSeconds?: number;
}

/**
 * At most one checkpoint per job every 20 s: a killed run loses at most that
 * much work, and a figure1 run (100 evaluations) writes ~10 checkpoints
 * instead of 100 (each is the model, the optimizer state and the results so
 * far, hashed and fsync'ed).
 */
export const DEFAULT_CHECKPOINT_SECONDS = 20;

/** What every command's run function takes (runFigure1, runTable, …): the runner's options and the command's own. */
export interface ExperimentRunOptions<C, L, E> extends RunnerOptions {
  config: C;
  /** The data set's folder. */
  dataDir: string;
  /** Use only the first N images of a split (quick tries and tests). */
  limits?: L;
  /** Fetch missing data files from the public mirrors (default true). */
  download?: boolean;
  onEvent?: (event: E) => void;
}

/** One job: a run with its own worker, checkpoint and result file. */
export interface JobPlan<P> {
  /** File stem of its checkpoint and result, e.g. "batchnorm-seed0". */
  name: string;
  /** How messages name it, e.g. "batchnorm seed 0". */
  label: string;
  /** What the job module needs besides the shared fields. */
  payload: P;
  /** Its own length and evaluation interval, when its runs differ in length (batchsize); else the spec's. */
  steps?: number;
  evalEvery?: number;
  /**
   * Its expected running time relative to the other jobs (default 1). Jobs
   * start heaviest first (ties in plan order): with more jobs than lanes,
   * the short ones fill the gaps at the end instead of a long one starting
   * last and running alone.
   */
  weight?: number;
}

/** What the runner reports about a job. */
export type JobEvent = WorkerMessage | { type: "skipped" } | { type: "queued" } | { type: "restarted"; reason: string };

export interface ExperimentSpec<C, D, P, R> {
  command: string;
  /** Where finished jobs leave their results ("runs", "rows"). */
  doneDir: string;
  config: C;
  limits: object;
  /** The part of the settings a resume must match (include the backend: a resume on another build would not be identical). */
  comparable: (config: C) => object;
  /** The backend option ("auto", "wasm", "reference"). */
  backend: string;
  steps: number;
  evalEvery: number;
  /** Load the data (nothing is written before this succeeds). */
  load: () => Promise<D>;
  /**
   * The jobs, given the data and whether this is a resume. `discard(name)`
   * drops a job's earlier checkpoint and result (e.g. its own settings
   * changed), `emit` reports such decisions.
   */
  plan: (data: D, ctx: { resume: boolean; discard: (name: string) => void; emit: (name: string, e: JobEvent) => void }) => JobPlan<P>[];
  /** The job module: a worker entry calling runJobInWorker. */
  workerUrl: URL;
  /** After every job finished: read `<out>/<doneDir>/*.json`, write the report (see writeReport), return it and the files written. */
  finish: (data: D, wallSeconds: number) => Promise<{ result: R; files: string[] }>;
  onEvent?: (job: JobPlan<P>, event: JobEvent) => void;
}

export type ExperimentOutcome<R> = { status: "complete"; result: R; files: string[] } | { status: "interrupted" };

export const checkpointPathOf = (outDir: string, name: string) => join(outDir, "checkpoints", `${name}.safetensors`);
export const resultPathOf = (outDir: string, doneDir: string, name: string) => join(outDir, doneDir, `${name}.json`);

export async function runExperiment<C, D, P, R>(spec: ExperimentSpec<C, D, P, R>, options: RunnerOptions): Promise<ExperimentOutcome<R>> {
  const { command } = spec;
  const { outDir } = options;
  checkSharedOptions(command, options);
  // Data first: a missing or damaged file stops us before anything is written.
  const data = await spec.load();
  mkdirSync(outDir, { recursive: true });
  const release = acquireOutputLock(outDir, command);
  try {
    removeStrayTempFiles(outDir);
    refuseOldCheckpoints(outDir);
    const { wallBefore, saveWallSeconds } = prepareOutputDir({
      command,
      outDir,
      doneDir: spec.doneDir,
      config: spec.config,
      limits: spec.limits,
      resume: options.resume,
      overwrite: options.overwrite,
      comparable: spec.comparable,
    });
    const resume = (options.resume ?? false) && !options.overwrite;
    const byName = new Map<string, JobPlan<P>>();
    const pending: { name: string; e: JobEvent }[] = [];
    const planned = spec.plan(data, {
      resume,
      discard: (name) => {
        rmSync(resultPathOf(outDir, spec.doneDir, name), { force: true });
        rmSync(checkpointPathOf(outDir, name), { force: true });
      },
      emit: (name, e) => pending.push({ name, e }),
    });
    for (const job of planned) byName.set(job.name, job);
    const emit = (job: JobPlan<P>, e: JobEvent) => spec.onEvent?.(job, e);
    for (const { name, e } of pending) if (byName.has(name)) emit(byName.get(name)!, e);
    const jobs: JobPlan<P>[] = [];
    // Heaviest first (Array.prototype.sort is stable: equal weights keep the plan's order).
    const byWeight = [...planned].sort((a, b) => (b.weight ?? 1) - (a.weight ?? 1));
    for (const job of byWeight) {
      if (resume && existsSync(resultPathOf(outDir, spec.doneDir, job.name))) emit(job, { type: "skipped" });
      else {
        jobs.push(job);
        emit(job, { type: "queued" });
      }
    }

    const stopFlag = options.stopFlag ?? new SharedArrayBuffer(4);
    const stop = new Int32Array(stopFlag);
    const t0 = performance.now();
    let failure: Error | null = null;
    const runJob = (job: JobPlan<P>) =>
      new Promise<void>((resolve) => {
        const workerData: WorkerJobData<P> = {
          command,
          run: job.name,
          label: job.label,
          checkpointPath: checkpointPathOf(outDir, job.name),
          resultPath: resultPathOf(outDir, spec.doneDir, job.name),
          resume,
          backend: spec.backend,
          threads: options.threads ?? 1,
          steps: job.steps ?? spec.steps,
          evalEvery: job.evalEvery ?? spec.evalEvery,
          stopFlag,
          checkpointSeconds: options.checkpointSeconds ?? DEFAULT_CHECKPOINT_SECONDS,
          payload: job.payload,
        };
        const worker = new Worker(spec.workerUrl, { workerData });
        worker.on("message", (message: WorkerMessage) => emit(job, message));
        worker.on("error", (err) => {
          failure ??= err;
          Atomics.store(stop, 0, 1); // the other jobs checkpoint and stop: nothing is lost
        });
        worker.on("exit", () => resolve());
      });
    let next = 0;
    const lanes = Array.from({ length: Math.max(1, Math.min(options.jobs, jobs.length)) }, async () => {
      while (next < jobs.length && Atomics.load(stop, 0) === 0) await runJob(jobs[next++]);
    });
    await Promise.all(lanes);

    const wallSeconds = wallBefore + (performance.now() - t0) / 1000;
    saveWallSeconds(wallSeconds);
    if (failure) throw failure;
    if (Atomics.load(stop, 0) === 1) return { status: "interrupted" };
    return { status: "complete", ...(await spec.finish(data, wallSeconds)) };
  } finally {
    release();
  }
}

/**
 * A command's report in `outDir`: the result as JSON, the Markdown summary
 * (the CLI prints the second file) and the plots, each written atomically.
 */
export async function writeReport<R>(
  outDir: string,
  names: { json: string; markdown: string },
  result: R,
  markdown: string,
  plots: () => Promise<string[]>,
): Promise<{ result: R; files: string[] }> {
  const files = [join(outDir, names.json), join(outDir, names.markdown)];
  writeFileAtomic(files[0], JSON.stringify(result, null, 1));
  writeFileAtomic(files[1], markdown);
  files.push(...(await plots()));
  return { result, files };
}

/**
 * Temporary files of atomic writes (`.<name>.<pid>.<hex>.part`) left by a
 * process that was killed mid-write: with the lock held, no one else is
 * writing here, so every one of them is stray.
 */
export function removeStrayTempFiles(outDir: string): string[] {
  const removed: string[] = [];
  const sweep = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(dir, name);
      if (name.startsWith(".") && name.endsWith(".part")) {
        rmSync(p, { force: true });
        removed.push(p);
      } else if (depth > 0 && !name.startsWith(".")) {
        try {
          if (statSync(p).isDirectory()) sweep(p, depth - 1);
        } catch {
          /* vanished */
        }
      }
    }
  };
  sweep(outDir, 1);
  return removed;
}

/** Checkpoints of the JSON format (before version 1) cannot be trusted: refuse them, naming each. */
function refuseOldCheckpoints(outDir: string): void {
  const dir = join(outDir, "checkpoints");
  if (!existsSync(dir)) return;
  const old = readdirSync(dir).filter((n) => n.endsWith(".json"));
  if (old.length > 0) {
    const first = join(dir, old[0]);
    throw new Error(
      `checkpoint ${first}${old.length > 1 ? ` (and ${old.length - 1} more in ${dir})` : ""}: it is of an older covshift (JSON numbers, no checksum), which this one does not read. ${restartAdvice(first)}`,
    );
  }
}
