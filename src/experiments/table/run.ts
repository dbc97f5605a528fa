import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeFigure2Plot } from "../../report/tablePlots.js";
import { readJson, readJsonIfExists } from "../../io/files.js";
import { readCheckpoint } from "../runner/checkpoint.js";
import { checkLimit } from "../runner/options.js";
import { differences } from "../runner/outputDir.js";
import {
  checkpointPathOf,
  resultPathOf,
  runExperiment,
  writeReport,
  type ExperimentOutcome,
  type ExperimentRunOptions,
  type JobEvent,
} from "../runner/runner.js";
import { parallelSettings } from "../groupTraining.js";
import { loadTableData, type TableLimits } from "./data.js";
import { summarizeTable, tableMarkdown, type TableResult } from "./report.js";
import { summarizeEnsemble } from "./ensemble.js";
import type { TableJobPayload } from "./job.js";
import { deriveRow, ROW_IDS, ROW_NAMES, validateTableConfig, type RowId, type RowSettings, type TableConfig } from "./rows.js";
import { decodeRowOutputs, type EncodedRowOutputs, type TableRowResult } from "./trainer.js";

export interface TableRunOptions extends ExperimentRunOptions<TableConfig, TableLimits, TableEvent> {
  /** The rows to train, in any order (default all six). */
  rows?: RowId[];
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
  message: JobEvent;
}

export type TableOutcome = ExperimentOutcome<TableResult>;

/**
 * Train the chosen rows (in parallel worker threads, by the experiment
 * runner), then write table.json, table.md and figure2.svg/.png into outDir.
 * Interrupted rows leave checkpoints from which `resume` continues to
 * exactly the result an uninterrupted run gives. On resume, rows finished
 * earlier are kept (so a table can be completed row by row with different
 * --rows) unless their own settings changed — e.g. a lower learning rate for
 * a row that diverged — in which case that row alone starts again.
 */
export async function runTable(options: TableRunOptions): Promise<TableOutcome> {
  const { outDir } = options;
  validateTableConfig(options.config);
  // Recorded in table.json and compared on resume: how many workers, and whether BN was synchronized across them.
  const config: TableConfig = { ...options.config, ...parallelSettings(options.config) };
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
  // An ensemble member: its row trained with another seed (the member with the table's own seed, when its row is trained, is that row).
  const members: { id: RowId; seed?: number }[] = [];
  for (let i = 0; ensemble !== undefined && i < ensemble.size; i++) {
    const seed = config.seed + i;
    members.push(seed === config.seed && rows.includes(ensemble.row) ? { id: ensemble.row } : { id: ensemble.row, seed });
  }
  const memberName = (m: { id: RowId; seed?: number }) => (m.seed === undefined ? m.id : `${m.id}-seed${m.seed}`);
  const outputsPath = (name: string) => join(outDir, "rows", `${name}.outputs.json`);
  const limits = options.limits ?? {};
  checkLimit("table", "--train-limit", limits.train, config.batchSize, ` (at least one batch of --batch-size ${config.batchSize})`);
  checkLimit("table", "--validation-limit", limits.validation, 1, "");
  checkLimit("table", "--test-limit", limits.test, 1, "");
  const resultPath = (id: RowId) => resultPathOf(outDir, "rows", id);
  return runExperiment(
    {
      command: "table",
      doneDir: "rows",
      config,
      limits,
      comparable: (c: TableConfig) => pick(c, SHARED_KEYS),
      backend: config.backend,
      steps: config.steps,
      evalEvery: config.evalEvery,
      load: async () => {
        const data = await loadTableData(options.dataDir, limits, { download: options.download });
        if (data.train.count < config.batchSize) {
          throw new Error(`table: ${data.train.count} training images are fewer than one batch of ${config.batchSize}; raise --train-limit or lower --batch-size`);
        }
        return data;
      },
      plan: (data, { resume, discard, emit }) => [
        ...rows.map((id) => {
          // A row whose own settings changed since (a per-row override, a base knob) starts again; the others continue.
          const settings = deriveRow(id, config).settings;
          if (resume) {
            const earlier = readJsonIfExists<TableRowResult>(resultPath(id))?.settings ?? checkpointSettings(checkpointPathOf(outDir, id));
            if (earlier !== undefined && JSON.stringify(earlier) !== JSON.stringify(settings)) {
              discard(id);
              emit(id, { type: "restarted", reason: `its settings changed (${differences(earlier, settings).join("; ")})` });
            }
          }
          return {
            name: id,
            label: deriveRow(id, config).name,
            payload: { config, row: deriveRow(id, config), data, outputsPath: outputsPath(id), modelPath: join(outDir, "models", id) } as TableJobPayload,
          };
        }),
        ...members
          .filter((m) => m.seed !== undefined)
          .map((m) => ({
            name: memberName(m),
            label: `${deriveRow(m.id, config).name} seed ${m.seed}`,
            payload: {
              config: { ...config, seed: m.seed! },
              row: deriveRow(m.id, config),
              data,
              outputsPath: outputsPath(memberName(m)),
              modelPath: join(outDir, "models", memberName(m)),
              memberSeed: m.seed,
            } as TableJobPayload,
          })),
      ],
      workerUrl: new URL("./job.js", import.meta.url),
      onEvent: (job, message) => options.onEvent?.({ row: job.payload.row.id, memberSeed: job.payload.memberSeed, message }),
      finish: async (data, wallSeconds) => {
        const results = rows.map((id) => readJson<TableRowResult>(resultPath(id)));
        const result = summarizeTable({ ...config, rows, limits }, results, wallSeconds);
        if (ensemble !== undefined) {
          const outputs = members.map((m) => ({
            seed: m.seed ?? config.seed,
            outputs: decodeRowOutputs(readJson<EncodedRowOutputs>(outputsPath(memberName(m))), outputsPath(memberName(m))),
          }));
          result.ensemble = summarizeEnsemble(ensemble.row, ROW_NAMES[ensemble.row], outputs, {
            validation: data.validation.labels.subarray(0, data.validation.count),
            test: data.test.labels.subarray(0, data.test.count),
          });
        }
        return writeReport(outDir, { json: "table.json", markdown: "table.md" }, result, tableMarkdown(result), () => writeFigure2Plot(result, outDir));
      },
    },
    options,
  );
}

/** The row settings recorded in a checkpoint, or undefined when there is none (a damaged one is refused when the row resumes). */
function checkpointSettings(path: string): RowSettings | undefined {
  if (!existsSync(path)) return undefined;
  const c = readCheckpoint(path, { command: "table" });
  return (c.state.result as { settings?: RowSettings } | undefined)?.settings;
}

/** The settings every row shares: when they change, no earlier row can be continued. */
const SHARED_KEYS = ["steps", "evalEvery", "width", "stemStride", "batchSize", "crop", "seed", "init", "backend", "workers", "syncBatchNorm"] as const;

function pick(c: TableConfig, keys: readonly (keyof TableConfig)[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, c[k]]));
}
