/**
 * Figure 1's job module: one (network, seed) run in a worker thread of the
 * experiment runner (see runner/runner.ts, which owns the loop, checkpoints
 * and files); this only builds the trainer and finishes the run. With
 * config.workers > 1 the run trains through a DataParallel group of that
 * many worker threads started from here (figure1/replica.ts builds their
 * replicas), closed on every way out.
 */
import { runJobInWorker } from "../runner/worker.js";
import { writeModelFiles } from "../modelFiles.js";
import type { Figure1Config, NetworkKind } from "./config.js";
import { startFigure1Group } from "./group.js";
import { Figure1Trainer, type ImageSet } from "./trainer.js";

export interface Figure1JobPayload {
  config: Figure1Config;
  network: NetworkKind;
  seed: number;
  /** The data, loaded once by the main thread, in shared memory. */
  train: ImageSet;
  test: ImageSet;
  /** The trained network goes to <modelPath>.safetensors and .onnx. */
  modelPath: string;
}

runJobInWorker<Figure1JobPayload>(async ({ payload: p }) => {
  const parallel = await startFigure1Group(p.config, p.network, p.seed);
  const trainer = new Figure1Trainer(p.network, p.seed, p.config, p.train, p.test, { parallel: parallel ?? undefined });
  const r = trainer.result;
  return {
    trainer: {
      get step() {
        return trainer.step;
      },
      get done() {
        return trainer.done;
      },
      trainStep: () => trainer.trainStep(),
      record: () => {
        trainer.record();
        return { accuracy: r.testAccuracy.at(-1)!, loss: r.trainLoss.at(-1)! };
      },
      checkpoint: () => trainer.checkpointAsync(),
      restore: (c, path) => trainer.restoreAsync(c, path),
    },
    result: r,
    divergenceAdvice: `Lower --lr (now ${p.config.lr}).`,
    finish: () => {
      if (p.network === "batchnorm") r.finalTestAccuracyPopulation = trainer.populationAccuracy();
      writeModelFiles(
        trainer.model,
        p.modelPath,
        [1, 784],
        `figure1 ${p.network} network, seed ${p.seed}, after ${trainer.step} steps (§4.1: 784 → ${p.config.hidden.join(" → ")} sigmoid → 10 logits; input: MNIST pixels ${p.config.input})`,
        { ...p.config, network: p.network, seed: p.seed, step: trainer.step },
      );
      return { result: r };
    },
    close: async () => {
      await parallel?.close();
    },
  };
});
