/**
 * What `covshift adabn` and `covshift batchsize` do with a trained §4.1
 * network after its job (figure1's job module) has finished: read it back
 * from the model file the job wrote, and measure its accuracy.
 */
import { nn, noGrad, scope, Tensor } from "../index.js";
import { loadSafetensorsFile } from "../io/safetensorsFile.js";
import { Generator as Rng } from "../tensor/random.js";
import type { Figure1Config } from "./figure1/config.js";
import { buildFigure1Network } from "./figure1/network.js";

const INPUT = 784;
const CHUNK = 1000;

/** Accuracy of `model` (inference mode) on `images` (rows of 784) and `labels`. */
export function accuracyOf(model: nn.Module, images: Float32Array, labels: Uint8Array): number {
  const n = labels.length;
  let correct = 0;
  model.eval();
  noGrad(() => {
    for (let start = 0; start < n; start += CHUNK) {
      const rows = Math.min(CHUNK, n - start);
      scope(() => {
        const out = model.forward(new Tensor(images.subarray(start * INPUT, (start + rows) * INPUT), [rows, INPUT]));
        for (let r = 0; r < rows; r++) {
          let best = 0;
          for (let j = 1; j < 10; j++) if (out.data[r * 10 + j] > out.data[r * 10 + best]) best = j;
          if (best === labels[start + r]) correct++;
        }
      });
    }
  });
  return correct / n;
}

/**
 * The BN network of `config` (its norm layers included) with the state
 * dict of `<modelPath>.safetensors`: the bits the job's trainer ended with.
 */
export function loadTrainedNetwork(modelPath: string, config: Figure1Config): nn.Sequential {
  const { model } = buildFigure1Network("batchnorm", config, new Rng(0));
  const own = model.stateDict();
  const file = `${modelPath}.safetensors`;
  const { tensors } = loadSafetensorsFile(file);
  const state: Record<string, Tensor> = {};
  for (const [key, t] of Object.entries(tensors)) {
    const like = own[key];
    if (like === undefined) throw new Error(`${file}: holds "${key}", which the network of these settings does not have; was it written by another run?`);
    state[key] = like.dtype === t.dtype ? t : new Tensor(like.dtype === "float64" ? Float64Array.from(t.data) : Float32Array.from(t.data), t.shape);
  }
  try {
    model.loadStateDict(state);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return model;
}

/** `count` batches of `size` training images taken in order from the start (Algorithm 2's population batches), as tensors. */
export function* batchesInOrder(images: Float32Array, imageCount: number, size: number, count: number): IterableIterator<Tensor> {
  for (let b = 0; b < count && (b + 1) * size <= imageCount; b++) {
    yield new Tensor(images.slice(b * size * INPUT, (b + 1) * size * INPUT), [size, INPUT]);
  }
}
