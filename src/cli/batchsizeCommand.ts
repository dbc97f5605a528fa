import { Command, InvalidArgumentError, Option } from "commander";
import { availableParallelism } from "node:os";
import { defaultBatchsizeConfig, runBatchsize, VARIANTS, type BatchsizeConfig, type Variant } from "../experiments/batchsize/run.js";
import { int } from "./parse.js";
import { addDataOptions, addRunnerOptions, runCommand, runnerSettings } from "./runOptions.js";

const list = (name: string) => (v: string) =>
  v.split(",").map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be a comma-separated list of integers; got "${v}"`);
    return n;
  });

export function batchsizeCommand(): Command {
  const d = defaultBatchsizeConfig;
  const cmd = new Command("batchsize").description(
    "What BN needs its batch for: the §4.1 BN network trained on MNIST at batch sizes 2 … 60 with plain BN, BN evaluated with " +
      "population statistics, ghost BN and Batch Renorm, and batch 60 split over data-parallel workers with SyncBN and with BN per shard; " +
      "final test accuracy against batch size. Every network is a run of its own (a worker thread; --jobs at once). Writes batchsize.json, summary.md and batchsize.png.",
  );
  addDataOptions(cmd, "mnist", "results/batchsize")
    .option("--steps <n>", "length of every run, in steps at batch 60: each run sees steps × 60 training examples (smaller batches take more steps)", int("--steps"), d.steps)
    .option("--batch-sizes <list>", "batch sizes to train at", list("--batch-sizes"), d.batchSizes)
    .option("--workers <list>", "worker counts for batch 60 split into shards", list("--workers"), d.workers)
    .option("--variants <list>", `which rows to run, of ${VARIANTS.join(", ")}`, (v: string) => v.split(",").map((s) => s.trim()), d.variants)
    .option("--ghost-batch-size <n>", "ghost BN's virtual batch: the largest divisor of the batch size not above n", int("--ghost-batch-size"), d.ghostBatchSize)
    .option("--population-batches <n>", "training batches of 60 for the population statistics", int("--population-batches"), d.populationBatches)
    .option("--seed <n>", "seed of the initial weights and the batch order (the same for every run)", int("--seed"), d.seed)
    .addOption(new Option("--backend <name>", "kernel backend").choices(["auto", "wasm", "reference"]).default(d.backend));
  return addRunnerOptions(cmd, {
    dataset: "mnist",
    unit: "run",
    jobs: "the cores, at least 1",
    splits: ["train", "test"],
    example: "covshift batchsize --data ../shared/data/mnist",
  }).action(async (o) => {
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
    const jobs: number = o.jobs ?? Math.max(1, availableParallelism());
    await runCommand(runnerSettings(o, "mnist", jobs), { totalSteps: config.steps, accuracyLabel: "test accuracy", unit: "run" }, (settings, show) =>
      runBatchsize({ ...settings, config, limits: { train: o.trainLimit, test: o.testLimit }, onEvent: (e) => show(e.label, e.message) }),
    );
  });
}
