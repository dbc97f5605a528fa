import { Command, Option } from "commander";
import { defaultAdabnConfig, runAdabn, type AdabnConfig } from "../experiments/adabn/run.js";
import { int, num } from "./parse.js";
import { addDataOptions, addRunnerOptions, runCommand, runnerSettings } from "./runOptions.js";

export function adabnCommand(): Command {
  const d = defaultAdabnConfig;
  const cmd = new Command("adabn").description(
    "AdaBN (the paper's conclusion): train the §4.1 BN network on MNIST, then on shifted domains made from the MNIST test set " +
      "(inverted, rotated, additive noise) measure test accuracy with the source statistics and after recomputing BN's population " +
      "statistics on unlabeled images of the domain (nn.adaptBatchNorm). Writes adabn.json, summary.md and adabn.png.",
  );
  addDataOptions(cmd, "mnist", "results/adabn")
    .option("--steps <n>", "SGD steps of the BN network (§4.1's other settings)", int("--steps"), d.steps)
    .option("--seed <n>", "seed of the initial weights and the batch order", int("--seed"), d.seed)
    .option("--adapt-images <n>", "the first n test images (labels unused) adapt the statistics; the rest are evaluated", int("--adapt-images"), d.adaptImages)
    .option("--adapt-batch-size <n>", "images per batch while adapting", int("--adapt-batch-size"), d.adaptBatchSize)
    .option("--rotate <degrees>", "rotation of the rotated domain (counter-clockwise)", num("--rotate"), d.rotateDegrees)
    .option("--noise-std <x>", "standard deviation of the noise domain's additive Gaussian noise", num("--noise-std"), d.noiseStd)
    .option("--noise-seed <n>", "seed of that noise", int("--noise-seed"), d.noiseSeed)
    .addOption(new Option("--backend <name>", "kernel backend").choices(["auto", "wasm", "reference"]).default(d.backend));
  return addRunnerOptions(cmd, { dataset: "mnist", unit: "run", splits: ["train", "test"], example: "covshift adabn --data ../shared/data/mnist" }).action(
    async (o) => {
      const config: AdabnConfig = {
        steps: o.steps,
        seed: o.seed,
        adaptImages: o.adaptImages,
        adaptBatchSize: o.adaptBatchSize,
        rotateDegrees: o.rotate,
        noiseStd: o.noiseStd,
        noiseSeed: o.noiseSeed,
        backend: o.backend,
      };
      // One network is trained: one job, with every core for its kernels.
      await runCommand(runnerSettings(o, "mnist", 1), { totalSteps: config.steps, accuracyLabel: "accuracy on the evaluated test images", unit: "run" }, (settings, show) =>
        runAdabn({ ...settings, config, limits: { train: o.trainLimit, test: o.testLimit }, onEvent: (m) => show("BN network", m) }),
      );
    },
  );
}
