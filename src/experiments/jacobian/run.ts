import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { readJson, writeFileAtomic } from "../../io/files.js";
import { writeJacobianPlots } from "../../report/jacobianPlots.js";
import type { NetworkKind } from "../figure1/config.js";
import { loadFigure1Data, shareImageSet } from "../figure1/data.js";
import { prepareOutputDir } from "../outputDir.js";
import { JacobianConfig, validateJacobianConfig } from "./config.js";
import { findings, JacobianResult, JacobianRun, summaryMarkdown } from "./result.js";
import type { JacobianWorkerData, JacobianWorkerMessage } from "./worker.js";

export interface JacobianRunOptions {
  config: JacobianConfig;
  dataDir: string;
  outDir: string;
  resume?: boolean;
  overwrite?: boolean;
  /** Threads of each network's wasm kernels. */
  threads?: number;
  /** Use only the first N training/test images (quick tries and tests). */
  limits?: { train?: number; test?: number };
  download?: boolean;
  onEvent?: (network: NetworkKind, message: JacobianWorkerMessage | { type: "skipped" }) => void;
  stopFlag?: SharedArrayBuffer;
}

export type JacobianOutcome = { status: "complete"; result: JacobianResult; files: string[] } | { status: "interrupted" };

/**
 * Train both §4.1 networks side by side (one worker thread each), measuring
 * their layer Jacobians every `every` steps; then write jacobian.json,
 * summary.md and the plots into outDir. Interrupted runs leave checkpoints
 * from which `resume` continues.
 */
export async function runJacobian(options: JacobianRunOptions): Promise<JacobianOutcome> {
  const { config, outDir } = options;
  validateJacobianConfig(config);
  const limits = options.limits ?? {};
  const loaded = await loadFigure1Data(options.dataDir, config.input, limits, { download: options.download });
  validateJacobianConfig(config, loaded.test.count);
  const train = shareImageSet(loaded.train);
  const test = shareImageSet(loaded.test);
  const { wallBefore, saveWallSeconds } = prepareOutputDir({
    command: "jacobian",
    outDir,
    doneDir: "runs",
    config,
    limits,
    resume: options.resume,
    overwrite: options.overwrite,
    comparable: (c) => ({ ...c, backend: "" }),
  });
  const stopFlag = options.stopFlag ?? new SharedArrayBuffer(4);
  const stop = new Int32Array(stopFlag);
  const emit = options.onEvent ?? (() => {});
  const t0 = performance.now();
  const networks: NetworkKind[] = ["baseline", "batchnorm"];
  let failure: Error | null = null;
  await Promise.all(
    networks.map(
      (network) =>
        new Promise<void>((resolve) => {
          const resultPath = join(outDir, "runs", `${network}.json`);
          if (options.resume && existsSync(resultPath)) {
            emit(network, { type: "skipped" });
            resolve();
            return;
          }
          const data: JacobianWorkerData = {
            config,
            network,
            train,
            test,
            checkpointPath: join(outDir, "checkpoints", `${network}.json`),
            resultPath,
            resume: options.resume ?? false,
            threads: options.threads ?? 1,
            stopFlag,
          };
          const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: data });
          worker.on("message", (m: JacobianWorkerMessage) => emit(network, m));
          worker.on("error", (err) => {
            failure ??= err;
            Atomics.store(stop, 0, 1);
          });
          worker.on("exit", () => resolve());
        }),
    ),
  );
  const wallSeconds = wallBefore + (performance.now() - t0) / 1000;
  saveWallSeconds(wallSeconds);
  if (failure) throw failure;
  if (Atomics.load(stop, 0) === 1) return { status: "interrupted" };
  const runs = networks.map((n) => readJson<JacobianRun>(join(outDir, "runs", `${n}.json`)));
  const result: JacobianResult = { config, runs, wallSeconds, findings: findings(runs) };
  const files = [join(outDir, "jacobian.json"), join(outDir, "summary.md")];
  writeFileAtomic(files[0], JSON.stringify(result, null, 1));
  writeFileAtomic(files[1], summaryMarkdown(result));
  files.push(...(await writeJacobianPlots(result, outDir)));
  return { status: "complete", result, files };
}
