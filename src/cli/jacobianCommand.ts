import { Command, Option } from "commander";
import { defaultJacobianConfig, JacobianConfig } from "../experiments/jacobian/config.js";
import { runJacobian } from "../experiments/jacobian/run.js";
import { int, num } from "./parse.js";
import { addDataOptions, addRunnerOptions, runCommand, runnerSettings } from "./runOptions.js";

export function jacobianCommand(): Command {
  const d = defaultJacobianConfig;
  const cmd = new Command("jacobian").description(
    "§3.3's conjecture: train the §4.1 networks with and without BN (as figure1: same seed, same batches) and every --every steps " +
      "compute each hidden layer's exact Jacobian (float64) at fixed test images and its singular values; write jacobian.json, jacobian.svg/png and summary.md.",
  );
  addDataOptions(cmd, "mnist", "results/jacobian")
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
    .addOption(new Option("--backend <name>", "kernel backend for training (the Jacobians are float64, on the reference kernels)").choices(["auto", "wasm", "reference"]).default(d.backend));
  return addRunnerOptions(cmd, {
    dataset: "mnist",
    unit: "network",
    splits: ["train", "test"],
    example: "covshift jacobian --data ../shared/data/mnist (about 150 s of CPU time per network; 17 minutes of wall time at load 10–16 on 2 cores)",
  })
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
      // The two networks train at once, one job each.
      await runCommand(runnerSettings(o, "mnist", 2), { totalSteps: config.steps, accuracyLabel: "test accuracy", unit: "network" }, (settings, show) =>
        runJacobian({ ...settings, config, limits: { train: o.trainLimit, test: o.testLimit }, onEvent: (network, m) => show(network, m) }),
      );
    });
}
