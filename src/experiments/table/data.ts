import { channelStats } from "../../data/augment.js";
import { loadCifar10, type CifarSplit } from "../../data/cifar10.js";
import type { TableData } from "./trainer.js";

/** How many images of each split to use (all when absent): for quick tries and tests. */
export interface TableLimits {
  train?: number;
  validation?: number;
  test?: number;
}

/**
 * CIFAR-10 as the table uses it — 45,000 training, 5,000 validation and the
 * test images (see loadCifar10 for the split) — with the training set's
 * per-channel statistics, every array in a SharedArrayBuffer so that the
 * worker threads read one copy instead of each holding its own.
 */
export async function loadTableData(
  dataDir: string,
  limits: TableLimits = {},
  options: { download?: boolean } = {},
): Promise<TableData> {
  const load = (split: "train" | "validation" | "test", limit?: number) =>
    loadCifar10(dataDir, split, { limit, download: options.download });
  // One after the other: the first call may download the archive that the others then read.
  const train = await load("train", limits.train);
  const validation = await load("validation", limits.validation);
  const test = await load("test", limits.test);
  for (const [name, split] of [["training", train], ["validation", validation], ["test", test]] as const) {
    if (split.count === 0) throw new Error(`table: the ${name} split is empty; raise its --*-limit above 0`);
  }
  return {
    train: shareSplit(train),
    validation: shareSplit(validation),
    test: shareSplit(test),
    stats: channelStats(train.images, train.count),
  };
}

/** The same split in SharedArrayBuffers (the training images are 138 MB). */
export function shareSplit(split: CifarSplit): CifarSplit {
  const images = new Uint8Array(new SharedArrayBuffer(split.images.byteLength));
  images.set(split.images);
  const labels = new Uint8Array(new SharedArrayBuffer(split.labels.byteLength));
  labels.set(split.labels);
  return { images, labels, count: split.count };
}
