/**
 * The command-line plumbing every experiment command shares (figure1,
 * table, jacobian, adabn, batchsize): the same options in the same words,
 * turned into the experiment runner's options the same way.
 */
import { Command } from "commander";
import { resolve } from "node:path";
import { resolveDataDir } from "../data/datadir.js";
import { threadsPerJob } from "../node/wasmThreads.js";
import { int } from "./parse.js";
import { runSession, type SessionHooks } from "./session.js";

export type Dataset = "mnist" | "cifar10";
const NAMES: Record<Dataset, string> = { mnist: "MNIST", cifar10: "CIFAR-10" };
const SPLITS = { train: "training", val: "validation", test: "test" } as const;

/** --data and --out (first in the help, as every command's). */
export function addDataOptions(cmd: Command, dataset: Dataset, out: string): Command {
  return cmd
    .option("--data <dir>", `${NAMES[dataset]} directory (default: $COVSHIFT_DATA, else the per-user cache; missing files are downloaded)`)
    .option("--out <dir>", "output directory", out);
}

/**
 * --jobs (when the command trains more than it has cores for), --threads,
 * the --<split>-limit options, --no-download, --resume and --overwrite, and
 * the note on Ctrl-C. `unit` names one job: "run", "row", "network".
 */
export function addRunnerOptions(
  cmd: Command,
  o: { dataset: Dataset; unit: string; jobs?: string; splits: readonly (keyof typeof SPLITS)[]; example: string },
): Command {
  if (o.jobs !== undefined) cmd.option("--jobs <n>", `${o.unit}s trained at once, each in a worker thread (default: ${o.jobs})`, int("--jobs"));
  cmd.option("--threads <n>", `threads of each ${o.unit}'s wasm kernels (default: the cores left per job, at least 1; results do not depend on it)`, int("--threads"));
  for (const split of o.splits) {
    cmd.option(`--${split}-limit <n>`, `use only the first n ${SPLITS[split]} images (quick tries)`, int(`--${split}-limit`));
  }
  return cmd
    .option("--no-download", `never download: fail with instructions when ${NAMES[o.dataset]} files are missing`)
    .option("--resume", "continue the interrupted run in --out exactly where it stopped", false)
    .option("--overwrite", "discard earlier results in --out", false)
    .addHelpText(
      "after",
      `
Ctrl-C stops cleanly: every ${o.unit} writes a checkpoint first; run the same command with --resume to continue.
Example: ${o.example}`,
    );
}

export type RunnerSettings = ReturnType<typeof runnerSettings>;

/**
 * Run a command's experiment (runFigure1, runAdabn, …) with the runner
 * settings, under runSession's progress display and Ctrl-C handling: `run`
 * gets the settings with the stop flag, and `show` for its events.
 */
export function runCommand(
  settings: RunnerSettings,
  display: { totalSteps: number; accuracyLabel: string; unit: string },
  run: (options: RunnerSettings & { stopFlag: SharedArrayBuffer }, show: SessionHooks["show"]) => Promise<{ status: "complete"; files: string[] } | { status: "interrupted" }>,
): Promise<void> {
  return runSession({ outDir: settings.outDir, ...display, start: ({ stopFlag, show }) => run({ ...settings, stopFlag }, show) });
}

/** The runner's options from the parsed shared ones; `jobs` is the command's count (its --jobs or its default). */
export function runnerSettings(
  o: { data?: string; out: string; resume: boolean; overwrite: boolean; threads?: number; download: boolean },
  dataset: Dataset,
  jobs: number,
  workersPerJob = 1,
): { dataDir: string; outDir: string; resume: boolean; overwrite: boolean; jobs: number; threads: number; download: boolean } {
  return {
    dataDir: resolveDataDir(dataset, o.data),
    outDir: resolve(o.out),
    resume: o.resume,
    overwrite: o.overwrite,
    jobs,
    threads: o.threads ?? threadsPerJob(jobs * workersPerJob),
    download: o.download,
  };
}
