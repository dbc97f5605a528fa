/**
 * `covshift batchsize`: what BN needs its batch for. The §4.1 BN network
 * trained at batch sizes 2 … 60 with plain BN, the same networks evaluated
 * with population statistics (Algorithm 2), ghost BN and Batch Renorm; and
 * batch 60 split over data-parallel workers with SyncBN and without (each
 * worker's BN on its shard). Every run sees the same number of training
 * examples; the learning rate scales linearly with the batch (0.01 at 60).
 * Final test accuracy against batch size: one table, one picture.
 */
import { join } from "node:path";
import { nn } from "../../index.js";
import { readJson } from "../../io/files.js";
import { writeBatchsizePlot } from "../../report/batchsizePlots.js";
import { withBackend } from "../backend.js";
import { accuracyOf, batchesInOrder, loadTrainedNetwork } from "../evaluate.js";
import { defaultFigure1Config, type Figure1Config, type Figure1Norm } from "../figure1/config.js";
import { loadFigure1Data, shareImageSet } from "../figure1/data.js";
import type { Figure1JobPayload } from "../figure1/job.js";
import type { Figure1RunResult } from "../figure1/trainer.js";
import { backendBuild } from "../runner/checkpoint.js";
import { checkLimit } from "../runner/options.js";
import { resultPathOf, runExperiment, writeReport, type ExperimentOutcome, type ExperimentRunOptions, type JobEvent } from "../runner/runner.js";

export type Variant = "bn" | "bn-population" | "ghost" | "renorm" | "syncbn-workers" | "bn-workers";
export const VARIANTS: readonly Variant[] = ["bn", "bn-population", "ghost", "renorm", "syncbn-workers", "bn-workers"];

export const VARIANT_LABELS: Record<Variant, string> = {
  bn: "BN (running averages)",
  "bn-population": "BN, population statistics",
  ghost: "ghost BN",
  renorm: "Batch Renorm",
  "syncbn-workers": "batch 60 over workers, SyncBN",
  "bn-workers": "batch 60 over workers, BN per shard",
};

export interface BatchsizeConfig {
  batchSizes: number[];
  /** Training examples of every run = steps × 60 (the steps at batch 60; smaller batches take more). */
  steps: number;
  /** Worker counts for the data-parallel runs at batch 60 (shards of 60/workers). */
  workers: number[];
  variants: Variant[];
  /** Ghost BN's virtual batch: the largest divisor of the batch size not above this. */
  ghostBatchSize: number;
  /** Training batches of 60 for the population statistics. */
  populationBatches: number;
  seed: number;
  backend: string;
}

export const defaultBatchsizeConfig: BatchsizeConfig = {
  batchSizes: [2, 4, 8, 16, 32, 60],
  steps: 500,
  workers: [2, 4],
  variants: [...VARIANTS],
  ghostBatchSize: 16,
  populationBatches: 100,
  seed: 0,
  backend: "auto",
};

const REFERENCE_BATCH = 60;

export interface BatchsizeRun {
  variant: Variant;
  /** Examples per BN normalization in training: the batch size, or the shard of each worker. */
  batchSize: number;
  /** Data-parallel runs: the workers the batch of 60 was split over. */
  workers?: number;
  /** Ghost BN's virtual batch. */
  virtualBatchSize?: number;
  steps: number;
  lr: number;
  testAccuracy: number;
  wallSeconds: number;
}

export interface BatchsizeResult {
  config: BatchsizeConfig;
  backend: string;
  examples: number;
  runs: BatchsizeRun[];
  wallSeconds: number;
}

export function validateBatchsizeConfig(c: BatchsizeConfig): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`batchsize: ${name} must be a positive integer; got ${v}`);
  };
  positiveInt("--steps", c.steps);
  positiveInt("--ghost-batch-size", c.ghostBatchSize);
  positiveInt("--population-batches", c.populationBatches);
  if (c.batchSizes.length === 0) throw new Error("batchsize: --batch-sizes must name at least one batch size");
  for (const b of c.batchSizes) {
    positiveInt("every --batch-sizes value", b);
    if (b < 2) throw new Error(`batchsize: every batch size must be at least 2 (BN needs two values per unit); got ${b}`);
  }
  for (const w of c.workers) {
    if (!Number.isInteger(w) || w < 1) throw new Error(`batchsize: --workers values must be integers ≥ 1; got ${w}`);
    if (REFERENCE_BATCH % w !== 0 || REFERENCE_BATCH / w < 2) {
      throw new Error(`batchsize: --workers ${w} does not split the batch of 60 into equal shards of at least 2; use divisors of 60 up to 30`);
    }
  }
  for (const v of c.variants) {
    if (!VARIANTS.includes(v)) throw new Error(`batchsize: unknown variant "${v}"; choose from ${VARIANTS.join(", ")}`);
  }
  if (!Number.isInteger(c.seed) || c.seed < 0) throw new Error(`batchsize: --seed must be an integer ≥ 0; got ${c.seed}`);
}

/** Largest divisor of b not above cap. */
export function ghostSize(b: number, cap: number): number {
  for (let v = Math.min(b, cap); v > 1; v--) if (b % v === 0) return v;
  return b;
}

/** The Batch Renorm schedule of a run of `steps` steps: the paper's (5k / 25k / 40k of its steps) scaled to this run's length. */
export function renormSchedule(steps: number): Extract<Figure1Norm, { kind: "renorm" }> {
  return {
    kind: "renorm",
    rMax: 3,
    dMax: 5,
    warmupSteps: Math.round(0.05 * steps),
    dMaxReachedAt: Math.round(0.2 * steps),
    rMaxReachedAt: Math.round(0.3 * steps),
  };
}

/** Evaluations (and checkpoints) per run: each run is measured on the test set this many times. */
const EVALUATIONS = 5;

/** A trained network: what its job trains, and which rows of the table it gives. */
interface BatchsizeJob {
  name: string;
  label: string;
  config: Figure1Config;
  /** The rows it gives ("bn" also gives "bn-population", and "ghost" where the virtual batch is the batch). */
  gives: Variant[];
  batchSize: number;
  workers?: number;
  virtualBatchSize?: number;
}

/** The networks to train for `config`, in the table's order. */
export function batchsizeJobs(config: BatchsizeConfig): BatchsizeJob[] {
  const want = (v: Variant) => config.variants.includes(v);
  const examples = config.steps * REFERENCE_BATCH;
  const base: Figure1Config = { ...defaultFigure1Config, seeds: 1, populationBatches: config.populationBatches, backend: config.backend };
  const jobs: BatchsizeJob[] = [];
  const run = (B: number, norm?: Figure1Norm): Figure1Config => {
    const steps = Math.floor(examples / B);
    return { ...base, batchSize: B, lr: (base.lr * B) / REFERENCE_BATCH, steps, evalEvery: Math.max(1, Math.ceil(steps / EVALUATIONS)), norm };
  };
  for (const B of config.batchSizes) {
    const v = ghostSize(B, config.ghostBatchSize);
    const bn = want("bn") || want("bn-population");
    if (bn) {
      // One virtual batch of the whole batch is BN: ghost BN's row is then the BN network's, not trained twice.
      const gives = VARIANTS.filter((x) => want(x) && (x === "bn" || x === "bn-population" || (x === "ghost" && v === B)));
      jobs.push({ name: `bn-b${B}`, label: `BN, batch ${B}`, config: run(B), gives, batchSize: B, virtualBatchSize: v === B ? v : undefined });
    }
    if (want("ghost") && !(bn && v === B)) {
      jobs.push({ name: `ghost-b${B}`, label: `ghost BN, batch ${B}`, config: run(B, { kind: "ghost", virtualBatchSize: v }), gives: ["ghost"], batchSize: B, virtualBatchSize: v });
    }
    if (want("renorm")) {
      jobs.push({ name: `renorm-b${B}`, label: `Batch Renorm, batch ${B}`, config: run(B, renormSchedule(Math.floor(examples / B))), gives: ["renorm"], batchSize: B });
    }
  }
  for (const variant of ["syncbn-workers", "bn-workers"] as const) {
    if (!want(variant)) continue;
    for (const workers of config.workers) {
      jobs.push({
        name: `${variant}-w${workers}`,
        label: `${variant === "syncbn-workers" ? "SyncBN" : "BN per shard"}, ${workers} workers`,
        config: { ...run(REFERENCE_BATCH), workers, syncBatchNorm: variant === "syncbn-workers" },
        gives: [variant],
        batchSize: REFERENCE_BATCH / workers,
        workers,
      });
    }
  }
  return jobs;
}

export type BatchsizeRunOptions = ExperimentRunOptions<BatchsizeConfig, { train?: number; test?: number }, BatchsizeEvent>;

export interface BatchsizeEvent {
  /** The job's name, e.g. "ghost-b32". */
  run: string;
  label: string;
  message: JobEvent;
}

/**
 * Train every network of the table (in parallel worker threads, by the
 * experiment runner, with figure1's job module), then evaluate them and
 * write batchsize.json, summary.md and batchsize.svg/.png into outDir.
 * Interrupted runs leave checkpoints from which `resume` continues to
 * exactly the result an uninterrupted run gives.
 */
export async function runBatchsize(options: BatchsizeRunOptions): Promise<ExperimentOutcome<BatchsizeResult>> {
  const { config, outDir } = options;
  validateBatchsizeConfig(config);
  const limits = options.limits ?? {};
  const largest = Math.max(REFERENCE_BATCH, ...config.batchSizes);
  checkLimit("batchsize", "--train-limit", limits.train, largest, ` (at least one batch of ${largest})`);
  checkLimit("batchsize", "--test-limit", limits.test, 1, "");
  const jobs = batchsizeJobs(config);
  const modelPath = (name: string) => join(outDir, "models", name);
  return runExperiment(
    {
      command: "batchsize",
      doneDir: "runs",
      config,
      limits,
      comparable: (c: BatchsizeConfig) => c,
      backend: config.backend,
      steps: config.steps,
      evalEvery: config.steps,
      load: async () => {
        const { train, test } = await loadFigure1Data(options.dataDir, "scaled", limits, { download: options.download, shared: true });
        if (train.count < largest) throw new Error(`batchsize: ${train.count} training images are fewer than one batch of ${largest}; use more images`);
        return { train: shareImageSet(train), test: shareImageSet(test) };
      },
      plan: (data) =>
        jobs.map((job) => ({
          name: job.name,
          label: job.label,
          steps: job.config.steps,
          evalEvery: job.config.evalEvery,
          payload: {
            config: job.config,
            network: "batchnorm",
            seed: config.seed,
            train: data.train,
            test: data.test,
            modelPath: modelPath(job.name),
            title: `batchsize: ${job.label}, seed ${config.seed}`,
          } satisfies Figure1JobPayload,
        })),
      workerUrl: new URL("../figure1/job.js", import.meta.url),
      onEvent: (job, message) => options.onEvent?.({ run: job.name, label: job.label, message }),
      finish: async (data, wallSeconds) => {
        // The population statistics come from the trained networks, here: the same backend as the jobs'.
        const runs: BatchsizeRun[] = [];
        let backend = "";
        await withBackend(config.backend, () => {
        for (const job of jobs) {
          const r = readJson<Figure1RunResult>(resultPathOf(outDir, "runs", job.name));
          backend = backendBuild(r.backend ?? "");
          const row = { batchSize: job.batchSize, workers: job.workers, steps: job.config.steps, lr: job.config.lr, wallSeconds: r.wallSeconds };
          for (const variant of job.gives) {
            let testAccuracy = r.testAccuracy.at(-1)!;
            if (variant === "bn-population") {
              const model = loadTrainedNetwork(modelPath(job.name), job.config);
              nn.recomputeBatchNormStats(model, batchesInOrder(data.train.images, data.train.count, REFERENCE_BATCH, config.populationBatches));
              testAccuracy = accuracyOf(model, data.test.images, data.test.labels);
            }
            runs.push({ variant, ...row, ...(variant === "ghost" && { virtualBatchSize: job.virtualBatchSize }), testAccuracy });
          }
        }
        });
        // The table's order: by batch size, then variant; the data-parallel rows last (as the jobs are).
        const result: BatchsizeResult = { config, backend, examples: config.steps * REFERENCE_BATCH, runs, wallSeconds };
        return writeReport(outDir, { json: "batchsize.json", markdown: "summary.md" }, result, batchsizeMarkdown(result), () => writeBatchsizePlot(result, outDir));
      },
    },
    options,
  );
}

export function batchsizeMarkdown(r: BatchsizeResult): string {
  const sizes = [...new Set(r.runs.map((x) => x.batchSize))].sort((a, b) => a - b);
  const variants = VARIANTS.filter((v) => r.runs.some((x) => x.variant === v));
  const cell = (v: Variant, b: number) => {
    const run = r.runs.find((x) => x.variant === v && x.batchSize === b);
    if (!run) return "";
    const note = run.workers ? ` (${run.workers} × ${b})` : run.virtualBatchSize !== undefined && run.virtualBatchSize !== b ? ` (virtual ${run.virtualBatchSize})` : "";
    return `${(100 * run.testAccuracy).toFixed(2)}%${note}`;
  };
  return [
    `# BN against batch size`,
    ``,
    `The §4.1 BN network (784 → 3 × (100, BN, sigmoid) → 10, seed ${r.config.seed}, ${r.backend}), every run on ${r.examples.toLocaleString("en-US")} training examples (${r.config.steps} steps at batch 60), SGD momentum 0.9 with lr = 0.01 · B/60; final test accuracy on the 10,000 test images. Columns: examples per BN normalization in training (for the worker rows, the shard of each worker of a batch of 60).`,
    ``,
    `| | ${sizes.map((b) => `${b}`).join(" | ")} |`,
    `|---|${sizes.map(() => "---:").join("|")}|`,
    ...variants.map((v) => `| ${VARIANT_LABELS[v]} | ${sizes.map((b) => cell(v, b)).join(" | ")} |`),
    ``,
    `Wall time ${r.wallSeconds.toFixed(0)} s.`,
    ``,
  ].join("\n");
}
