import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { writeFigure1Plots } from "../../report/figure1Plots.js";
import { readJson, readJsonIfExists, writeFileAtomic } from "../../io/files.js";
import { Figure1Config, NetworkKind, validateFigure1Config } from "./config.js";
import { loadFigure1Data, shareImageSet } from "./data.js";
import { Figure1Result, summarize, summaryMarkdown } from "./summary.js";
import type { Figure1RunResult } from "./trainer.js";
import type { Figure1WorkerData, Figure1WorkerMessage } from "./worker.js";

export interface Figure1RunOptions {
  config: Figure1Config;
  dataDir: string;
  outDir: string;
  /** Continue the interrupted run in outDir. */
  resume?: boolean;
  /** Discard earlier results in outDir. */
  overwrite?: boolean;
  /** Runs trained at once, each in its own worker thread. */
  jobs: number;
  /** Use only the first N training/test images (quick tries and tests). */
  limits?: { train?: number; test?: number };
  /** Fetch missing MNIST files from the public mirrors (default true). */
  download?: boolean;
  onEvent?: (event: Figure1Event) => void;
  /** Set element 0 to 1 (Atomics.store) to stop every run after a checkpoint. */
  stopFlag?: SharedArrayBuffer;
}

export interface Figure1Event {
  network: NetworkKind;
  seed: number;
  message: Figure1WorkerMessage | { type: "skipped" } | { type: "queued" };
}

export type Figure1Outcome =
  | { status: "complete"; result: Figure1Result; files: string[] }
  | { status: "interrupted" };

interface DirState {
  config: Figure1Config;
  limits: { train?: number; test?: number };
  wallSeconds: number;
}

const runName = (network: NetworkKind, seed: number) => `${network}-seed${seed}`;

/**
 * Train both networks for every seed (in parallel worker threads), then write
 * figure1.json, the plots and summary.md into outDir. Interrupted runs leave
 * checkpoints from which `resume` continues to exactly the result an
 * uninterrupted run gives.
 */
export async function runFigure1(options: Figure1RunOptions): Promise<Figure1Outcome> {
  const { config, outDir } = options;
  validateFigure1Config(config);
  const limits = options.limits ?? {};
  // Data first: a missing or damaged file stops us before anything is written.
  const loaded = await loadFigure1Data(options.dataDir, config.input, limits, { download: options.download });
  const train = shareImageSet(loaded.train);
  const test = shareImageSet(loaded.test);
  const statePath = join(outDir, "state.json");
  const previous = readJsonIfExists<DirState>(statePath);
  const hasEarlier = previous !== null || existsSync(join(outDir, "runs")) || existsSync(join(outDir, "checkpoints"));
  if (options.overwrite) {
    for (const p of ["runs", "checkpoints", "state.json"]) rmSync(join(outDir, p), { recursive: true, force: true });
  } else if (options.resume && previous !== null) {
    const mismatch = differences({ ...previous.config, backend: "" }, { ...config, backend: "" });
    if (mismatch.length > 0 || JSON.stringify(previous.limits) !== JSON.stringify(limits)) {
      throw new Error(
        `figure1 --resume: ${outDir} holds a run made with other settings (${mismatch.join("; ") || "different image limits"}). Resume with the same options, or choose another --out.`,
      );
    }
  } else if (!options.resume && hasEarlier) {
    throw new Error(
      `figure1: ${outDir} already holds results of an earlier run. Continue it with --resume, discard it with --overwrite, or choose another --out.`,
    );
  }
  mkdirSync(join(outDir, "runs"), { recursive: true });
  mkdirSync(join(outDir, "checkpoints"), { recursive: true });
  const wallBefore = options.resume && !options.overwrite && previous ? previous.wallSeconds : 0;
  writeFileAtomic(statePath, JSON.stringify({ config, limits, wallSeconds: wallBefore } satisfies DirState, null, 2));

  const stopFlag = options.stopFlag ?? new SharedArrayBuffer(4);
  const stop = new Int32Array(stopFlag);
  const emit = options.onEvent ?? (() => {});
  const t0 = performance.now();
  const jobs: { network: NetworkKind; seed: number }[] = [];
  for (let seed = 0; seed < config.seeds; seed++) {
    for (const network of ["baseline", "batchnorm"] as const) {
      if (options.resume && existsSync(join(outDir, "runs", `${runName(network, seed)}.json`))) {
        emit({ network, seed, message: { type: "skipped" } });
      } else {
        jobs.push({ network, seed });
        emit({ network, seed, message: { type: "queued" } });
      }
    }
  }

  let failure: Error | null = null;
  const runJob = (job: { network: NetworkKind; seed: number }) =>
    new Promise<void>((resolve) => {
      const name = runName(job.network, job.seed);
      const data: Figure1WorkerData = {
        config,
        network: job.network,
        seed: job.seed,
        train,
        test,
        checkpointPath: join(outDir, "checkpoints", `${name}.json`),
        resultPath: join(outDir, "runs", `${name}.json`),
        resume: options.resume ?? false,
        stopFlag,
      };
      const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: data });
      worker.on("message", (message: Figure1WorkerMessage) => emit({ ...job, message }));
      worker.on("error", (err) => {
        failure ??= err;
        Atomics.store(stop, 0, 1); // the other runs checkpoint and stop: nothing is lost
      });
      worker.on("exit", () => resolve());
    });
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(options.jobs, jobs.length)) }, async () => {
    while (next < jobs.length && Atomics.load(stop, 0) === 0) await runJob(jobs[next++]);
  });
  await Promise.all(lanes);

  const wallSeconds = wallBefore + (performance.now() - t0) / 1000;
  writeFileAtomic(statePath, JSON.stringify({ config, limits, wallSeconds } satisfies DirState, null, 2));
  if (failure) throw failure;
  if (Atomics.load(stop, 0) === 1) return { status: "interrupted" };

  const runs: Figure1RunResult[] = [];
  for (const network of ["baseline", "batchnorm"] as const) {
    for (let seed = 0; seed < config.seeds; seed++) {
      runs.push(readJson<Figure1RunResult>(join(outDir, "runs", `${runName(network, seed)}.json`)));
    }
  }
  const result: Figure1Result = { config, runs, wallSeconds, findings: summarize(config, runs) };
  const files = [join(outDir, "figure1.json"), join(outDir, "summary.md")];
  writeFileAtomic(files[0], JSON.stringify(result, null, 1));
  writeFileAtomic(files[1], summaryMarkdown(result));
  files.push(...(await writeFigure1Plots(result, outDir)));
  return { status: "complete", result, files };
}

function differences(a: object, b: object): string[] {
  const out: string[] = [];
  const A = a as Record<string, unknown>;
  const B = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(A), ...Object.keys(B)])) {
    if (JSON.stringify(A[k]) !== JSON.stringify(B[k])) out.push(`${k}: ${JSON.stringify(A[k])} then, ${JSON.stringify(B[k])} now`);
  }
  return out;
}
