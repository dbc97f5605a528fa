import { join } from "node:path";
import { writeFigure1Plots } from "../../report/figure1Plots.js";
import { readJson } from "../../io/files.js";
import { checkLimit } from "../runner/options.js";
import {
  resultPathOf,
  runExperiment,
  writeReport,
  type ExperimentOutcome,
  type ExperimentRunOptions,
  type JobEvent,
  type JobPlan,
} from "../runner/runner.js";
import type { Figure1JobPayload } from "./job.js";
import { parallelSettings } from "../groupTraining.js";
import { Figure1Config, NetworkKind, validateFigure1Config } from "./config.js";
import { loadFigure1Data, shareImageSet } from "./data.js";
import { Figure1Result, summarize, summaryMarkdown } from "./summary.js";
import type { Figure1RunResult } from "./trainer.js";

export type Figure1RunOptions = ExperimentRunOptions<Figure1Config, { train?: number; test?: number }, Figure1Event>;

export interface Figure1Event {
  network: NetworkKind;
  seed: number;
  message: JobEvent;
}

export type Figure1Outcome = ExperimentOutcome<Figure1Result>;

const runName = (network: NetworkKind, seed: number) => `${network}-seed${seed}`;

/**
 * Train both networks for every seed (in parallel worker threads, by the
 * experiment runner), then write figure1.json, the plots and summary.md into
 * outDir. Interrupted runs leave checkpoints from which `resume` continues
 * to exactly the result an uninterrupted run gives.
 */
export async function runFigure1(options: Figure1RunOptions): Promise<Figure1Outcome> {
  const { outDir } = options;
  validateFigure1Config(options.config);
  // Recorded in figure1.json and compared on resume: how many workers, and whether BN was synchronized across them.
  const config: Figure1Config = { ...options.config, ...parallelSettings(options.config) };
  const limits = options.limits ?? {};
  checkLimit("figure1", "--train-limit", limits.train, config.batchSize, ` (at least one batch of --batch-size ${config.batchSize})`);
  checkLimit("figure1", "--test-limit", limits.test, 1, "");
  return runExperiment(
    {
      command: "figure1",
      doneDir: "runs",
      config,
      limits,
      comparable: (c: Figure1Config) => c,
      backend: config.backend,
      steps: config.steps,
      evalEvery: config.evalEvery,
      load: async () => {
        const loaded = await loadFigure1Data(options.dataDir, config.input, limits, { download: options.download, shared: true });
        if (loaded.train.count < config.batchSize) {
          throw new Error(`figure1: ${loaded.train.count} training images are fewer than one batch of ${config.batchSize}; lower --batch-size or use more images`);
        }
        return { train: shareImageSet(loaded.train), test: shareImageSet(loaded.test) };
      },
      plan: (data) => {
        const jobs: JobPlan<Figure1JobPayload>[] = [];
        for (let seed = 0; seed < config.seeds; seed++) {
          for (const network of ["baseline", "batchnorm"] as const) {
            const name = runName(network, seed);
            jobs.push({
              name,
              label: `${network} seed ${seed}`,
              payload: { config, network, seed, train: data.train, test: data.test, modelPath: join(outDir, "models", name) },
              // A BN run takes about 1.1 baseline runs (50 s against 45 s in the full figure1 on an idle
              // machine, figure1.json's wallSeconds): BN runs start first.
              weight: network === "batchnorm" ? 1.1 : 1,
            });
          }
        }
        return jobs;
      },
      workerUrl: new URL("./job.js", import.meta.url),
      onEvent: (job, message) => options.onEvent?.({ network: job.payload.network, seed: job.payload.seed, message }),
      finish: async (_data, wallSeconds) => {
        const runs: Figure1RunResult[] = [];
        for (const network of ["baseline", "batchnorm"] as const) {
          for (let seed = 0; seed < config.seeds; seed++) {
            runs.push(readJson<Figure1RunResult>(resultPathOf(outDir, "runs", runName(network, seed))));
          }
        }
        const result: Figure1Result = { config, runs, wallSeconds, findings: summarize(config, runs) };
        return writeReport(outDir, { json: "figure1.json", markdown: "summary.md" }, result, summaryMarkdown(result), () => writeFigure1Plots(result, outDir));
      },
    },
    options,
  );
}
