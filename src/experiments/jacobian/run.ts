import { readJson } from "../../io/files.js";
import { writeJacobianPlots } from "../../report/jacobianPlots.js";
import type { NetworkKind } from "../figure1/config.js";
import { loadFigure1Data, shareImageSet } from "../figure1/data.js";
import { checkLimit } from "../runner/options.js";
import { resultPathOf, runExperiment, writeReport, type ExperimentOutcome, type ExperimentRunOptions, type JobEvent } from "../runner/runner.js";
import { JacobianConfig, validateJacobianConfig } from "./config.js";
import type { JacobianJobPayload } from "./job.js";
import { findings, JacobianResult, JacobianRun, summaryMarkdown } from "./result.js";

/** One network's job event (jacobian trains the two networks at once: no --jobs). */
export type JacobianRunOptions = Omit<ExperimentRunOptions<JacobianConfig, { train?: number; test?: number }, never>, "jobs" | "onEvent"> & {
  onEvent?: (network: NetworkKind, message: JobEvent) => void;
};

export type JacobianOutcome = ExperimentOutcome<JacobianResult>;

/**
 * Train both §4.1 networks side by side (one worker thread each, by the
 * experiment runner), measuring their layer Jacobians every `every` steps;
 * then write jacobian.json, summary.md and the plots into outDir.
 * Interrupted runs leave checkpoints from which `resume` continues.
 */
export async function runJacobian(options: JacobianRunOptions): Promise<JacobianOutcome> {
  const { config, outDir } = options;
  validateJacobianConfig(config);
  const limits = options.limits ?? {};
  checkLimit("jacobian", "--train-limit", limits.train, config.batchSize, ` (at least one batch of --batch-size ${config.batchSize})`);
  checkLimit("jacobian", "--test-limit", limits.test, 1, "");
  // --images against --test-limit before any data is read (against the test set itself once it is loaded).
  if (limits.test !== undefined) validateJacobianConfig(config, limits.test);
  const networks: NetworkKind[] = ["baseline", "batchnorm"];
  return runExperiment(
    {
      command: "jacobian",
      doneDir: "runs",
      config,
      limits,
      comparable: (c: JacobianConfig) => c,
      backend: config.backend,
      steps: config.steps,
      evalEvery: config.every,
      load: async () => {
        const loaded = await loadFigure1Data(options.dataDir, config.input, limits, { download: options.download, shared: true });
        validateJacobianConfig(config, loaded.test.count);
        return { train: shareImageSet(loaded.train), test: shareImageSet(loaded.test) };
      },
      plan: (data) =>
        networks.map((network) => ({
          name: network,
          label: `jacobian: ${network}`,
          payload: { config, network, train: data.train, test: data.test } satisfies JacobianJobPayload,
        })),
      workerUrl: new URL("./job.js", import.meta.url),
      onEvent: (job, message) => options.onEvent?.(job.payload.network, message),
      finish: async (_data, wallSeconds) => {
        const runs = networks.map((n) => readJson<JacobianRun>(resultPathOf(outDir, "runs", n)));
        const result: JacobianResult = { config, runs, wallSeconds, findings: findings(runs) };
        return writeReport(outDir, { json: "jacobian.json", markdown: "summary.md" }, result, summaryMarkdown(result), () => writeJacobianPlots(result, outDir));
      },
    },
    { outDir, resume: options.resume, overwrite: options.overwrite, jobs: networks.length, threads: options.threads, stopFlag: options.stopFlag },
  );
}
