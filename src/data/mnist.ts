import * as fs from "node:fs";
import * as path from "node:path";
import { dataDirHelp } from "./datadir.js";
import { downloadAll, type RemoteFile } from "./download.js";
import { readIdxFile } from "./idx.js";
import { MNIST_FILES, MNIST_IMAGE_MAGIC, MNIST_LABEL_MAGIC, mnistGzName, mnistSplitFromIdx, type MnistFile, type MnistSplit } from "./mnistFormat.js";

export { mnistToFloat, MNIST_INPUTS, type MnistInput, type MnistSplit } from "./mnistFormat.js";

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
  const files = MNIST_FILES[split];
  let imagesPath = findMnistFile(dir, files.images);
  let labelsPath = findMnistFile(dir, files.labels);

  const missing = [imagesPath === null ? files.images : null, labelsPath === null ? files.labels : null].filter(
    (f): f is MnistFile => f !== null,
  );
  if (missing.length > 0) {
    // The instructions list every MNIST file the folder lacks, both splits', so that
    // one message says all there is to put there (figure1 loads both splits).
    const other = split === "train" ? "test" : "train";
    const otherMissing = [MNIST_FILES[other].images, MNIST_FILES[other].labels].filter((f) => findMnistFile(dir, f) === null);
    const also = otherMissing.length > 0 ? ` (and ${otherMissing.map(mnistGzName).join(", ")} of the ${other} split)` : "";
    const problem = `MNIST (${split} split): ${missing.map(mnistGzName).join(", ")} missing from ${dir}${also}`;
    const howToFix = manualInstructions(dir, split === "train" ? [...missing, ...otherMissing] : [...otherMissing, ...missing]);
    if (opts.download === false) throw new Error(`${problem} (downloading is turned off).\n${howToFix}`);
    const remote: RemoteFile[] = missing.map((f) => ({
      name: mnistGzName(f),
      md5: f.md5,
      urls: MNIST_MIRRORS.map((m) => m + mnistGzName(f)),
    }));
    await downloadAll(problem, remote, dir, howToFix, { fetchImpl: opts.fetchImpl });
    imagesPath ??= path.join(dir, mnistGzName(files.images));
    labelsPath ??= path.join(dir, mnistGzName(files.labels));
  }

  const [images, labels] = await Promise.all([
    readIdxFile(imagesPath as string, { magic: MNIST_IMAGE_MAGIC }),
    readIdxFile(labelsPath as string, { magic: MNIST_LABEL_MAGIC }),
  ]);
  return mnistSplitFromIdx(images, labels, { images: imagesPath as string, labels: labelsPath as string }, opts.limit);
}

function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new Error(`limit must be a whole number of examples, 0 or more; got ${limit}`);
  }
}

/** The path of `f` in `dir` under any of the names loadMnist accepts, or null when it is not there. */
export function findMnistFile(dir: string, f: MnistFile): string | null {
  const names = [`${f.stem}-${f.kind}.gz`, `${f.stem}-${f.kind}`, `${f.stem}.${f.kind}`, `${f.stem}.${f.kind}.gz`];
  for (const name of names) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

function manualInstructions(dir: string, missing: readonly MnistFile[]): string {
  const list = missing.map((f) => `      ${mnistGzName(f)}  (md5 ${f.md5}; unpacked as ${f.stem}-${f.kind} also works)`);
  return [
    "To fix it, either",
    `  - put these files into ${dir}:`,
    ...list,
    `    downloaded from ${MNIST_MIRRORS.join(" or ")} (append the file name to the address),`,
    dataDirHelp("mnist"),
  ].join("\n");
}
