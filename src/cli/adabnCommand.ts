import { Command, Option } from "commander";
import { resolve } from "node:path";
import { resolveDataDir } from "../data/datadir.js";
import { defaultAdabnConfig, runAdabn, type AdabnConfig } from "../experiments/adabn/run.js";
import { readFileSync } from "node:fs";
import { int, num } from "./parse.js";
import { loadChartLibraries } from "../report/charts.js";

export function adabnCommand(): Command {
  const d = defaultAdabnConfig;
  return new Command("adabn")
    .description(
      "AdaBN (the paper's conclusion): train the §4.1 BN network on MNIST, then on shifted domains made from the MNIST test set " +
        "(inverted, rotated, additive noise) measure test accuracy with the source statistics and after recomputing BN's population " +
        "statistics on unlabeled images of the domain (nn.adaptBatchNorm). Writes adabn.json, summary.md and adabn.png.",
    )
    .option("--data <dir>", "MNIST directory (default: $COVSHIFT_DATA, else the per-user cache; missing files are downloaded)")
    .option("--out <dir>", "output directory", "results/adabn")
    .option("--steps <n>", "SGD steps of the BN network (§4.1's other settings)", int("--steps"), d.steps)
    .option("--seed <n>", "seed of the initial weights and the batch order", int("--seed"), d.seed)
    .option("--adapt-images <n>", "the first n test images (labels unused) adapt the statistics; the rest are evaluated", int("--adapt-images"), d.adaptImages)
    .option("--adapt-batch-size <n>", "images per batch while adapting", int("--adapt-batch-size"), d.adaptBatchSize)
    .option("--rotate <degrees>", "rotation of the rotated domain (counter-clockwise)", num("--rotate"), d.rotateDegrees)
    .option("--noise-std <x>", "standard deviation of the noise domain's additive Gaussian noise", num("--noise-std"), d.noiseStd)
    .option("--noise-seed <n>", "seed of that noise", int("--noise-seed"), d.noiseSeed)
    .addOption(new Option("--backend <name>", "kernel backend").choices(["auto", "wasm", "reference"]).default(d.backend))
    .option("--train-limit <n>", "use only the first n training images (quick tries)", int("--train-limit"))
    .option("--test-limit <n>", "use only the first n test images (quick tries)", int("--test-limit"))
    .option("--no-download", "never download: fail with instructions when MNIST files are missing")
    .option("--overwrite", "replace earlier results in --out", false)
    .action(async (o) => {
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
      await loadChartLibraries(); // a missing chart package is reported now, not after training
      const outDir = resolve(o.out);
      const started = performance.now();
      const { files } = await runAdabn({
        config,
        dataDir: resolveDataDir("mnist", o.data),
        outDir,
        overwrite: o.overwrite,
        limits: { train: o.trainLimit, test: o.testLimit },
        download: o.download,
        onProgress: (m) => process.stderr.write(`adabn: ${m}\n`),
      });
      process.stdout.write("\n" + readFileSync(files[1], "utf8"));
      process.stdout.write(`\nWrote ${files.length} files to ${outDir} in ${((performance.now() - started) / 1000).toFixed(0)} s.\n`);
    });
}
