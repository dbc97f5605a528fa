import { loadMnist, mnistToFloat, type MnistInput } from "../../data/mnist.js";
import type { ImageSet } from "./trainer.js";

/** MNIST as float rows of 784 values, scaled to [0, 1], binarized or standardized (with `shared`, the images in a SharedArrayBuffer). */
export async function loadFigure1Data(
  dataDir: string,
  input: MnistInput,
  limits: { train?: number; test?: number } = {},
  options: { download?: boolean; shared?: boolean } = {},
): Promise<{ train: ImageSet; test: ImageSet }> {
  const [tr, te] = await Promise.all([
    loadMnist(dataDir, "train", { limit: limits.train, download: options.download }),
    loadMnist(dataDir, "test", { limit: limits.test, download: options.download }),
  ]);
  return {
    train: { images: mnistToFloat(tr.images, input, { shared: options.shared }), labels: tr.labels, count: tr.count },
    test: { images: mnistToFloat(te.images, input, { shared: options.shared }), labels: te.labels, count: te.count },
  };
}

/**
 * The same set in SharedArrayBuffers, so that worker threads read one copy
 * instead of each holding its own (the training images are 188 MB as floats).
 */
export function shareImageSet(set: ImageSet): ImageSet {
  let images = set.images;
  if (!(images.buffer instanceof SharedArrayBuffer)) {
    images = new Float32Array(new SharedArrayBuffer(set.images.byteLength));
    images.set(set.images);
  }
  const labels = new Uint8Array(new SharedArrayBuffer(set.labels.byteLength));
  labels.set(set.labels);
  return { images, labels, count: set.count };
}
