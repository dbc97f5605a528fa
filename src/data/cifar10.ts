import * as fs from "node:fs";
import * as path from "node:path";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { dataDirHelp, REFETCH_ADVICE } from "./datadir.js";
import { writeFileAtomic } from "../io/files.js";
import { downloadAll, readTar } from "./download.js";

const gunzip = promisify(zlib.gunzip);

/** One split of CIFAR-10: `count` colour images of 3 × 32 × 32 bytes and their classes. */
export interface CifarSplit {
  /** count × 3 × 32 × 32 bytes: per image the red, green, then blue plane, each row-major (CHW). */
  images: Uint8Array;
  /** Class index 0–9 of each image; names in {@link CIFAR10_CLASSES}. */
  labels: Uint8Array;
  /** Number of examples (after any `limit`). */
  count: number;
}

/** Options of {@link loadCifar10}. */
export interface LoadCifarOptions {
  /** Keep only the first `limit` examples of the split (all of them if it is smaller). */
  limit?: number;
  /** Fetch and unpack the official archive when batch files are missing (default true). */
  download?: boolean;
  /** Stand-in for the global `fetch`, so tests never touch the network. */
  fetchImpl?: typeof fetch;
}

/** The class names, indexed by label. */
export const CIFAR10_CLASSES: readonly string[] = Object.freeze([
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
]);

/** Where the official binary version of CIFAR-10 is published. */
export const CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/** The published md5 of the archive at {@link CIFAR10_URL}. */
export const CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530";
const ARCHIVE = "cifar-10-binary.tar.gz";

const IMAGE_BYTES = 3 * 32 * 32;
const RECORD_BYTES = 1 + IMAGE_BYTES;
const BATCH_RECORDS = 10_000;
const TRAIN_BATCHES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);
const FULL_TEST = "test_batch.bin";
/** The first 1,000 records of test_batch.bin, for setups without the full official file. */
const PARTIAL_TEST = "test_batch_first1000.bin";
/** What the archive contributes; the rest of it (metadata, readme) is not needed. */
const ARCHIVE_MEMBERS = [...TRAIN_BATCHES, FULL_TEST];

/** A run of consecutive records of one batch file. */
interface Segment {
  file: string;
  /** How many records the file holds in the official data set. */
  fileRecords: number;
  start: number;
  count: number;
}

/**
 * Loads a split of the binary version of CIFAR-10 from `dir`, using the
 * project's split of the official files:
 *
 * - `"train"`: `data_batch_1.bin` … `data_batch_4.bin` and the first 5,000
 *   records of `data_batch_5.bin` (45,000 images);
 * - `"validation"`: the last 5,000 records of `data_batch_5.bin`;
 * - `"test"`: `test_batch.bin` (10,000) if present, else
 *   `test_batch_first1000.bin` (its first 1,000 records).
 *
 * Each file must be a whole number of 3,073-byte records (label, then
 * 1,024 red, 1,024 green, 1,024 blue bytes) with the official record count
 * (10,000; 1,000 for the partial test file) and labels 0–9; anything else
 * is an `Error` naming the file. With `limit`, only the records needed are
 * read.
 *
 * Missing files: if `cifar-10-binary.tar.gz` sits in `dir` it is unpacked
 * there; otherwise, unless `opts.download` is false, that archive (~170 MB)
 * is downloaded from {@link CIFAR10_URL}, checked against
 * {@link CIFAR10_MD5}, unpacked with the small tar reader in `download.ts`,
 * and deleted. Without network the error says which files to put where.
 */
export async function loadCifar10(
  dir: string,
  split: "train" | "validation" | "test",
  opts: LoadCifarOptions = {},
): Promise<CifarSplit> {
  const limit = opts.limit;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw new Error(`limit must be a whole number of examples, 0 or more; got ${limit}`);
  }
  let segments = planSplit(dir, split);
  const missing = segments.map((s) => s.file).filter((f) => !fs.existsSync(f));
  if (missing.length > 0) {
    await obtainFiles(dir, split, missing.map((f) => path.basename(f)), opts);
    segments = planSplit(dir, split);
  }

  for (const s of segments) await checkSize(s);

  let remaining = limit ?? Infinity;
  const wanted: Segment[] = [];
  for (const s of segments) {
    if (remaining <= 0) break;
    const count = Math.min(s.count, remaining);
    wanted.push({ ...s, count });
    remaining -= count;
  }
  const count = wanted.reduce((n, s) => n + s.count, 0);
  const images = new Uint8Array(count * IMAGE_BYTES);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const s of wanted) {
    await readRecords(s, images, labels, at);
    at += s.count;
  }
  return { images, labels, count };
}

/**
 * Unpacks the CIFAR-10 batch files (`data_batch_1.bin` … `data_batch_5.bin`,
 * `test_batch.bin`) from a `cifar-10-binary.tar.gz` into `dir`, each written
 * atomically, and returns the names written. Other members are ignored.
 */
export async function extractCifarArchive(archive: string, dir: string): Promise<string[]> {
  let tar: Uint8Array;
  try {
    tar = await gunzip(await fs.promises.readFile(archive));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`${archive}: cannot be decompressed (${why}): it is truncated or damaged; ${REFETCH_ADVICE}`, {
      cause: err,
    });
  }
  const written: string[] = [];
  for (const entry of readTar(tar, archive)) {
    const name = path.posix.basename(entry.name);
    if (!ARCHIVE_MEMBERS.includes(name)) continue;
    writeFileAtomic(path.join(dir, name), entry.data);
    written.push(name);
  }
  if (written.length === 0) {
    throw new Error(
      `${archive}: holds none of the CIFAR-10 binary batches (${ARCHIVE_MEMBERS.join(", ")}); ` +
        `the Python or MATLAB version (cifar-10-python.tar.gz, cifar-10-matlab.tar.gz) will not do: ` +
        `use the binary version from ${CIFAR10_URL}`,
    );
  }
  return written;
}

function planSplit(dir: string, split: "train" | "validation" | "test"): Segment[] {
  const batch = (name: string, start: number, count: number): Segment => ({
    file: path.join(dir, name),
    fileRecords: BATCH_RECORDS,
    start,
    count,
  });
  const half = BATCH_RECORDS / 2;
  switch (split) {
    case "train":
      return [...TRAIN_BATCHES.slice(0, 4).map((n) => batch(n, 0, BATCH_RECORDS)), batch(TRAIN_BATCHES[4], 0, half)];
    case "validation":
      return [batch(TRAIN_BATCHES[4], half, half)];
    case "test":
      if (!fs.existsSync(path.join(dir, FULL_TEST)) && fs.existsSync(path.join(dir, PARTIAL_TEST))) {
        return [{ file: path.join(dir, PARTIAL_TEST), fileRecords: 1000, start: 0, count: 1000 }];
      }
      return [batch(FULL_TEST, 0, BATCH_RECORDS)];
    default:
      throw new Error(`CIFAR-10 split must be "train", "validation" or "test"; got ${JSON.stringify(split)}`);
  }
}

async function obtainFiles(dir: string, split: string, missing: string[], opts: LoadCifarOptions): Promise<void> {
  const what = `CIFAR-10 (${split} split)`;
  const problem = `${what}: ${missing.join(", ")} missing from ${dir}`;
  const howToFix = manualInstructions(dir);
  const archive = path.join(dir, ARCHIVE);
  // An archive the user put there themselves is theirs to keep; one we
  // downloaded is only a means to the .bin files.
  const supplied = fs.existsSync(archive);
  if (!supplied) {
    if (opts.download === false) {
      throw new Error(`${problem} (downloading is turned off).\n${howToFix}`);
    }
    await downloadAll(problem, [{ name: ARCHIVE, md5: CIFAR10_MD5, urls: [CIFAR10_URL] }], dir, howToFix, {
      fetchImpl: opts.fetchImpl,
    });
  }
  try {
    await extractCifarArchive(archive, dir);
  } finally {
    // Left behind, a downloaded archive would later pass for one the user
    // supplied and be kept forever.
    if (!supplied) await fs.promises.rm(archive, { force: true });
  }
  const still = missing.filter((name) => !fs.existsSync(path.join(dir, name)));
  if (still.length > 0) {
    throw new Error(`${what}: ${archive} did not contain ${still.join(", ")}; ${REFETCH_ADVICE}.\n${howToFix}`);
  }
}

async function checkSize(s: Segment): Promise<void> {
  const size = (await fs.promises.stat(s.file)).size;
  const records = Math.floor(size / RECORD_BYTES);
  const extra = size % RECORD_BYTES;
  if (extra !== 0) {
    throw new Error(
      `${s.file}: is ${size} bytes, not a whole number of ${RECORD_BYTES}-byte records (1 label byte + ` +
        `3 × 32 × 32 pixel bytes) but ${records} records and ${extra} bytes more: the file is truncated ` +
        `or not a CIFAR-10 binary batch (the Python version's pickles are a different format); ${REFETCH_ADVICE}`,
    );
  }
  if (records !== s.fileRecords) {
    const problem = records < s.fileRecords ? "the file is truncated" : "the file has extra records appended";
    throw new Error(
      `${s.file}: holds ${records} records (${size} bytes), but this file has ${s.fileRecords} ` +
        `(${s.fileRecords * RECORD_BYTES} bytes) in the official data set: ${problem}; ${REFETCH_ADVICE}`,
    );
  }
}

async function readRecords(s: Segment, images: Uint8Array, labels: Uint8Array, at: number): Promise<void> {
  const bytes = new Uint8Array(s.count * RECORD_BYTES);
  const position = s.start * RECORD_BYTES;
  const fh = await fs.promises.open(s.file, "r");
  try {
    let got = 0;
    while (got < bytes.length) {
      const { bytesRead } = await fh.read(bytes, got, bytes.length - got, position + got);
      // The size was checked moments ago; coming up short means the file
      // shrank underneath us.
      if (bytesRead === 0) {
        throw new Error(
          `${s.file}: ended after ${position + got} bytes while reading records ${s.start}–` +
            `${s.start + s.count - 1}: the file is truncated; ${REFETCH_ADVICE}`,
        );
      }
      got += bytesRead;
    }
  } finally {
    await fh.close();
  }
  for (let r = 0; r < s.count; r++) {
    const offset = r * RECORD_BYTES;
    const label = bytes[offset];
    if (label > 9) {
      throw new Error(
        `${s.file}: record #${s.start + r} (byte ${position + offset}) has label ${label}, but CIFAR-10 ` +
          `labels are 0–9: the file is damaged or not a CIFAR-10 batch (CIFAR-100 records have two ` +
          `label bytes); ${REFETCH_ADVICE}`,
      );
    }
    labels[at + r] = label;
    images.set(bytes.subarray(offset + 1, offset + RECORD_BYTES), (at + r) * IMAGE_BYTES);
  }
}

function manualInstructions(dir: string): string {
  return [
    "To fix it, either",
    `  - download ${CIFAR10_URL} (md5 ${CIFAR10_MD5}) and put it into ${dir}`,
    `    (covshift unpacks it there), or unpack it yourself and move the files ${TRAIN_BATCHES.join(", ")}`,
    `    and ${FULL_TEST} from its cifar-10-batches-bin folder into ${dir},`,
    dataDirHelp("cifar10"),
  ].join("\n");
}
