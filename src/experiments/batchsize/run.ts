/**
 * `covshift batchsize`: what BN needs its batch for. The §4.1 BN network
 * trained at batch sizes 2 … 60 with plain BN, the same networks evaluated
 * with population statistics (Algorithm 2), ghost BN and Batch Renorm; and
 * batch 60 split over data-parallel workers with SyncBN and without (each
 * worker's BN on its shard). Every run sees the same number of training
 * examples; the learning rate scales linearly with the batch (0.01 at 60).
 * Final test accuracy against batch size: one table, one picture.
 */
import { mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { nn, optim, scope, Tensor } from "../../index.js";
import { writeFileAtomic } from "../../io/files.js";
import { startDataParallel } from "../../node/parallel.js";
import { writeBatchsizePlot } from "../../report/batchsizePlots.js";
import { Generator } from "../../tensor/random.js";
import { accuracyOf } from "../adabn/run.js";
import { useBackend } from "../backend.js";
import { defaultFigure1Config, type Figure1Config } from "../figure1/config.js";
import { loadFigure1Data } from "../figure1/data.js";
import { buildFigure1Network } from "../figure1/network.js";
import type { Figure1ReplicaOptions } from "../figure1/replica.js";
import type { ImageSet } from "../figure1/trainer.js";

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
const INPUT = 784;

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

/** The §4.1 BN network of figure1 (same initial weights for a seed), its BN layers made by `norm`. */
function buildNetwork(config: Figure1Config, seed: number, norm: ((c: number) => nn.Module) | null): nn.Sequential {
  const { model } = buildFigure1Network("batchnorm", config, new Generator(seed));
  if (norm === null) return model;
  const layers: nn.Module[] = [];
  for (let i = 0; i < model.length; i++) {
    const l = model.at(i);
    layers.push(l instanceof nn.BatchNorm1d ? norm(l.numFeatures) : l);
  }
  return new nn.Sequential(...layers);
}

/** Shuffled mini-batches of the training set (a new permutation per epoch, the tail dropped), seeded as figure1's. */
class Batches {
  private readonly gen: Generator;
  private perm: Int32Array;
  private cursor = 0;
  readonly x: Tensor;
  readonly y: Int32Array;
  constructor(
    private readonly train: ImageSet,
    private readonly size: number,
    seed: number,
  ) {
    this.gen = new Generator(1_000_003 + seed);
    this.perm = this.gen.permutation(train.count);
    this.x = new Tensor(new Float32Array(size * INPUT), [size, INPUT]);
    this.y = new Int32Array(size);
  }
  next(): void {
    if (this.cursor + this.size > this.train.count) {
      this.perm = this.gen.permutation(this.train.count);
      this.cursor = 0;
    }
    for (let b = 0; b < this.size; b++) {
      const idx = this.perm[this.cursor + b];
      this.x.data.set(this.train.images.subarray(idx * INPUT, (idx + 1) * INPUT), b * INPUT);
      this.y[b] = this.train.labels[idx];
    }
    this.cursor += this.size;
  }
}

export interface BatchsizeRunOptions {
  config: BatchsizeConfig;
  dataDir: string;
  outDir: string;
  overwrite?: boolean;
  limits?: { train?: number; test?: number };
  download?: boolean;
  onProgress?: (message: string) => void;
}

export async function runBatchsize(options: BatchsizeRunOptions): Promise<{ result: BatchsizeResult; files: string[] }> {
  const { config, outDir } = options;
  validateBatchsizeConfig(config);
  const say = options.onProgress ?? (() => {});
  const jsonPath = join(outDir, "batchsize.json");
  if (existsSync(jsonPath) && !options.overwrite) {
    throw new Error(`batchsize: ${outDir} already holds results (batchsize.json). Discard them with --overwrite, or choose another --out.`);
  }
  const { train, test } = await loadFigure1Data(options.dataDir, "scaled", options.limits ?? {}, { download: options.download });
  const t0 = performance.now();
  const backend = await useBackend(config.backend);
  const examples = config.steps * REFERENCE_BATCH;
  const base: Figure1Config = { ...defaultFigure1Config, backend: config.backend };
  const runs: BatchsizeRun[] = [];
  const want = (v: Variant) => config.variants.includes(v);
  const evaluate = (model: nn.Module) => accuracyOf(model, test.images, test.labels);

  const trainLocal = (model: nn.Sequential, B: number, lr: number) => {
    const steps = Math.floor(examples / B);
    const opt = new optim.SGD(model.parameters(), { lr, momentum: base.momentum });
    const loss = new nn.CrossEntropyLoss();
    const batches = new Batches(train, B, config.seed);
    model.train();
    for (let s = 0; s < steps; s++) {
      batches.next();
      const value = scope(() => {
        opt.zeroGrad({ setToNone: false });
        const l = loss.forward(model.forward(batches.x), batches.y);
        l.backward();
        opt.step();
        return l.item();
      });
      if (!Number.isFinite(value)) throw new Error(`batchsize: the loss became ${value} at batch size ${B}, step ${s}: the run diverged`);
    }
    return steps;
  };

  for (const B of config.batchSizes) {
    const lr = (base.lr * B) / REFERENCE_BATCH;
    if (want("bn") || want("bn-population")) {
      const t = performance.now();
      const model = buildNetwork(base, config.seed, null);
      const steps = trainLocal(model, B, lr);
      const wallSeconds = (performance.now() - t) / 1000;
      if (want("bn")) runs.push({ variant: "bn", batchSize: B, steps, lr, testAccuracy: evaluate(model), wallSeconds });
      if (want("bn-population")) {
        const pop = function* () {
          for (let b = 0; b < config.populationBatches && (b + 1) * REFERENCE_BATCH <= train.count; b++) {
            yield new Tensor(train.images.slice(b * REFERENCE_BATCH * INPUT, (b + 1) * REFERENCE_BATCH * INPUT), [REFERENCE_BATCH, INPUT]);
          }
        };
        nn.recomputeBatchNormStats(model, pop());
        runs.push({ variant: "bn-population", batchSize: B, steps, lr, testAccuracy: evaluate(model), wallSeconds });
      }
      say(`BN at batch ${B}: ${runs.filter((x) => x.batchSize === B && x.variant.startsWith("bn")).map((x) => `${(100 * x.testAccuracy).toFixed(2)}% (${x.variant})`).join(", ")}`);
    }
    const v = ghostSize(B, config.ghostBatchSize);
    const bnRun = runs.find((x) => x.variant === "bn" && x.batchSize === B);
    if (want("ghost") && v === B && bnRun) {
      // One virtual batch of the whole batch is BN: the BN run's result, not trained twice.
      runs.push({ ...bnRun, variant: "ghost", virtualBatchSize: v });
    } else if (want("ghost")) {
      const t = performance.now();
      const model = buildNetwork(base, config.seed, (c) => new nn.GhostBatchNorm1d(c, { virtualBatchSize: v }));
      const steps = trainLocal(model, B, lr);
      runs.push({ variant: "ghost", batchSize: B, virtualBatchSize: v, steps, lr, testAccuracy: evaluate(model), wallSeconds: (performance.now() - t) / 1000 });
      say(`ghost BN (virtual ${v}) at batch ${B}: ${(100 * runs.at(-1)!.testAccuracy).toFixed(2)}%`);
    }
    if (want("renorm")) {
      const t = performance.now();
      const steps = Math.floor(examples / B);
      // The paper's schedule (5k / 25k / 40k of its steps) scaled to this run's length.
      const schedule = {
        rMax: 3,
        dMax: 5,
        warmupSteps: Math.round(0.05 * steps),
        dMaxReachedAt: Math.round(0.2 * steps),
        rMaxReachedAt: Math.round(0.3 * steps),
      };
      const model = buildNetwork(base, config.seed, (c) => new nn.BatchRenorm1d(c, schedule));
      trainLocal(model, B, lr);
      runs.push({ variant: "renorm", batchSize: B, steps, lr, testAccuracy: evaluate(model), wallSeconds: (performance.now() - t) / 1000 });
      say(`Batch Renorm at batch ${B}: ${(100 * runs.at(-1)!.testAccuracy).toFixed(2)}%`);
    }
  }

  for (const variant of ["syncbn-workers", "bn-workers"] as const) {
    if (!want(variant)) continue;
    for (const workers of config.workers) {
      const t = performance.now();
      const dp = await startDataParallel<Figure1ReplicaOptions>({
        replica: new URL("../figure1/replica.js", import.meta.url),
        options: { config: base, network: "batchnorm", seed: config.seed },
        workers,
        inputShape: [INPUT],
        maxBatchSize: REFERENCE_BATCH,
        syncBatchNorm: variant === "syncbn-workers",
      });
      try {
        const steps = config.steps;
        const batches = new Batches(train, REFERENCE_BATCH, config.seed);
        for (let s = 0; s < steps; s++) {
          batches.next();
          const value = dp.step(batches.x, batches.y);
          if (!Number.isFinite(value)) throw new Error(`batchsize: the loss became ${value} with ${workers} workers, step ${s}: the run diverged`);
        }
        const testAccuracy = evaluate(dp.pull());
        runs.push({ variant, batchSize: REFERENCE_BATCH / workers, workers, steps, lr: base.lr, testAccuracy, wallSeconds: (performance.now() - t) / 1000 });
        say(`${VARIANT_LABELS[variant]}, ${workers} workers × ${REFERENCE_BATCH / workers}: ${(100 * testAccuracy).toFixed(2)}%`);
      } finally {
        await dp.close();
      }
    }
  }

  const result: BatchsizeResult = { config, backend, examples, runs, wallSeconds: (performance.now() - t0) / 1000 };
  mkdirSync(outDir, { recursive: true });
  const files = [jsonPath, join(outDir, "summary.md")];
  writeFileAtomic(files[0], JSON.stringify(result, null, 1));
  writeFileAtomic(files[1], batchsizeMarkdown(result));
  files.push(...(await writeBatchsizePlot(result, outDir)));
  return { result, files };
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
