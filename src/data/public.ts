/**
 * `covshift/data`: the data sets as typed arrays ready for a model, for
 * Node (the files are read with `node:fs`). Every loader validates its
 * files (magic numbers, sizes, truncation, label ranges), downloads missing
 * ones from the usual public mirrors and checks their md5, and finds its
 * folder by the data-directory rules of {@link resolveDataDir}.
 *
 *     import { loadMnist } from "covshift/data";
 *     const train = await loadMnist({ split: "train" });   // { images, labels, shape: [60000, 1, 28, 28] }
 */
import { CIFAR10_CLASSES, loadCifar10 as readCifar10 } from "./cifar10.js";
import { resolveDataDir } from "./datadir.js";
import { loadMnist as readMnist, mnistToFloat } from "./mnist.js";

export { resolveDataDir, CIFAR10_CLASSES };
export type { DatasetName, DataDirContext } from "./datadir.js";
export { DataLoader } from "./dataLoader.js";
export type { Batch, DataLoaderOptions, InMemoryDataset } from "./dataLoader.js";

/** Options shared by the loaders. */
export interface LoadOptions {
  /**
   * The folder of the files. A folder holding `mnist/` (or `cifar10/`) is
   * taken to mean that sub-folder. Default: the `COVSHIFT_DATA` variable,
   * else the per-user cache (`~/.cache/covshift/<data set>`); see
   * {@link resolveDataDir}.
   */
  data?: string;
  /** Fetch missing files (default true); false makes a missing file an error that lists every missing file. */
  download?: boolean;
  /** Keep only the first `limit` examples. */
  limit?: number;
}

/** Images as floats in [0, 1], one class index per image, and their shape. */
export interface ImageDataset {
  /** N × C × H × W values, row-major. */
  images: Float32Array;
  /** The class of each image, 0–9. */
  labels: Uint8Array;
  shape: [number, number, number, number];
}

/**
 * MNIST's training (60,000 images) or test (10,000) split: pixels scaled to
 * [0, 1] (`input: "binary"` thresholds them at 128 instead), shape
 * [N, 1, 28, 28].
 */
export async function loadMnist(
  options: LoadOptions & { split: "train" | "test"; input?: "scaled" | "binary" },
): Promise<ImageDataset> {
  const { split, input = "scaled" } = checkOptions(options, ["train", "test"], "loadMnist");
  const dir = resolveDataDir("mnist", options.data);
  const raw = await readMnist(dir, split, { download: options.download, limit: options.limit });
  return { images: mnistToFloat(raw.images, input), labels: raw.labels, shape: [raw.count, 1, raw.rows, raw.cols] };
}

/**
 * CIFAR-10's training (45,000: data_batch_1…4 and the first half of
 * data_batch_5), validation (the last 5,000 of data_batch_5) or test split:
 * bytes scaled to [0, 1], shape [N, 3, 32, 32] (red, green, blue planes).
 * Class names: {@link CIFAR10_CLASSES}.
 */
export async function loadCifar10(
  options: LoadOptions & { split: "train" | "validation" | "test" },
): Promise<ImageDataset> {
  const { split } = checkOptions(options, ["train", "validation", "test"], "loadCifar10");
  const dir = resolveDataDir("cifar10", options.data);
  const raw = await readCifar10(dir, split, { download: options.download, limit: options.limit });
  const images = new Float32Array(raw.images.length);
  for (let i = 0; i < images.length; i++) images[i] = raw.images[i] / 255;
  return { images, labels: raw.labels, shape: [raw.count, 3, 32, 32] };
}

function checkOptions<S extends string, O extends { split: S }>(options: O, splits: readonly S[], who: string): O {
  if (options === null || typeof options !== "object") {
    throw new Error(`${who}: expected options such as { split: "${splits[0]}", data: "path/to/folder" }; got ${String(options)}`);
  }
  if (!splits.includes(options.split)) {
    throw new Error(`${who}: split must be ${splits.map((s) => `"${s}"`).join(" or ")}; got ${JSON.stringify(options.split)}`);
  }
  return options;
}
