/**
 * `covshift adabn`: the paper's conclusion proposes recomputing BN's
 * population statistics for a new data distribution (AdaBN, Li et al.
 * 2016). Train the §4.1 BN network on MNIST, then for each shifted domain
 * made from the test set measure the accuracy with the source statistics
 * and after nn.adaptBatchNorm on unlabeled images of that domain. The
 * images used for adapting and those evaluated are disjoint halves of the
 * test set (the labels of the first are never read).
 */
import { join } from "node:path";
import { nn } from "../../index.js";
import { readJson } from "../../io/files.js";
import { writeAdabnPlot } from "../../report/adabnPlots.js";
import { withBackend } from "../backend.js";
import { accuracyOf, batchesInOrder, loadTrainedNetwork } from "../evaluate.js";
import { defaultFigure1Config, type Figure1Config } from "../figure1/config.js";
import { loadFigure1Data, shareImageSet } from "../figure1/data.js";
import type { Figure1JobPayload } from "../figure1/job.js";
import type { Figure1RunResult } from "../figure1/trainer.js";
import { backendBuild } from "../runner/checkpoint.js";
import { checkLimit } from "../runner/options.js";
import { resultPathOf, runExperiment, writeReport, type ExperimentOutcome, type ExperimentRunOptions, type JobEvent } from "../runner/runner.js";
import { describeDomain, DOMAINS, shiftImages, type DomainName, type DomainSettings } from "./domains.js";

export interface AdabnConfig extends DomainSettings {
  /** SGD steps of the BN network on the MNIST training set (§4.1's settings otherwise). */
  steps: number;
  seed: number;
  /** Test images (the first ones) whose statistics the adapted network takes; their labels are not used. */
  adaptImages: number;
  /** Images per batch when adapting (the statistics are those of all adapt images, averaged over batches as Algorithm 2). */
  adaptBatchSize: number;
  backend: string;
}

export const defaultAdabnConfig: AdabnConfig = {
  steps: 5000,
  seed: 0,
  adaptImages: 5000,
  adaptBatchSize: 500,
  rotateDegrees: 30,
  noiseStd: 0.5,
  noiseSeed: 1,
  backend: "auto",
};

export interface AdabnDomainResult {
  domain: DomainName;
  description: string;
  /** Test accuracy on the evaluated half with the source (training) statistics. */
  before: number;
  /** After nn.adaptBatchNorm on the domain's adapt half. */
  after: number;
}

export interface AdabnResult {
  config: AdabnConfig;
  network: string;
  backend: string;
  trainSteps: number;
  finalTrainLoss: number;
  adaptImages: number;
  evalImages: number;
  domains: AdabnDomainResult[];
  wallSeconds: number;
}

export function validateAdabnConfig(c: AdabnConfig): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`adabn: --${name} must be a positive integer; got ${v}`);
  };
  positiveInt("steps", c.steps);
  positiveInt("adapt-images", c.adaptImages);
  positiveInt("adapt-batch-size", c.adaptBatchSize);
  if (c.adaptBatchSize < 2) throw new Error("adabn: --adapt-batch-size must be at least 2 (BN needs two values per unit)");
  if (c.adaptImages < c.adaptBatchSize) {
    throw new Error(`adabn: --adapt-images ${c.adaptImages} is fewer than one adapt batch of --adapt-batch-size ${c.adaptBatchSize}; lower --adapt-batch-size`);
  }
  if (!Number.isInteger(c.seed) || c.seed < 0) throw new Error(`adabn: --seed must be an integer ≥ 0; got ${c.seed}`);
  if (!Number.isFinite(c.rotateDegrees)) throw new Error(`adabn: --rotate must be a number of degrees; got ${c.rotateDegrees}`);
  if (!(c.noiseStd >= 0)) throw new Error(`adabn: --noise-std must be ≥ 0; got ${c.noiseStd}`);
}

const INPUT = 784;

export type AdabnRunOptions = ExperimentRunOptions<AdabnConfig, { train?: number; test?: number }, JobEvent>;

/** The training of the BN network: figure1's, with one seed and the §4.1 settings (a measurement every 500 steps). */
export function adabnTrainingConfig(c: AdabnConfig): Figure1Config {
  return { ...defaultFigure1Config, steps: c.steps, evalEvery: Math.min(500, c.steps), seeds: 1, backend: c.backend };
}

/**
 * Train the BN network (one job of the experiment runner, figure1's job
 * module: checkpoints, Ctrl-C and --resume as figure1's), then read it back
 * from the model file it left and, for each domain, measure the accuracy
 * before and after nn.adaptBatchNorm; write adabn.json, summary.md and
 * adabn.svg/.png into outDir.
 */
export async function runAdabn(options: AdabnRunOptions): Promise<ExperimentOutcome<AdabnResult>> {
  const { config, outDir } = options;
  validateAdabnConfig(config);
  const limits = options.limits ?? {};
  const fig = adabnTrainingConfig(config);
  const A = config.adaptImages;
  checkLimit("adabn", "--train-limit", limits.train, fig.batchSize, ` (at least one batch of ${fig.batchSize})`);
  checkLimit("adabn", "--test-limit", limits.test, A + 1, ` (more than --adapt-images ${A}: the rest are evaluated)`);
  const modelPath = join(outDir, "models", "batchnorm");
  return runExperiment(
    {
      command: "adabn",
      doneDir: "runs",
      config,
      limits,
      comparable: (c: AdabnConfig) => c,
      backend: config.backend,
      steps: fig.steps,
      evalEvery: fig.evalEvery,
      load: async () => {
        const { train, test } = await loadFigure1Data(options.dataDir, "scaled", limits, { download: options.download, shared: true });
        if (A >= test.count) {
          throw new Error(`adabn: --adapt-images ${A} leaves no test image to evaluate (the test set has ${test.count}); use fewer`);
        }
        if (train.count < fig.batchSize) throw new Error(`adabn: ${train.count} training images are fewer than one batch of ${fig.batchSize}; use more images`);
        return { train: shareImageSet(train), test: shareImageSet(test) };
      },
      plan: ({ train, test }) => [
        {
          name: "batchnorm",
          label: "BN network",
          // Measured during training on the evaluated half only: the adapt half's labels are never read.
          payload: {
            config: fig,
            network: "batchnorm",
            seed: config.seed,
            train,
            test: { images: test.images.subarray(A * INPUT), labels: test.labels.subarray(A), count: test.count - A },
            modelPath,
            title: `adabn: the §4.1 BN network, seed ${config.seed}`,
          } satisfies Figure1JobPayload,
        },
      ],
      workerUrl: new URL("../figure1/job.js", import.meta.url),
      onEvent: (_job, message) => options.onEvent?.(message),
      finish: async ({ test }, wallSeconds) => {
        const run = readJson<Figure1RunResult>(resultPathOf(outDir, "runs", "batchnorm"));
        // The domains are evaluated here, on the network the job left, with the backend it trained on.
        const result = await withBackend(config.backend, () => {
          const trained = loadTrainedNetwork(modelPath, fig);
          const evalLabels = test.labels.subarray(A);
          const domains: AdabnDomainResult[] = DOMAINS.map((domain) => {
            const shifted = shiftImages(test.images, domain, config);
            const adaptPart = shifted.subarray(0, A * INPUT);
            const evalPart = shifted.subarray(A * INPUT);
            const before = accuracyOf(trained, evalPart, evalLabels);
            const adapted = nn.deepCopy(trained);
            nn.adaptBatchNorm(adapted, batchesInOrder(adaptPart, A, config.adaptBatchSize, Infinity));
            const after = accuracyOf(adapted, evalPart, evalLabels);
            return { domain, description: describeDomain(domain, config), before, after };
          });
          return {
            config,
            network: "§4.1 BN network: 784 → 3 × (100, BN, sigmoid) → 10, SGD lr 0.01 momentum 0.9, batch 60",
            backend: backendBuild(run.backend ?? ""),
            trainSteps: run.steps.at(-1)!,
            finalTrainLoss: run.trainLoss.at(-1)!,
            adaptImages: A,
            evalImages: test.count - A,
            domains,
            wallSeconds,
          } satisfies AdabnResult;
        });
        return writeReport(outDir, { json: "adabn.json", markdown: "summary.md" }, result, adabnMarkdown(result), () => writeAdabnPlot(result, outDir));
      },
    },
    options,
  );
}

export function adabnMarkdown(r: AdabnResult): string {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const lines = [
    `# AdaBN on shifted MNIST`,
    ``,
    `The §4.1 BN network trained ${r.trainSteps} steps on MNIST (seed ${r.config.seed}, ${r.backend}; final training loss ${r.finalTrainLoss.toFixed(4)}), evaluated on ${r.evalImages} test images of each domain with the training set's population statistics ("before") and after \`nn.adaptBatchNorm\` on ${r.adaptImages} other, unlabeled test images of the same domain ("after").`,
    ``,
    `| domain | what it is | before | after AdaBN | change |`,
    `|---|---|---:|---:|---:|`,
    ...r.domains.map((d) => `| ${d.domain} | ${d.description} | ${pct(d.before)} | ${pct(d.after)} | ${d.after >= d.before ? "+" : "−"}${(100 * Math.abs(d.after - d.before)).toFixed(2)} |`),
    ``,
    `Wall time ${r.wallSeconds.toFixed(0)} s.`,
    ``,
  ];
  return lines.join("\n");
}
