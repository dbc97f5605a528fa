import { loadMnist, mnistToFloat } from "../../data/mnist.js";
import type { ImageSet } from "./trainer.js";

/** MNIST as float rows of 784 values, scaled to [0, 1] or binarized. */
export async function loadFigure1Data(
  dataDir: string,
  input: "scaled" | "binary",
  limits: { train?: number; test?: number } = {},
): Promise<{ train: ImageSet; test: ImageSet }> {
  const [tr, te] = await Promise.all([
    loadMnist(dataDir, "train", { limit: limits.train }),
    loadMnist(dataDir, "test", { limit: limits.test }),
  ]);
  return {
    train: { images: mnistToFloat(tr.images, input), labels: tr.labels, count: tr.count },
    test: { images: mnistToFloat(te.images, input), labels: te.labels, count: te.count },
  };
}
