import { Command, InvalidArgumentError, Option } from "commander";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { resolveDataDir } from "../data/datadir.js";
import { defaultBatchsizeConfig, runBatchsize, VARIANTS, type BatchsizeConfig, type Variant } from "../experiments/batchsize/run.js";
import { loadChartLibraries } from "../report/charts.js";
import { int } from "./parse.js";

const list = (name: string) => (v: string) =>
  v.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be a comma-separated list of integers; got "${v}"`);
    return n;
  });

export function batchsizeCommand(): Command {
  const d = defaultBatchsizeConfig;
  return new Command("batchsize")
    .description(
      "What BN needs its batch for: the §4.1 BN network trained on MNIST at batch sizes 2 … 60 with plain BN, BN evaluated with " +
        "population statistics, ghost BN and Batch Renorm, and batch 60 split over data-parallel workers with SyncBN and with BN per shard; " +
        "final test accuracy against batch size. Writes batchsize.json, summary.md and batchsize.png.",
    )
    .option("--data <dir>", "MNIST directory (default: $COVSHIFT_DATA, else the per-user cache; missing files are downloaded)")
    .option("--out <dir>", "output directory", "results/batchsize")
    .option("--steps <n>", "length of every run, in steps at batch 60: each run sees steps × 60 training examples (smaller batches take more steps)", int("--steps"), d.steps)
    .option("--batch-sizes <list>", "batch sizes to train at", list("--batch-sizes"), d.batchSizes)
    .option("--workers <list>", "worker counts for batch 60 split into shards", list("--workers"), d.workers)
    .option("--variants <list>", `which rows to run, of ${VARIANTS.join(", ")}`, (v: string) => v.split(",").map((s) => s.trim()), d.variants)
    .option("--ghost-batch-size <n>", "ghost BN's virtual batch: the largest divisor of the batch size not above n", int("--ghost-batch-size"), d.ghostBatchSize)
    .option("--population-batches <n>", "training batches of 60 for the population statistics", int("--population-batches"), d.populationBatches)
    .option("--seed <n>", "seed of the initial weights and the batch order (the same for every run)", int("--seed"), d.seed)
    .addOption(new Option("--backend <name>", "kernel backend").choices(["auto", "wasm", "reference"]).default(d.backend))
    .option("--train-limit <n>", "use only the first n training images (quick tries)", int("--train-limit"))
    .option("--test-limit <n>", "use only the first n test images (quick tries)", int("--test-limit"))
    .option("--no-download", "never download: fail with instructions when MNIST files are missing")
    .option("--overwrite", "replace earlier results in --out", false)
    .action(async (o) => {
      const config: BatchsizeConfig = {
        batchSizes: o.batchSizes,
        steps: o.steps,
        workers: o.workers,
        variants: o.variants as Variant[],
        ghostBatchSize: o.ghostBatchSize,
        populationBatches: o.populationBatches,
        seed: o.seed,
        backend: o.backend,
      };
      await loadChartLibraries(); // a missing chart package is reported now, not after training
      const outDir = resolve(o.out);
      const started = performance.now();
      const { files } = await runBatchsize({
        config,
        dataDir: resolveDataDir("mnist", o.data),
        outDir,
        overwrite: o.overwrite,
        limits: { train: o.trainLimit, test: o.testLimit },
        download: o.download,
        onProgress: (m) => process.stderr.write(`batchsize: ${m}\n`),
      });
      process.stdout.write("\n" + readFileSync(files[1], "utf8"));
      process.stdout.write(`\nWrote ${files.length} files to ${outDir} in ${((performance.now() - started) / 1000).toFixed(0)} s.\n`);
    });
}
