import { Command, Option } from "commander";
import { availableParallelism } from "node:os";
import { defaultFigure1Config, Figure1Config } from "../experiments/figure1/config.js";
import { checkNoSyncBnFlag } from "../experiments/groupTraining.js";
import { runFigure1 } from "../experiments/figure1/run.js";
import { int, num } from "./parse.js";
import { addDataOptions, addRunnerOptions, runCommand, runnerSettings } from "./runOptions.js";


export function figure1Command(): Command {
  const d = defaultFigure1Config;
  const cmd = new Command("figure1").description(
    "Reproduce Figure 1 (§4.1): train the 784-100-100-100-10 sigmoid MLP on MNIST with and without BN, " +
      "measure test accuracy and the percentiles of one sigmoid input over training, and write figure1.json, the plots and summary.md.",
  );
  addDataOptions(cmd, "mnist", "results/figure1")
    .option("--steps <n>", "SGD steps per network and seed", int("--steps"), d.steps)
    .option("--eval-every <n>", "evaluate (test accuracy, sigmoid-input percentiles) every n steps", int("--eval-every"), d.evalEvery)
    .option("--seeds <n>", "repeat with seeds 0..n−1; mean and spread are reported", int("--seeds"), d.seeds)
    .option("--batch-size <n>", "examples per mini-batch", int("--batch-size"), d.batchSize)
    .option("--lr <x>", "SGD learning rate (both networks)", num("--lr"), d.lr)
    .option("--momentum <x>", "SGD momentum (both networks)", num("--momentum"), d.momentum)
    .option("--init-std <x>", "standard deviation of the Gaussian initial weights", num("--init-std"), d.initStd)
    .addOption(
      new Option("--init <scheme>", "normal: weights N(0, init-std²), biases 0 (the paper); default: PyTorch's nn.Linear U(±1/√fan_in) for weights and biases")
        .choices(["normal", "default"])
        .default("normal"),
    )
    .addOption(
      new Option("--input <mode>", "scaled: pixels/255 in [0, 1]; binary: pixel ≥ 128 → 1; standardized: (pixels/255 − 0.1307)/0.3081")
        .choices(["scaled", "binary", "standardized"])
        .default(d.input),
    )
    .option("--probe-unit <k>", "unit of the last hidden layer whose sigmoid input is probed", int("--probe-unit"), d.probeUnit)
    .option("--population-batches <n>", "training batches for the final population statistics (Algorithm 2)", int("--population-batches"), d.populationBatches)
    .addOption(new Option("--backend <name>", "kernel backend").choices(["auto", "wasm", "reference"]).default(d.backend))
    .option("--workers <n>", "data-parallel workers per run, each training on batch-size/n examples of every batch (a divisor of --batch-size)", int("--workers"), 1)
    .option("--no-sync-bn", "with --workers ≥ 2: BN normalizes each worker's shard on its own instead of the whole batch (SyncBN, the default)");
  return addRunnerOptions(cmd, {
    dataset: "mnist",
    unit: "run",
    jobs: "the cores divided by --workers, at least 1",
    splits: ["train", "test"],
    example: "covshift figure1 --data ../shared/data/mnist (the full experiment)",
  })
    .action(async (o) => {
      const config: Figure1Config = {
        ...d,
        steps: o.steps,
        evalEvery: o.evalEvery,
        seeds: o.seeds,
        batchSize: o.batchSize,
        lr: o.lr,
        momentum: o.momentum,
        initStd: o.initStd,
        init: o.init,
        input: o.input,
        probeUnit: o.probeUnit,
        populationBatches: o.populationBatches,
        backend: o.backend,
        workers: o.workers,
        syncBatchNorm: o.syncBn,
      };
      checkNoSyncBnFlag("figure1", o.workers, o.syncBn);
      // Each run keeps --workers threads busy: as many runs at once as leave one core per worker.
      const jobs: number = o.jobs ?? Math.max(1, Math.min(Math.floor(availableParallelism() / Math.max(1, o.workers)), 2 * config.seeds));
      await runCommand(runnerSettings(o, "mnist", jobs, o.workers), { totalSteps: config.steps, accuracyLabel: "test accuracy", unit: "run" }, (settings, show) =>
        runFigure1({ ...settings, config, limits: { train: o.trainLimit, test: o.testLimit }, onEvent: (e) => show(`${e.network} seed ${e.seed}`, e.message) }),
      );
    });
}
