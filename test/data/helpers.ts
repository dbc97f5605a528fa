/**
 * Builders for tiny data files in the real formats (IDX, CIFAR-10 records,
 * tar), temp folders that clean up after themselves, and fake `fetch`
 * functions, so the loader tests never need the network.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";

const made: string[] = [];

/** A fresh empty folder under the OS temp dir, removed by {@link removeTempDirs}. */
export function makeTempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "covshift-data-test-"));
  made.push(dir);
  return dir;
}

/** Removes every folder {@link makeTempDir} made; call from an `after` hook. */
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** An uncompressed IDX file: big-endian magic, dimensions, then `data`. */
export function idxBytes(magic: number, dims: readonly number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, magic, false);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** `bytes` gzipped (fast level: the tests only need the format, not the ratio). */
export function gzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(zlib.gzipSync(bytes, { level: 1 }));
}

/** `n` distinguishable 28 × 28 MNIST-like images: pixel j of image i is (7i + j) mod 256. */
export function fakeMnistImages(n: number): Uint8Array {
  const out = new Uint8Array(n * 28 * 28);
  for (let i = 0; i < out.length; i++) out[i] = (7 * Math.floor(i / 784) + (i % 784)) & 255;
  return out;
}

/**
 * CIFAR-10 binary records with the given labels; byte j of image i's
 * 3,072 pixel bytes is (i + 3j) mod 256, so every record differs.
 */
export function cifarRecords(labels: readonly number[]): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((label, i) => {
    out[i * 3073] = label;
    for (let j = 0; j < 3072; j++) out[i * 3073 + 1 + j] = (i + 3 * j) & 255;
  });
  return out;
}

/** A ustar archive of the given members; a name ending in "/" becomes a directory entry. */
export function tarBytes(members: readonly { name: string; data?: Uint8Array }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const m of members) {
    const isDir = m.name.endsWith("/");
    const data = m.data ?? new Uint8Array(0);
    const header = new Uint8Array(512);
    const put = (text: string, at: number) => header.set(Buffer.from(text, "utf8"), at);
    const octal = (n: number, width: number) => n.toString(8).padStart(width - 1, "0");
    put(m.name, 0);
    put(octal(isDir ? 0o755 : 0o644, 8), 100);
    put(octal(0, 8), 108);
    put(octal(0, 8), 116);
    put(octal(data.length, 12), 124);
    put(octal(0, 12), 136);
    header[156] = (isDir ? "5" : "0").charCodeAt(0);
    put("ustar\u000000", 257);
    header.fill(0x20, 148, 156);
    const sum = header.reduce((a, b) => a + b, 0);
    put(`${octal(sum, 7)}\u0000 `, 148);
    blocks.push(header);
    if (data.length > 0) {
      const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
      padded.set(data);
      blocks.push(padded);
    }
  }
  blocks.push(new Uint8Array(1024));
  return new Uint8Array(Buffer.concat(blocks));
}

/** A `fetch` that fails the way an offline machine's does, remembering the URLs it was asked for. */
export function offlineFetch(): { fetchImpl: typeof fetch; urls: string[] } {
  const urls: string[] = [];
  const fetchImpl = (async (input: string | URL | Request) => {
    urls.push(String(input));
    throw new TypeError("fetch failed", { cause: new Error("getaddrinfo ENOTFOUND example.invalid") });
  }) as typeof fetch;
  return { fetchImpl, urls };
}

/**
 * A `fetch` that answers each URL with `respond(url)`: bytes become a 200
 * response, a number an empty response with that HTTP status, null a
 * network failure.
 */
export function fakeFetch(respond: (url: string) => Uint8Array | number | null): {
  fetchImpl: typeof fetch;
  urls: string[];
} {
  const urls: string[] = [];
  const fetchImpl = (async (input: string | URL | Request) => {
    const url = String(input);
    urls.push(url);
    const body = respond(url);
    if (body === null) throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED") });
    if (typeof body === "number") return new Response(null, { status: body });
    return new Response(new Uint8Array(body), { status: 200 });
  }) as typeof fetch;
  return { fetchImpl, urls };
}
