/**
 * MNIST's files and the checks every loaded split passes, on bytes in
 * memory: no Node API, so the browser demo validates the files it fetches
 * exactly as loadMnist (mnist.ts) validates those it reads from disk.
 */
import { REFETCH_ADVICE, type IdxArray } from "./idxFormat.js";

/** One split of MNIST: `count` images of `rows × cols` bytes (0 = background, 255 = ink), and their digits. */
export interface MnistSplit {
  /** count × rows × cols pixel intensities, row-major. */
  images: Uint8Array;
  /** The digit (0–9) drawn in each image. */
  labels: Uint8Array;
  /** Number of examples (after any `limit`). */
  count: number;
  /** Image height in pixels (28). */
  rows: number;
  /** Image width in pixels (28). */
  cols: number;
}

/** One of MNIST's four files. */
export interface MnistFile {
  /** Name without format suffix, e.g. "train-images". */
  stem: string;
  /** "idx3-ubyte" for images, "idx1-ubyte" for labels. */
  kind: string;
  /** md5 of the canonical gzipped file. */
  md5: string;
}

/** The image and label file of each split. */
export const MNIST_FILES: Record<"train" | "test", { images: MnistFile; labels: MnistFile }> = {
  train: {
    images: { stem: "train-images", kind: "idx3-ubyte", md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873" },
    labels: { stem: "train-labels", kind: "idx1-ubyte", md5: "d53e105ee54ea40749a09fcbcd1e9432" },
  },
  test: {
    images: { stem: "t10k-images", kind: "idx3-ubyte", md5: "9fb629c4189551a2d022fa330f9573f3" },
    labels: { stem: "t10k-labels", kind: "idx1-ubyte", md5: "ec29112dd5afa0611ce80d1b7f02629c" },
  },
};

/** IDX magic numbers: unsigned bytes in 3 dimensions (images), in 1 (labels). */
export const MNIST_IMAGE_MAGIC = 2051;
export const MNIST_LABEL_MAGIC = 2049;
const SIDE = 28;

/** The canonical (gzipped) file name, e.g. "train-images-idx3-ubyte.gz". */
export function mnistGzName(f: MnistFile): string {
  return `${f.stem}-${f.kind}.gz`;
}

/**
 * One split from its parsed image and label files (named `sources` in
 * errors): 28 × 28 images, as many labels as images, labels 0–9; the first
 * `limit` examples (all by default), copied.
 */
export function mnistSplitFromIdx(
  images: IdxArray,
  labels: IdxArray,
  sources: { images: string; labels: string },
  limit?: number,
): MnistSplit {
  const [count, rows, cols] = images.dims;
  if (rows !== SIDE || cols !== SIDE) {
    throw new Error(
      `${sources.images}: holds ${rows} × ${cols} images, but MNIST images are ${SIDE} × ${SIDE}: ` +
        `this is not the MNIST file; ${REFETCH_ADVICE}`,
    );
  }
  if (labels.dims[0] !== count) {
    throw new Error(
      `${sources.images} holds ${count} images but ${sources.labels} holds ${labels.dims[0]} labels; ` +
        `they must match one to one, so one of the two files is from a different split or damaged; ` +
        `${REFETCH_ADVICE}`,
    );
  }
  const bad = labels.data.findIndex((d) => d > 9);
  if (bad >= 0) {
    throw new Error(
      `${sources.labels}: label #${bad} is ${labels.data[bad]}, but MNIST labels are digits 0–9: ` +
        `the file is damaged or not an MNIST label file; ${REFETCH_ADVICE}`,
    );
  }

  const n = limit === undefined ? count : Math.min(limit, count);
  // Copies, so callers hold plain arrays of exactly n examples rather than
  // views pinning the whole decompressed file in memory.
  return {
    images: new Uint8Array(images.data.subarray(0, n * rows * cols)),
    labels: new Uint8Array(labels.data.subarray(0, n)),
    count: n,
    rows,
    cols,
  };
}

/** How MNIST's pixel bytes become network inputs (see {@link mnistToFloat}). */
export type MnistInput = "scaled" | "binary" | "standardized";

export const MNIST_INPUTS: readonly MnistInput[] = ["scaled", "binary", "standardized"];

/**
 * Mean and standard deviation of `pixel / 255` over MNIST's 60,000 training
 * images (all pixels pooled): the constants of PyTorch's MNIST example.
 */
export const MNIST_PIXEL_MEAN = 0.1307;
export const MNIST_PIXEL_STD = 0.3081;

/**
 * Converts pixel bytes to the network's input values.
 *
 * - `"scaled"`: `pixel / 255`, in [0, 1].
 * - `"binary"`: 1 where `pixel >= 128`, else 0 — the midpoint of the byte
 *   range, so strokes (mostly 255 with anti-aliased edges) become 1 and the
 *   background (0) stays 0.
 * - `"standardized"`: `(pixel / 255 − 0.1307) / 0.3081`, mean 0 and standard
 *   deviation 1 over the training pixels (background −0.42, strokes 2.82).
 *
 * With `shared`, the floats are in a SharedArrayBuffer.
 */
export function mnistToFloat(images: Uint8Array, mode: MnistInput, options: { shared?: boolean } = {}): Float32Array {
  // A pixel is one of 256 bytes: its value is computed once per byte (in
  // float64 and rounded to float32, as the per-pixel expression is) and
  // looked up — the same bits, without 47 million divisions.
  const value = new Float32Array(256);
  for (let v = 0; v < 256; v++) {
    if (mode === "scaled") value[v] = v / 255;
    else if (mode === "binary") value[v] = v >= 128 ? 1 : 0;
    else if (mode === "standardized") value[v] = (v / 255 - MNIST_PIXEL_MEAN) / MNIST_PIXEL_STD;
    else throw new Error(`mnistToFloat: mode must be ${MNIST_INPUTS.map((m) => `"${m}"`).join(", ")}; got ${JSON.stringify(mode)}`);
  }
  // shared: in a SharedArrayBuffer, for worker threads to read one copy (60,000 images are 188 MB as floats).
  const out = options.shared ? new Float32Array(new SharedArrayBuffer(images.length * 4)) : new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = value[images[i]];
  return out;
}
