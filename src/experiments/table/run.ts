import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { writeFigure2Plot } from "../../report/tablePlots.js";
import { readJson, readJsonIfExists, writeFileAtomic } from "../../io/files.js";
import { differences, prepareOutputDir } from "../outputDir.js";
import { loadTableData, type TableLimits } from "./data.js";
import { summarizeTable, tableMarkdown, type TableResult } from "./report.js";
import { summarizeEnsemble } from "./ensemble.js";
import { deriveRow, ROW_IDS, ROW_NAMES, validateTableConfig, type RowId, type TableConfig } from "./rows.js";
import { decodeRowOutputs, type EncodedRowOutputs, type TableCheckpoint, type TableRowResult } from "./trainer.js";
import type { TableWorkerData, TableWorkerMessage } from "./worker.js";

export interface TableRunOptions {
  config: TableConfig;
  /** The rows to train, in any order (default all six). */
  rows?: RowId[];
  dataDir: string;
  outDir: string;
  /** Continue the interrupted run in outDir. */
  resume?: boolean;
  /** Discard earlier results in outDir. */
  overwrite?: boolean;
  /** Rows trained at once, each in its own worker thread. */
  jobs: number;
  /** Threads of each job's wasm kernels (GEMM, convolution); 1 by default. Results keep their bits whatever the count. */
  threads?: number;
  /** Use only the first N images of a split (quick tries and tests). */
  limits?: TableLimits;
  /** Fetch the CIFAR-10 archive when files are missing (default true). */
  download?: boolean;
  onEvent?: (event: TableEvent) => void;
  /** Set element 0 to 1 (Atomics.store) to stop every row after a checkpoint. */
  stopFlag?: SharedArrayBuffer;
  /**
   * §4.2.3: also train `size` members of `row` with seeds seed … seed + size − 1
   * and report the accuracy of their averaged softmax outputs. A member whose
   * seed is the table's own and whose row is among the rows is that row.
   */
  ensemble?: { row: RowId; size: number };
}

export interface TableEvent {
  row: RowId;
  /** An ensemble member's seed (absent for the table's own rows). */
  memberSeed?: number;
  message: TableWorkerMessage | { type: "skipped" } | { type: "queued" } | { type: "restarted"; reason: string };
}

export type TableOutcome = { status: "complete"; result: TableResult; files: string[] } | { status: "interrupted" };

/**
 * Train the chosen rows (in parallel worker threads), then write table.json,
 * table.md and figure2.svg/.png into outDir. Interrupted rows leave
 * checkpoints from which `resume` continues to exactly the result an
 * uninterrupted run gives. On resume, rows finished earlier are kept (so a
 * table can be completed row by row with different --rows) unless their own
 * settings changed — e.g. a lower learning rate for a row that diverged —
 * in which case that row alone starts again.
 */
export async function runTable(options: TableRunOptions): Promise<TableOutcome> {
  const { config, outDir } = options;
  validateTableConfig(config);
  const rows = ROW_IDS.filter((id) => (options.rows ?? ROW_IDS).includes(id));
  if (rows.length === 0) throw new Error(`table: no rows to train; choose from ${ROW_IDS.join(", ")}`);
  const ensemble = options.ensemble;
  if (ensemble !== undefined) {
    if (!Number.isInteger(ensemble.size) || ensemble.size < 2) {
      throw new Error(`table: --ensemble must be a whole number of members ≥ 2 (the paper: 6); got ${ensemble.size}`);
    }
    if (!(ROW_IDS as readonly string[]).includes(ensemble.row)) {
      throw new Error(`table: --ensemble-row "${ensemble.row}" is not a row; choose from ${ROW_IDS.join(", ")}`);
    }
  }
  const limits = options.limits ?? {};
  // Data first: a missing or damaged file stops us before anything is written.
  const data = await loadTableData(options.dataDir, limits, { download: options.download });
  if (data.train.count < config.batchSize) {
    throw new Error(`table: ${data.train.count} training images are fewer than one batch of ${config.batchSize}; raise --train-limit or lower --batch-size`);
  }

  const { wallBefore, saveWallSeconds } = prepareOutputDir({
    command: "table",
    outDir,
    doneDir: "rows",
    config,
    limits,
    resume: options.resume,
    overwrite: options.overwrite,
    comparable: (c) => pick(c, SHARED_KEYS),
  });

  const stopFlag = options.stopFlag ?? new SharedArrayBuffer(4);
  const stop = new Int32Array(stopFlag);
  const emit = options.onEvent ?? (() => {});
  const t0 = performance.now();
  // A job is a row (seed undefined: the config's) or an ensemble member: its row trained with another seed.
  type Job = { id: RowId; seed?: number };
  const key = (j: Job) => (j.seed === undefined ? j.id : `${j.id}-seed${j.seed}`);
  const resultPath = (j: Job | RowId) => join(outDir, "rows", `${typeof j === "string" ? j : key(j)}.json`);
  const outputsPath = (j: Job | RowId) => join(outDir, "rows", `${typeof j === "string" ? j : key(j)}.outputs.json`);
  const checkpointPath = (j: Job | RowId) => join(outDir, "checkpoints", `${typeof j === "string" ? j : key(j)}.json`);
  const jobs: Job[] = [];
  for (const id of rows) {
    // A row whose own settings changed since (a per-row override, a base knob) starts again; the others continue.
    const settings = JSON.stringify(deriveRow(id, config).settings);
    const earlier =
      readJsonIfExists<TableRowResult>(resultPath(id))?.settings ?? readJsonIfExists<TableCheckpoint>(checkpointPath(id))?.result.settings;
    if (options.resume && earlier !== undefined && JSON.stringify(earlier) !== settings) {
      rmSync(resultPath(id), { force: true });
      rmSync(checkpointPath(id), { force: true });
      emit({ row: id, message: { type: "restarted", reason: `its settings changed (${differences(earlier, JSON.parse(settings)).join("; ")})` } });
    }
    if (options.resume && existsSync(resultPath(id))) {
      emit({ row: id, message: { type: "skipped" } });
    } else {
      jobs.push({ id });
      emit({ row: id, message: { type: "queued" } });
    }
  }
  const members: Job[] = [];
  if (ensemble !== undefined) {
    for (let i = 0; i < ensemble.size; i++) {
      const seed = config.seed + i;
      if (seed === config.seed && rows.includes(ensemble.row)) {
        members.push({ id: ensemble.row });
        continue;
      }
      const member = { id: ensemble.row, seed };
      members.push(member);
      if (options.resume && existsSync(resultPath(member))) emit({ row: member.id, memberSeed: seed, message: { type: "skipped" } });
      else {
        jobs.push(member);
        emit({ row: member.id, memberSeed: seed, message: { type: "queued" } });
      }
    }
  }

  let failure: Error | null = null;
  const runJob = (job: Job) =>
    new Promise<void>((resolve) => {
      const { id } = job;
      const workerData: TableWorkerData = {
        config: job.seed === undefined ? config : { ...config, seed: job.seed },
        row: deriveRow(id, config),
        data,
        checkpointPath: checkpointPath(job),
        resultPath: resultPath(job),
        outputsPath: outputsPath(job),
        modelPath: join(outDir, "models", key(job)),
        resume: options.resume ?? false,
        threads: options.threads ?? 1,
        stopFlag,
      };
      const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData });
      worker.on("message", (message: TableWorkerMessage) => emit({ row: id, memberSeed: job.seed, message }));
      worker.on("error", (err) => {
        failure ??= err;
        Atomics.store(stop, 0, 1); // the other rows checkpoint and stop: nothing is lost
      });
      worker.on("exit", () => resolve());
    });
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(options.jobs, jobs.length)) }, async () => {
    while (next < jobs.length && Atomics.load(stop, 0) === 0) await runJob(jobs[next++]);
  });
  await Promise.all(lanes);

  const wallSeconds = wallBefore + (performance.now() - t0) / 1000;
  saveWallSeconds(wallSeconds);
  if (failure) throw failure;
  if (Atomics.load(stop, 0) === 1) return { status: "interrupted" };

  const results = rows.map((id) => readJson<TableRowResult>(resultPath(id)));
  const result = summarizeTable({ ...config, rows, limits }, results, wallSeconds);
  if (ensemble !== undefined) {
    const outputs = members.map((m) => ({
      seed: m.seed ?? config.seed,
      outputs: decodeRowOutputs(readJson<EncodedRowOutputs>(outputsPath(m)), outputsPath(m)),
    }));
    result.ensemble = summarizeEnsemble(ensemble.row, ROW_NAMES[ensemble.row], outputs, {
      validation: data.validation.labels.subarray(0, data.validation.count),
      test: data.test.labels.subarray(0, data.test.count),
    });
  }
  const files = [join(outDir, "table.json"), join(outDir, "table.md")];
  writeFileAtomic(files[0], JSON.stringify(result, null, 1));
  writeFileAtomic(files[1], tableMarkdown(result));
  files.push(...(await writeFigure2Plot(result, outDir)));
  return { status: "complete", result, files };
}

/** The settings every row shares: when they change, no earlier row can be continued. */
const SHARED_KEYS = ["steps", "evalEvery", "width", "stemStride", "batchSize", "crop", "seed", "init"] as const;

function pick(c: TableConfig, keys: readonly (keyof TableConfig)[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, c[k]]));
}
