/**
 * MNIST for the page: the four files fetched from `mnist/` beside the page
 * (the demo server serves them from the data directory; a static host serves
 * whatever was put there), gunzipped in the browser when they are gzipped
 * (told apart by content, as the Node loader does), and validated with the
 * Node loader's own checks (src/data/idxFormat.ts, src/data/mnistFormat.ts).
 */
import { isGzip, parseIdx, REFETCH_ADVICE } from "../src/data/idxFormat.js";
import { MNIST_FILES, MNIST_IMAGE_MAGIC, MNIST_LABEL_MAGIC, mnistGzName, mnistSplitFromIdx, mnistToFloat, type MnistFile } from "../src/data/mnistFormat.js";
import type { ImageSetMessage } from "./protocol.js";

/** Where the page looks for the files, relative to itself. */
export const MNIST_PATH = "mnist/";

/** A problem with the data that the page shows as it is (it says what to do). */
export class DataError extends Error {}

async function fetchFile(file: MnistFile, onBytes: (n: number) => void): Promise<Uint8Array> {
  const url = MNIST_PATH + mnistGzName(file);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new DataError(`Could not fetch ${url}: ${(err as Error).message}. Is the demo server (covshift demo) still running?`);
  }
  if (!response.ok) {
    // The demo server answers with the loader's own message (what is missing, where, and how to fix it).
    const served = response.headers.get("X-Covshift-Data-Error") !== null ? await response.text() : "";
    throw new DataError(
      served ||
        `MNIST file ${url} not found (HTTP ${response.status}). Serve the page with \`covshift demo --data DIR\`, ` +
          `or, on a static host, put the four MNIST files (${Object.values(MNIST_FILES)
            .flatMap((s) => [s.images, s.labels])
            .map(mnistGzName)
            .join(", ")}) into the folder mnist/ beside index.html.`,
    );
  }
  const reader = response.body!.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
    onBytes(value.length);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  if (!isGzip(bytes)) return bytes;
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (err) {
    throw new DataError(`${url}: is gzip-compressed but does not decompress (${(err as Error).message}): it is truncated or damaged; ${REFETCH_ADVICE}`);
  }
}

/** Pixels as floats in [0, 1] ("scaled", figure1's default), in a SharedArrayBuffer where the page may share one between workers. */
function toImageSet(images: Uint8Array, labels: Uint8Array, count: number): ImageSetMessage {
  const floats = mnistToFloat(images, "scaled");
  if (typeof SharedArrayBuffer !== "function" || !self.crossOriginIsolated) return { images: floats, labels, count };
  const shared = new Float32Array(new SharedArrayBuffer(floats.byteLength));
  shared.set(floats);
  const sharedLabels = new Uint8Array(new SharedArrayBuffer(labels.byteLength));
  sharedLabels.set(labels);
  return { images: shared, labels: sharedLabels, count };
}

/** Both splits, fetched and checked; `onProgress` gets the fraction of bytes received (of the gzipped sizes). */
export async function loadMnistInBrowser(onProgress: (fraction: number) => void): Promise<{ train: ImageSetMessage; test: ImageSetMessage }> {
  // The gzipped files' sizes, for the progress bar only.
  const expectedBytes = 9_912_422 + 28_881 + 1_648_877 + 4_542;
  let received = 0;
  const onBytes = (n: number) => onProgress(Math.min(1, (received += n) / expectedBytes));
  const split = async (name: "train" | "test") => {
    const files = MNIST_FILES[name];
    const [imageBytes, labelBytes] = await Promise.all([fetchFile(files.images, onBytes), fetchFile(files.labels, onBytes)]);
    const sources = { images: MNIST_PATH + mnistGzName(files.images), labels: MNIST_PATH + mnistGzName(files.labels) };
    try {
      const images = parseIdx(imageBytes, sources.images, { magic: MNIST_IMAGE_MAGIC });
      const labels = parseIdx(labelBytes, sources.labels, { magic: MNIST_LABEL_MAGIC });
      const s = mnistSplitFromIdx(images, labels, sources);
      return toImageSet(s.images, s.labels, s.count);
    } catch (err) {
      throw new DataError((err as Error).message);
    }
  };
  const [train, test] = await Promise.all([split("train"), split("test")]);
  return { train, test };
}
