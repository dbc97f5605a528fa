import * as fs from "node:fs";
import * as path from "node:path";
import { dataDirHelp, REFETCH_ADVICE } from "./datadir.js";
import { downloadAll, type RemoteFile } from "./download.js";
import { readIdxFile } from "./idx.js";

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

/** Options of {@link loadMnist}. */
export interface LoadMnistOptions {
  /** Fetch missing files from the public mirrors (default true). With false, missing files are an error. */
  download?: boolean;
  /** Stand-in for the global `fetch`, so tests never touch the network. */
  fetchImpl?: typeof fetch;
  /** Keep only the first `limit` examples (all of them if the split is smaller). */
  limit?: number;
}

/**
 * Mirrors of LeCun's original files, which are no longer reliably served
 * from yann.lecun.com. Both serve the canonical gzipped files, so one md5
 * per file checks either.
 */
export const MNIST_MIRRORS: readonly string[] = [
  "https://ossci-datasets.s3.amazonaws.com/mnist/",
  "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

interface MnistFile {
  /** Name without format suffix, e.g. "train-images". */
  stem: string;
  /** "idx3-ubyte" for images, "idx1-ubyte" for labels. */
  kind: string;
  /** md5 of the canonical gzipped file. */
  md5: string;
}

const FILES: Record<"train" | "test", { images: MnistFile; labels: MnistFile }> = {
  train: {
    images: { stem: "train-images", kind: "idx3-ubyte", md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873" },
    labels: { stem: "train-labels", kind: "idx1-ubyte", md5: "d53e105ee54ea40749a09fcbcd1e9432" },
  },
  test: {
    images: { stem: "t10k-images", kind: "idx3-ubyte", md5: "9fb629c4189551a2d022fa330f9573f3" },
    labels: { stem: "t10k-labels", kind: "idx1-ubyte", md5: "ec29112dd5afa0611ce80d1b7f02629c" },
  },
};

const IMAGE_MAGIC = 2051;
const LABEL_MAGIC = 2049;
const SIDE = 28;

/**
 * Loads the training (60,000) or test (10,000) split of MNIST from `dir`.
 *
 * Each of the split's two IDX files may be gzipped or not (told apart by
 * content) and named `train-images-idx3-ubyte.gz`, `train-images-idx3-ubyte`,
 * `train-images.idx3-ubyte` or `train-images.idx3-ubyte.gz` (likewise for
 * `train-labels-idx1-ubyte`, `t10k-images-…`, `t10k-labels-…`), covering the
 * original names and those of common mirrors; the first name found wins.
 *
 * Missing files are downloaded into `dir` from {@link MNIST_MIRRORS} and
 * checked against their published md5 (see `download.ts`) unless
 * `opts.download` is false. Files already present are not checksummed —
 * they may legitimately be unpacked copies — but are fully validated:
 * magic numbers, 28 × 28 images, no truncation or trailing bytes, equal
 * image and label counts, labels 0–9. Every failure is an `Error` naming
 * the file and saying how to fix it.
 */
export async function loadMnist(
  dir: string,
  split: "train" | "test",
  opts: LoadMnistOptions = {},
): Promise<MnistSplit> {
  checkLimit(opts.limit);
  const files = FILES[split];
  let imagesPath = findFile(dir, files.images);
  let labelsPath = findFile(dir, files.labels);

  const missing = [imagesPath === null ? files.images : null, labelsPath === null ? files.labels : null].filter(
    (f): f is MnistFile => f !== null,
  );
  if (missing.length > 0) {
    const problem = `MNIST (${split} split): ${missing.map(gzName).join(", ")} missing from ${dir}`;
    const howToFix = manualInstructions(dir, missing);
    if (opts.download === false) throw new Error(`${problem} (downloading is turned off).\n${howToFix}`);
    const remote: RemoteFile[] = missing.map((f) => ({
      name: gzName(f),
      md5: f.md5,
      urls: MNIST_MIRRORS.map((m) => m + gzName(f)),
    }));
    await downloadAll(problem, remote, dir, howToFix, { fetchImpl: opts.fetchImpl });
    imagesPath ??= path.join(dir, gzName(files.images));
    labelsPath ??= path.join(dir, gzName(files.labels));
  }

  const [images, labels] = await Promise.all([
    readIdxFile(imagesPath as string, { magic: IMAGE_MAGIC }),
    readIdxFile(labelsPath as string, { magic: LABEL_MAGIC }),
  ]);
  const [count, rows, cols] = images.dims;
  if (rows !== SIDE || cols !== SIDE) {
    throw new Error(
      `${imagesPath}: holds ${rows} × ${cols} images, but MNIST images are ${SIDE} × ${SIDE}: ` +
        `this is not the MNIST file; ${REFETCH_ADVICE}`,
    );
  }
  if (labels.dims[0] !== count) {
    throw new Error(
      `${imagesPath} holds ${count} images but ${labelsPath} holds ${labels.dims[0]} labels; ` +
        `they must match one to one, so one of the two files is from a different split or damaged; ` +
        `${REFETCH_ADVICE}`,
    );
  }
  const bad = labels.data.findIndex((d) => d > 9);
  if (bad >= 0) {
    throw new Error(
      `${labelsPath}: label #${bad} is ${labels.data[bad]}, but MNIST labels are digits 0–9: ` +
        `the file is damaged or not an MNIST label file; ${REFETCH_ADVICE}`,
    );
  }

  const n = opts.limit === undefined ? count : Math.min(opts.limit, count);
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

/**
 * Converts pixel bytes to the network's input values.
 *
 * - `"scaled"`: `pixel / 255`, in [0, 1].
 * - `"binary"`: 1 where `pixel >= 128`, else 0 — the midpoint of the byte
 *   range, so strokes (mostly 255 with anti-aliased edges) become 1 and the
 *   background (0) stays 0.
 */
export function mnistToFloat(images: Uint8Array, mode: "scaled" | "binary"): Float32Array {
  const out = new Float32Array(images.length);
  if (mode === "scaled") {
    for (let i = 0; i < images.length; i++) out[i] = images[i] / 255;
  } else if (mode === "binary") {
    for (let i = 0; i < images.length; i++) out[i] = images[i] >= 128 ? 1 : 0;
  } else {
    throw new Error(`mnistToFloat: mode must be "scaled" or "binary"; got ${JSON.stringify(mode)}`);
  }
  return out;
}

function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new Error(`limit must be a whole number of examples, 0 or more; got ${limit}`);
  }
}

function gzName(f: MnistFile): string {
  return `${f.stem}-${f.kind}.gz`;
}

function findFile(dir: string, f: MnistFile): string | null {
  const names = [`${f.stem}-${f.kind}.gz`, `${f.stem}-${f.kind}`, `${f.stem}.${f.kind}`, `${f.stem}.${f.kind}.gz`];
  for (const name of names) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function manualInstructions(dir: string, missing: readonly MnistFile[]): string {
  const list = missing.map((f) => `      ${gzName(f)}  (md5 ${f.md5}; unpacked as ${f.stem}-${f.kind} also works)`);
  return [
    "To fix it, either",
    `  - put these files into ${dir}:`,
    ...list,
    `    downloaded from ${MNIST_MIRRORS.join(" or ")} (append the file name to the address),`,
    dataDirHelp("mnist"),
  ].join("\n");
}
