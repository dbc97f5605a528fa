import { Command, InvalidArgumentError, Option } from "commander";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { SHUFFLE_MODES } from "../data/batches.js";
import { parseWidth, WIDTH_PRESETS } from "../experiments/table/inception.js";
import {
  defaultTableConfig,
  mergeConfigFile,
  parseRows,
  ROW_IDS,
  ROW_NAMES,
  type RowId,
  type TableConfig,
} from "../experiments/table/rows.js";
import { runTable } from "../experiments/table/run.js";
import { checkNoSyncBnFlag } from "../experiments/groupTraining.js";
import { int, num } from "./parse.js";
import { addDataOptions, addRunnerOptions, runCommand, runnerSettings } from "./runOptions.js";

const wrap = <T>(parse: (v: string) => T) => (v: string) => {
  try {
    return parse(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

/** Command-line options that set a TableConfig key (top level, or in `accelerated` for the --accel-* ones). */
const CONFIG_OPTIONS: Record<string, string> = {
  steps: "steps",
  evalEvery: "evalEvery",
  width: "width",
  stemStride: "stemStride",
  batchSize: "batchSize",
  seed: "seed",
  init: "init",
  lr: "lr",
  momentum: "momentum",
  weightDecay: "weightDecay",
  lrDecay: "lrDecay",
  lrDecayEvery: "lrDecayEvery",
  dropout: "dropout",
  lrn: "lrn",
  distortion: "distortion",
  shuffle: "shuffle",
  backend: "backend",
  workers: "workers",
  syncBn: "syncBatchNorm",
  accelL2Divisor: "accelerated.weightDecayDivisor",
  accelDecaySpeedup: "accelerated.decaySpeedup",
  accelDistortion: "accelerated.distortion",
  accelShuffle: "accelerated.shuffle",
};

/** The --config file's JSON, with errors that name the file. */
function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`--config: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`--config: ${file} is not valid JSON (${(err as Error).message})`);
  }
}

export function tableCommand(): Command {
  const d = defaultTableConfig;
  const a = d.accelerated;
  const presets = Object.entries(WIDTH_PRESETS).map(([k, v]) => `${k} = ${v}`).join(", ");
  const cmd = new Command("table").description(
    "Reproduce the Inception table (§4.2.2) and Figure 2 in miniature on CIFAR-10: train Inception, BN-Baseline, BN-x5, BN-x30, " +
      "BN-x5-Sigmoid and Inception-Sigmoid, measure validation accuracy as they train, and write table.json, table.md and figure2.svg/.png.",
  );
  addDataOptions(cmd, "cifar10", "results/table")
    .option("--rows <list>", `rows to train, comma-separated (default: all): ${ROW_IDS.join(",")}`, wrap(parseRows))
    .option("--config <file>", "JSON file of settings: the keys of a table.json's \"config\" (which so reproduces that run), e.g. {\"steps\": 3000, \"overrides\": {\"bn-x30\": {\"lr\": 0.2}}}; command-line options override it")
    .option("--steps <n>", "SGD steps per row", int("--steps"), d.steps)
    .option("--eval-every <n>", "measure validation accuracy every n steps", int("--eval-every"), d.evalEvery)
    .option("--width <w>", `channel multiplier of the network: a number or ${presets}`, wrap(parseWidth), d.width)
    .addOption(new Option("--stem-stride <n>", "stride of the stem conv: 1 runs modules 3a–3b at 28×28, 2 at 14×14 (3–5× faster)").choices(["1", "2"]).argParser(int("--stem-stride")).default(d.stemStride))
    .option("--batch-size <n>", "examples per mini-batch", int("--batch-size"), d.batchSize)
    .option("--seed <n>", "seeds weights, batch order, augmentation and Dropout (the same for every row)", int("--seed"), d.seed)
    .addOption(new Option("--init <scheme>", "convolution weights: he = N(0, 2/fan_in); default = PyTorch's U(±1/sqrt(fan_in))").choices(["he", "default"]).default(d.init))
    .option("--lr <x>", "Inception's initial learning rate (BN-x5: × 5, BN-x30: × 30)", num("--lr"), d.lr)
    .option("--momentum <x>", "SGD momentum (every row)", num("--momentum"), d.momentum)
    .option("--weight-decay <x>", "Inception's L2 weight decay", num("--weight-decay"), d.weightDecay)
    .option("--lr-decay <x>", "factor of each learning-rate decay (every row)", num("--lr-decay"), d.lrDecay)
    .option("--lr-decay-every <n>", "Inception's steps between decays (1,406 = 2 epochs of 45,000 at batch 64)", int("--lr-decay-every"), d.lrDecayEvery)
    .option("--dropout <p>", "Inception's Dropout before the classifier (0: none)", num("--dropout"), d.dropout)
    .option("--lrn", "Inception has Local Response Normalization after the stem (default)")
    .option("--no-lrn", "Inception without Local Response Normalization")
    .option("--distortion <s>", "Inception's photometric distortion strength in [0, 1] (1 ↔ ±0.4 jitter)", num("--distortion"), d.distortion)
    .addOption(new Option("--shuffle <mode>", "Inception's shuffling: fixed = shards read without within-shard shuffling, the same batches every epoch (the paper's baseline); shard = within-shard shuffling; thorough = a global shuffle every epoch").choices([...SHUFFLE_MODES]).default(d.shuffle))
    .option("--accel-l2-divisor <x>", "§4.2.1 rows (BN-x5, BN-x30, BN-x5-Sigmoid): L2 weight decay divided by this", num("--accel-l2-divisor"), a.weightDecayDivisor)
    .option("--accel-decay-speedup <x>", "§4.2.1 rows: learning-rate decay this many times faster", num("--accel-decay-speedup"), a.decaySpeedup)
    .option("--accel-distortion <s>", "§4.2.1 rows: photometric distortion strength", num("--accel-distortion"), a.distortion)
    .addOption(new Option("--accel-shuffle <mode>", "§4.2.1 rows: shuffling (shard: \"we enabled within-shard shuffling\", §4.2.1 item 6)").choices([...SHUFFLE_MODES]).default(a.shuffle))
    .addOption(new Option("--backend <name>", "kernel backend").choices(["auto", "wasm", "reference"]).default(d.backend))
    .option("--ensemble <k>", "§4.2.3: also train k members of --ensemble-row with seeds seed … seed+k−1 and report the accuracy of their averaged softmax outputs (the paper: 6)", int("--ensemble"))
    .addOption(new Option("--ensemble-row <row>", "the row the ensemble's members are made of").choices([...ROW_IDS]).default("bn-x30"))
    .option("--workers <n>", "data-parallel workers per row, each training on batch-size/n examples of every batch (a divisor of --batch-size)", int("--workers"), d.workers)
    .option("--no-sync-bn", "with --workers ≥ 2: BN normalizes each worker's shard on its own instead of the whole batch (SyncBN, the default)");
  return addRunnerOptions(cmd, {
    dataset: "cifar10",
    unit: "row",
    jobs: "the cores divided by --workers, at least 1",
    splits: ["train", "val", "test"],
    example: "covshift table --data ../shared/data/cifar10 --jobs 2 (the full table at its default budget: 15.5 minutes on 2 cores, measured)",
  })
    .addHelpText(
      "after",
      `
The rows (the paper's §4.2.2), each derived from Inception:
  inception           lr 0.01, Dropout 0.4, LRN, L2 5e-4, fixed shards (no within-shard shuffling),
                        distortion 1, ReLU, no BN
  bn-baseline         + BN before every nonlinearity
  bn-x5               + BN and all of §4.2.1: lr × 5, no Dropout, L2 ÷ 5, lr decay 6× faster,
                        no LRN, within-shard shuffling, distortion 0.25
  bn-x30              as bn-x5 with lr × 30
  bn-x5-sigmoid       as bn-x5 with sigmoid instead of ReLU
  inception-sigmoid   Inception with sigmoid instead of ReLU
A config file can change any row: {"overrides": {"bn-x30": {"lr": 0.2}}}.`,
    )
    .action(async (o, cmd: Command) => {
      let config: TableConfig = { ...d, accelerated: { ...a } };
      let rows: RowId[] | undefined;
      let limits: { train?: number; validation?: number; test?: number } = {};
      if (o.config !== undefined) {
        const file = resolve(o.config);
        const merged = mergeConfigFile(config, readConfigFile(file), file);
        ({ rows, limits = {}, ...config } = merged);
      }
      // Command-line options override the file; defaults do not.
      for (const [option, key] of Object.entries(CONFIG_OPTIONS)) {
        if (cmd.getOptionValueSource(option) !== "cli") continue;
        if (key.startsWith("accelerated.")) (config.accelerated as unknown as Record<string, unknown>)[key.slice(12)] = o[option];
        else (config as unknown as Record<string, unknown>)[key] = o[option];
      }
      if (o.rows !== undefined) rows = o.rows;
      limits = {
        ...limits,
        ...(o.trainLimit !== undefined && { train: o.trainLimit }),
        ...(o.valLimit !== undefined && { validation: o.valLimit }),
        ...(o.testLimit !== undefined && { test: o.testLimit }),
      };
      if (cmd.getOptionValueSource("syncBn") === "cli") checkNoSyncBnFlag("table", config.workers, false);
      // Each row keeps --workers threads busy: as many rows at once as leave one core per worker.
      const jobs: number = o.jobs ?? Math.max(1, Math.floor(availableParallelism() / Math.max(1, config.workers)));
      const ensemble = o.ensemble === undefined ? undefined : { row: o.ensembleRow as RowId, size: o.ensemble };
      await runCommand(runnerSettings(o, "cifar10", jobs, config.workers), { totalSteps: config.steps, accuracyLabel: "validation accuracy", unit: "row" }, (settings, show) =>
        runTable({
          ...settings,
          config,
          rows,
          limits,
          ensemble,
          onEvent: (e) => {
            const m = e.message;
            show(ROW_NAMES[e.row] + (e.memberSeed === undefined ? "" : ` seed ${e.memberSeed}`), m.type === "done" ? { type: "done", note: `done, test accuracy ${(100 * (m.testAccuracy as number)).toFixed(2)}%` } : m);
          },
        }),
      );
    });
}
