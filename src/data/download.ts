import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { REFETCH_ADVICE } from "./datadir.js";

/** A file to fetch: where to save it, what its md5 must be, and the mirrors to try in order. */
export interface RemoteFile {
  /** File name inside the data directory. */
  name: string;
  /** Lower-case hex md5 of the exact bytes the mirrors serve. */
  md5: string;
  /** Full URLs of the file, tried in order until one delivers the right bytes. */
  urls: readonly string[];
}

/** Options shared by the download functions. */
export interface DownloadOptions {
  /** Stand-in for the global `fetch`, so tests never touch the network. */
  fetchImpl?: typeof fetch;
}

/**
 * Downloads `file` into `dir` (created if needed) and returns the saved path.
 *
 * Each mirror's answer is streamed into a hidden temporary file in `dir`
 * while its md5 is computed; only bytes with the right md5 are renamed into
 * place, so `dir` never holds a half-written or wrong file under the real
 * name, even if the process is killed mid-download, and two processes
 * downloading at once cannot corrupt each other. A wrong checksum counts as
 * a failed mirror: the next one is tried.
 *
 * Throws an `Error` listing what every mirror answered if none delivered
 * the file.
 */
export async function downloadFile(file: RemoteFile, dir: string, opts: DownloadOptions = {}): Promise<string> {
  const fetchImpl = opts.fetchImpl ?? globalThis.fetch;
  const dest = path.join(dir, file.name);
  try {
    await fs.promises.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new Error(`cannot create the data directory ${dir} to download ${file.name} into: ${describe(err)}`, {
      cause: err,
    });
  }
  const failures: string[] = [];
  for (const url of file.urls) {
    const tmp = tempName(dest);
    try {
      const md5 = await fetchToFile(fetchImpl, url, tmp);
      if (md5 !== file.md5) {
        failures.push(`${url}: served bytes with md5 ${md5}, expected ${file.md5} (wrong or damaged file)`);
        continue;
      }
      await fs.promises.rename(tmp, dest);
      return dest;
    } catch (err) {
      failures.push(`${url}: ${describe(err)}`);
    } finally {
      // After a successful rename the temporary name is gone and this is a
      // no-op; after any failure it removes the partial bytes.
      await fs.promises.rm(tmp, { force: true });
    }
  }
  throw new Error(`could not download ${file.name}:\n${failures.map((f) => `      ${f}`).join("\n")}`);
}

/**
 * Downloads each of `files` into `dir`, one after the other.
 *
 * On the first file no mirror delivers, throws an `Error` that starts with
 * `problem` (what the caller was missing, e.g. "MNIST (test split):
 * t10k-images-idx3-ubyte.gz missing from DIR"), says what each mirror
 * answered, and ends with `howToFix` — the caller's exact manual
 * instructions — so an offline user learns in one message which files to
 * put where. Files already downloaded stay (they passed their checksum).
 */
export async function downloadAll(
  problem: string,
  files: readonly RemoteFile[],
  dir: string,
  howToFix: string,
  opts: DownloadOptions = {},
): Promise<void> {
  for (const file of files) {
    try {
      await downloadFile(file, dir, opts);
    } catch (err) {
      throw new Error(
        `${problem}, and downloading failed:\n    ${describe(err)}\n${howToFix}`,
        { cause: err },
      );
    }
  }
}

/** One regular file read out of a tar archive. */
export interface TarEntry {
  /** Path inside the archive, with the ustar prefix joined on. */
  name: string;
  /** The file's bytes: a view into the archive, not a copy. */
  data: Uint8Array;
}

const BLOCK = 512;

/**
 * Reads the regular files of an uncompressed tar archive (ustar, and the
 * GNU and v7 variants of the same header layout), for unpacking the
 * CIFAR-10 tarball without a dependency.
 *
 * Deliberately minimal: directories, links and other non-file members are
 * skipped; GNU long names ('L') and pax headers ('x', 'g') are skipped too,
 * so such members keep their truncated 100-character name — the archives
 * covshift reads use short names. Sizes in base-256 (for members over 8 GiB)
 * are understood. Every header's checksum is verified, so a damaged or
 * non-tar input is reported rather than misread; `source` names the archive
 * in those errors.
 */
export function readTar(archive: Uint8Array, source: string): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    // The archive ends with (at least) one all-zero block.
    if (header.every((b) => b === 0)) return entries;

    const stored = parseOctal(header.subarray(148, 156));
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
    if (stored !== sum) {
      throw new Error(
        `${source}: the tar header at byte ${offset} has checksum ${stored}, but its bytes sum to ${sum}: ` +
          `the archive is damaged or not a tar file; ${REFETCH_ADVICE}`,
      );
    }
    const size = parseSize(header.subarray(124, 136));
    const type = String.fromCharCode(header[156]);
    const name = cString(header.subarray(0, 100));
    const magic = cString(header.subarray(257, 263));
    const prefix = magic === "ustar" ? cString(header.subarray(345, 500)) : "";
    const start = offset + BLOCK;
    if (start + size > archive.length) {
      throw new Error(
        `${source}: member ${name} needs ${size} bytes but the archive ends ${start + size - archive.length} ` +
          `bytes early: it is truncated; ${REFETCH_ADVICE}`,
      );
    }
    if (type === "0" || type === "\0" || type === "7") {
      entries.push({ name: prefix ? `${prefix}/${name}` : name, data: archive.subarray(start, start + size) });
    }
    offset = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  // Old tools sometimes omit the end-of-archive blocks; a clean member
  // boundary at the end of input is still a complete archive.
  if (offset === archive.length) return entries;
  throw new Error(`${source}: ends inside a tar header at byte ${offset}: the archive is truncated; ${REFETCH_ADVICE}`);
}

/** Hidden, unique per attempt, and in the destination's folder so the final rename stays atomic. */
function tempName(dest: string): string {
  const unique = `${process.pid}.${crypto.randomBytes(4).toString("hex")}`;
  return path.join(path.dirname(dest), `.${path.basename(dest)}.${unique}.part`);
}

function parseOctal(field: Uint8Array): number {
  const text = cString(field).trim();
  return text === "" ? 0 : parseInt(text, 8);
}

function parseSize(field: Uint8Array): number {
  if ((field[0] & 0x80) === 0) return parseOctal(field);
  // GNU base-256: the remaining bits are a big-endian binary number.
  let n = field[0] & 0x7f;
  for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
  return n;
}

function cString(field: Uint8Array): string {
  const end = field.indexOf(0);
  return Buffer.from(field.subarray(0, end < 0 ? field.length : end)).toString("utf8");
}

async function fetchToFile(fetchImpl: typeof fetch, url: string, dest: string): Promise<string> {
  const res = await fetchImpl(url);
  if (!res.ok) throw new Error(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}`);
  const hash = crypto.createHash("md5");
  const out = await fs.promises.open(dest, "wx");
  try {
    if (res.body !== null) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        hash.update(value);
        // write() may take fewer bytes than offered; loop until all are down.
        for (let written = 0; written < value.length; ) {
          written += (await out.write(value, written, value.length - written)).bytesWritten;
        }
      }
    }
    // Flushed before the caller renames, so a crash cannot leave a
    // correctly named file with missing contents.
    await out.sync();
  } finally {
    await out.close();
  }
  return hash.digest("hex");
}

/** Network errors hide the useful part (ENOTFOUND, ECONNREFUSED) in `cause`. */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : "";
  return `${err.message}${cause}`;
}
