import { readFileSync } from "node:fs";
import { loadChartLibraries } from "../report/charts.js";
import { ProgressDisplay } from "./progress.js";

/** What the worker threads of an experiment report, as the CLI shows it. */
export type SessionMessage =
  | { type: "started"; step: number; total?: number }
  | { type: "progress"; step: number }
  | { type: "eval"; step: number; accuracy: number; loss: number }
  | { type: "done"; note?: string }
  | { type: "stopped"; step: number }
  | { type: "skipped" }
  | { type: "queued" }
  | { type: "restarted"; reason: string };

export interface SessionHooks {
  /** Set to 1 on the first Ctrl-C: every run checkpoints and stops. */
  stopFlag: SharedArrayBuffer;
  /** Show a message of the run called `name`. */
  show: (name: string, message: SessionMessage) => void;
}

type Outcome = { status: "complete"; files: string[] } | { status: "interrupted" };

/**
 * The terminal side of a long experiment, the same for every command: a
 * progress display, Ctrl-C that stops cleanly after a checkpoint (twice:
 * at once), and at the end the summary (the outcome's second file) or how to
 * resume.
 */
export async function runSession(options: {
  outDir: string;
  totalSteps: number;
  /** What the accuracy column measures, e.g. "test accuracy". */
  accuracyLabel: string;
  /** "run" or "row": how the stop message names one unit of work. */
  unit: string;
  start: (hooks: SessionHooks) => Promise<Outcome>;
}): Promise<void> {
  const { outDir, totalSteps } = options;
  await loadChartLibraries(); // the reports' charts: a missing package is reported now, not after training
  const progress = new ProgressDisplay(options.accuracyLabel);
  const stopFlag = new SharedArrayBuffer(4);
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      Atomics.store(new Int32Array(stopFlag), 0, 1);
      progress.log(
        `Stopping: each ${options.unit} writes a checkpoint first (Ctrl-C again to quit at once, losing progress since the last checkpoint)…`,
      );
    } else {
      progress.stop();
      process.exit(130);
    }
  };
  // Each run's own length (batchsize's runs differ), else the command's.
  const totals = new Map<string, number>();
  const show = (name: string, m: SessionMessage) => {
    if (m.type === "started") {
      totals.set(name, m.total ?? totalSteps);
      progress.add({ name, total: totals.get(name)! }, m.step);
      if (m.step > 0) progress.log(`${name}: resumed at step ${m.step}`);
    } else if (m.type === "progress") progress.update(name, { step: m.step });
    else if (m.type === "eval") progress.update(name, { step: m.step, accuracy: m.accuracy, loss: m.loss });
    else if (m.type === "done") progress.update(name, { step: totals.get(name) ?? totalSteps, note: m.note ?? "done" });
    else if (m.type === "stopped") progress.log(`${name}: checkpoint written at step ${m.step}`);
    else if (m.type === "skipped") progress.log(`${name}: already complete, kept`);
    else if (m.type === "restarted") progress.log(`${name}: starts again, since ${m.reason}`);
  };
  process.on("SIGINT", onSigint);
  const started = performance.now();
  try {
    const outcome = await options.start({ stopFlag, show });
    progress.stop();
    if (outcome.status === "interrupted") {
      process.stderr.write(`Interrupted. Continue with the same command and --resume (results so far are in ${outDir}).\n`);
      process.exitCode = 130;
      return;
    }
    process.stdout.write("\n" + readFileSync(outcome.files[1], "utf8"));
    process.stdout.write(`\nWrote ${outcome.files.length} files to ${outDir} in ${((performance.now() - started) / 1000).toFixed(0)} s.\n`);
  } finally {
    progress.stop();
    process.off("SIGINT", onSigint);
  }
}
