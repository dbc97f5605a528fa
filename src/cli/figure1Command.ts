import { Command, Option } from "commander";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { resolveDataDir } from "../data/datadir.js";
import { defaultFigure1Config, Figure1Config } from "../experiments/figure1/config.js";
import { checkNoSyncBnFlag } from "../experiments/groupTraining.js";
import { runFigure1 } from "../experiments/figure1/run.js";
import { int, num } from "./parse.js";
import { runSession } from "./session.js";
import { threadsPerJob } from "../node/wasmThreads.js";


export function figure1Command(): Command {
  const d = defaultFigure1Config;
  return new Command("figure1")
    .description(
      "Reproduce Figure 1 (§4.1): train the 784-100-100-100-10 sigmoid MLP on MNIST with and without BN, " +
        "measure test accuracy and the percentiles of one sigmoid input over training, and write figure1.json, the plots and summary.md.",
    )
    .option("--data <dir>", "MNIST directory (default: $COVSHIFT_DATA, else the per-user cache; missing files are downloaded)")
    .option("--out <dir>", "output directory", "results/figure1")
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
    .option("--no-sync-bn", "with --workers ≥ 2: BN normalizes each worker's shard on its own instead of the whole batch (SyncBN, the default)")
    .option("--jobs <n>", "runs trained at once, each in a worker thread (default: the cores divided by --workers, at least 1)", int("--jobs"))
    .option("--threads <n>", "threads of each run's wasm kernels (default: the cores left per job, at least 1; results do not depend on it)", int("--threads"))
    .option("--train-limit <n>", "use only the first n training images (quick tries)", int("--train-limit"))
    .option("--test-limit <n>", "use only the first n test images (quick tries)", int("--test-limit"))
    .option("--no-download", "never download: fail with instructions when MNIST files are missing")
    .option("--resume", "continue the interrupted run in --out exactly where it stopped", false)
    .option("--overwrite", "discard earlier results in --out", false)
    .addHelpText(
      "after",
      `
Ctrl-C stops cleanly: every run writes a checkpoint first; run the same command with --resume to continue.
Example (the full experiment): covshift figure1 --data ../shared/data/mnist`,
    )
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
      const dataDir = resolveDataDir("mnist", o.data);
      const outDir = resolve(o.out);
      // Each run keeps --workers threads busy: as many runs at once as leave one core per worker.
      const jobs: number = o.jobs ?? Math.max(1, Math.min(Math.floor(availableParallelism() / Math.max(1, o.workers)), 2 * config.seeds));
      await runSession({
        outDir,
        totalSteps: config.steps,
        accuracyLabel: "test accuracy",
        unit: "run",
        start: ({ stopFlag, show }) =>
          runFigure1({
            config,
            dataDir,
            outDir,
            resume: o.resume,
            overwrite: o.overwrite,
            jobs,
            threads: o.threads ?? threadsPerJob(jobs * o.workers),
            limits: { train: o.trainLimit, test: o.testLimit },
            download: o.download,
            stopFlag,
            onEvent: (e) => show(`${e.network} seed ${e.seed}`, e.message),
          }),
      });
    });
}
