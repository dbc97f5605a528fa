import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { writeFigure1Plots } from "../../report/figure1Plots.js";
import { readJson, writeFileAtomic } from "../../io/files.js";
import { prepareOutputDir } from "../outputDir.js";
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
  /** Threads of each job's wasm kernels (GEMM, convolution); 1 by default. Results keep their bits whatever the count. */
  threads?: number;
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
  const { wallBefore, saveWallSeconds } = prepareOutputDir({
    command: "figure1",
    outDir,
    doneDir: "runs",
    config,
    limits,
    resume: options.resume,
    overwrite: options.overwrite,
    comparable: (c) => ({ ...c, backend: "" }), // the backend changes speed, not the run
  });

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
        modelPath: join(outDir, "models", name),
        resume: options.resume ?? false,
        threads: options.threads ?? 1,
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
  saveWallSeconds(wallSeconds);
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
