import { Command, Option } from "commander";
import { resolve } from "node:path";
import { resolveDataDir } from "../data/datadir.js";
import { defaultJacobianConfig, JacobianConfig } from "../experiments/jacobian/config.js";
import { runJacobian } from "../experiments/jacobian/run.js";
import { threadsPerJob } from "../node/wasmThreads.js";
import { int, num } from "./parse.js";
import { runSession } from "./session.js";

export function jacobianCommand(): Command {
  const d = defaultJacobianConfig;
  return new Command("jacobian")
    .description(
      "§3.3's conjecture: train the §4.1 networks with and without BN (as figure1: same seed, same batches) and every --every steps " +
        "compute each hidden layer's exact Jacobian (float64) at fixed test images and its singular values; write jacobian.json, jacobian.svg/png and summary.md.",
    )
    .option("--data <dir>", "MNIST directory (default: $COVSHIFT_DATA, else the per-user cache; missing files are downloaded)")
    .option("--out <dir>", "output directory", "results/jacobian")
    .option("--steps <n>", "SGD steps per network", int("--steps"), d.steps)
    .option("--every <n>", "measure the Jacobians every n steps (and at the last step)", int("--every"), d.every)
    .option("--images <n>", "take the Jacobians at the first n test images", int("--images"), d.images)
    .option("--seed <n>", "seed of the initial weights and the batches (as figure1's seed n)", int("--seed"), d.seed)
    .option("--batch-size <n>", "examples per mini-batch", int("--batch-size"), d.batchSize)
    .option("--lr <x>", "SGD learning rate (both networks)", num("--lr"), d.lr)
    .option("--momentum <x>", "SGD momentum (both networks)", num("--momentum"), d.momentum)
    .option("--init-std <x>", "standard deviation of the Gaussian initial weights", num("--init-std"), d.initStd)
    .addOption(
      new Option("--input <mode>", "scaled: pixels/255 in [0, 1]; binary: pixel ≥ 128 → 1; standardized: (pixels/255 − 0.1307)/0.3081")
        .choices(["scaled", "binary", "standardized"])
        .default(d.input),
    )
    .addOption(new Option("--backend <name>", "kernel backend for training (the Jacobians are float64, on the reference kernels)").choices(["auto", "wasm", "reference"]).default(d.backend))
    .option("--threads <n>", "threads of each network's wasm kernels (default: the cores left per network, at least 1)", int("--threads"))
    .option("--train-limit <n>", "use only the first n training images (quick tries)", int("--train-limit"))
    .option("--test-limit <n>", "use only the first n test images (quick tries)", int("--test-limit"))
    .option("--no-download", "never download: fail with instructions when MNIST files are missing")
    .option("--resume", "continue the interrupted run in --out exactly where it stopped", false)
    .option("--overwrite", "discard earlier results in --out", false)
    .addHelpText("after", `\nExample (about 150 s of CPU time per network; 17 minutes of wall time at load 10–16 on 2 cores): covshift jacobian --data ../shared/data/mnist`)
    .action(async (o) => {
      const config: JacobianConfig = {
        ...d,
        steps: o.steps,
        every: o.every,
        images: o.images,
        seed: o.seed,
        batchSize: o.batchSize,
        lr: o.lr,
        momentum: o.momentum,
        initStd: o.initStd,
        input: o.input,
        backend: o.backend,
      };
      const dataDir = resolveDataDir("mnist", o.data);
      const outDir = resolve(o.out);
      await runSession({
        outDir,
        totalSteps: config.steps,
        accuracyLabel: "test accuracy",
        unit: "network",
        start: ({ stopFlag, show }) =>
          runJacobian({
            config,
            dataDir,
            outDir,
            resume: o.resume,
            overwrite: o.overwrite,
            threads: o.threads ?? threadsPerJob(2),
            limits: { train: o.trainLimit, test: o.testLimit },
            download: o.download,
            stopFlag,
            onEvent: (network, m) => show(network, m),
          }),
      });
    });
}
