/**
 * A Figure 1 run's data-parallel group (`covshift figure1 --workers N`):
 * N worker threads, each a replica of the network (figure1/replica.ts) on
 * batchSize/N examples of every mini-batch, with SyncBN unless
 * config.syncBatchNorm is false.
 */
import { startDataParallel } from "../../node/parallel.js";
import type { DataParallel } from "../../parallel/index.js";
import { parallelSettings } from "../groupTraining.js";
import type { Figure1Config, NetworkKind } from "./config.js";
import type { Figure1ReplicaOptions } from "./replica.js";

/** The run's DataParallel group, or null for one worker (the run then trains in this thread). */
export async function startFigure1Group(config: Figure1Config, network: NetworkKind, seed: number): Promise<DataParallel | null> {
  const { workers, syncBatchNorm } = parallelSettings(config);
  if (workers === 1) return null;
  return startDataParallel<Figure1ReplicaOptions>({
    replica: new URL("./replica.js", import.meta.url),
    options: { config, network, seed },
    workers,
    inputShape: [784],
    maxBatchSize: config.batchSize,
    syncBatchNorm,
  });
}

