/**
 * `covshift adabn`: the paper's conclusion proposes recomputing BN's
 * population statistics for a new data distribution (AdaBN, Li et al.
 * 2016). Train the §4.1 BN network on MNIST, then for each shifted domain
 * made from the test set measure the accuracy with the source statistics
 * and after nn.adaptBatchNorm on unlabeled images of that domain. The
 * images used for adapting and those evaluated are disjoint halves of the
 * test set (the labels of the first are never read).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { nn, noGrad, scope, Tensor } from "../../index.js";
import { writeFileAtomic } from "../../io/files.js";
import { writeAdabnPlot } from "../../report/adabnPlots.js";
import { useBackend } from "../backend.js";
import { defaultFigure1Config, type Figure1Config } from "../figure1/config.js";
import { loadFigure1Data } from "../figure1/data.js";
import { Figure1Trainer, type ImageSet } from "../figure1/trainer.js";
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
  if (!Number.isInteger(c.seed) || c.seed < 0) throw new Error(`adabn: --seed must be an integer ≥ 0; got ${c.seed}`);
  if (!Number.isFinite(c.rotateDegrees)) throw new Error(`adabn: --rotate must be a number of degrees; got ${c.rotateDegrees}`);
  if (!(c.noiseStd >= 0)) throw new Error(`adabn: --noise-std must be ≥ 0; got ${c.noiseStd}`);
}

const INPUT = 784;

/** Accuracy of `model` (inference mode) on `images`/`labels`. */
export function accuracyOf(model: nn.Module, images: Float32Array, labels: Uint8Array): number {
  const n = labels.length;
  let correct = 0;
  model.eval();
  noGrad(() => {
    for (let start = 0; start < n; start += 1000) {
      const rows = Math.min(1000, n - start);
      scope(() => {
        const out = model.forward(new Tensor(images.subarray(start * INPUT, (start + rows) * INPUT), [rows, INPUT]));
        for (let r = 0; r < rows; r++) {
          let best = 0;
          for (let j = 1; j < 10; j++) if (out.data[r * 10 + j] > out.data[r * 10 + best]) best = j;
          if (best === labels[start + r]) correct++;
        }
      });
    }
  });
  return correct / n;
}

export interface AdabnRunOptions {
  config: AdabnConfig;
  dataDir: string;
  outDir: string;
  overwrite?: boolean;
  limits?: { train?: number; test?: number };
  download?: boolean;
  onProgress?: (message: string) => void;
}

export async function runAdabn(options: AdabnRunOptions): Promise<{ result: AdabnResult; files: string[] }> {
  const { config, outDir } = options;
  validateAdabnConfig(config);
  const say = options.onProgress ?? (() => {});
  const jsonPath = join(outDir, "adabn.json");
  if (existsSync(jsonPath) && !options.overwrite) {
    throw new Error(`adabn: ${outDir} already holds results (adabn.json). Discard them with --overwrite, or choose another --out.`);
  }
  const { train, test } = await loadFigure1Data(options.dataDir, "scaled", options.limits ?? {}, { download: options.download });
  if (config.adaptImages >= test.count) {
    throw new Error(`adabn: --adapt-images ${config.adaptImages} leaves no test image to evaluate (the test set has ${test.count}); use fewer`);
  }
  const t0 = performance.now();
  const backend = await useBackend(config.backend);
  const fig: Figure1Config = { ...defaultFigure1Config, steps: config.steps, evalEvery: config.steps, seeds: 1, backend: config.backend };
  const A = config.adaptImages;
  const evalSet: ImageSet = { images: test.images.subarray(A * INPUT), labels: test.labels.subarray(A), count: test.count - A };
  const trainer = new Figure1Trainer("batchnorm", config.seed, fig, train, evalSet);
  let lossSum = 0;
  let lossCount = 0;
  let finalTrainLoss = NaN;
  while (!trainer.done) {
    lossSum += trainer.trainStep();
    lossCount++;
    if (trainer.step % 500 === 0 || trainer.done) {
      finalTrainLoss = lossSum / lossCount;
      say(`trained ${trainer.step}/${config.steps} steps, training loss ${finalTrainLoss.toFixed(4)}`);
      lossSum = 0;
      lossCount = 0;
    }
  }
  const domains: AdabnDomainResult[] = [];
  for (const domain of DOMAINS) {
    const shifted = shiftImages(test.images, domain, config);
    const adaptPart = shifted.subarray(0, A * INPUT);
    const evalPart = shifted.subarray(A * INPUT);
    const before = accuracyOf(trainer.model, evalPart, evalSet.labels);
    const adapted = nn.deepCopy(trainer.model);
    const B = config.adaptBatchSize;
    const batches = function* () {
      for (let s = 0; s + B <= A; s += B) yield new Tensor(adaptPart.slice(s * INPUT, (s + B) * INPUT), [B, INPUT]);
    };
    if (A < B) throw new Error(`adabn: --adapt-images ${A} is fewer than one adapt batch of ${B}; lower --adapt-batch-size`);
    nn.adaptBatchNorm(adapted, batches());
    const after = accuracyOf(adapted, evalPart, evalSet.labels);
    domains.push({ domain, description: describeDomain(domain, config), before, after });
    say(`${domain}: ${(100 * before).toFixed(2)}% → ${(100 * after).toFixed(2)}% after AdaBN`);
  }
  const result: AdabnResult = {
    config,
    network: "§4.1 BN network: 784 → 3 × (100, BN, sigmoid) → 10, SGD lr 0.01 momentum 0.9, batch 60",
    backend,
    trainSteps: trainer.step,
    finalTrainLoss,
    adaptImages: A,
    evalImages: evalSet.count,
    domains,
    wallSeconds: (performance.now() - t0) / 1000,
  };
  mkdirSync(outDir, { recursive: true });
  const files = [jsonPath, join(outDir, "summary.md")];
  writeFileAtomic(files[0], JSON.stringify(result, null, 1));
  writeFileAtomic(files[1], adabnMarkdown(result));
  files.push(...(await writeAdabnPlot(result, outDir)));
  return { result, files };
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
