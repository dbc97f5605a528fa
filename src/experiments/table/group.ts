/**
 * A table row's data-parallel group (`covshift table --workers N`): N worker
 * threads, each a replica of the row's network (table/replica.ts) on
 * batchSize/N examples of every mini-batch, with SyncBN unless
 * config.syncBatchNorm is false.
 */
import { startDataParallel } from "../../node/parallel.js";
import type { DataParallel } from "../../parallel/index.js";
import { parallelSettings } from "../groupTraining.js";
import type { TableReplicaOptions } from "./replica.js";
import type { DerivedRow, TableConfig } from "./rows.js";

/** The row's DataParallel group, or null for one worker (the row then trains in its job's thread). */
export async function startTableGroup(config: TableConfig, row: DerivedRow): Promise<DataParallel | null> {
  const { workers, syncBatchNorm } = parallelSettings(config);
  if (workers === 1) return null;
  return startDataParallel<TableReplicaOptions>({
    replica: new URL("./replica.js", import.meta.url),
    options: { config, row },
    workers,
    inputShape: [3, config.crop, config.crop],
    maxBatchSize: config.batchSize,
    syncBatchNorm,
  });
}
