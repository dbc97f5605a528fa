/**
 * Figure 1's job module: one (network, seed) run of the §4.1 networks in a
 * worker thread of the experiment runner (see runner/runner.ts, which owns
 * the loop, checkpoints and files); this only builds the trainer and
 * finishes the run, leaving the trained network in <modelPath>.safetensors
 * (and .onnx). With config.workers > 1 the run trains through a
 * DataParallel group of that many worker threads started from here
 * (figure1/replica.ts builds their replicas), closed on every way out.
 * `covshift adabn` and `covshift batchsize` train their networks with it
 * too (batchsize's variants through config.norm and config.workers).
 */
import { jobTrainer, runJobInWorker } from "../runner/worker.js";
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
  /** The trained network goes to <modelPath>.safetensors and (unless config.norm, which ONNX's BatchNormalization does not cover) .onnx. */
  modelPath: string;
  /** What the model file says the network is (default "figure1 <network> network, seed <seed>"). */
  title?: string;
}

runJobInWorker<Figure1JobPayload>(async ({ payload: p }) => {
  const parallel = await startFigure1Group(p.config, p.network, p.seed);
  const trainer = new Figure1Trainer(p.network, p.seed, p.config, p.train, p.test, { parallel: parallel ?? undefined });
  const r = trainer.result;
  return {
    trainer: jobTrainer(trainer, () => {
      trainer.record();
      return { accuracy: r.testAccuracy.at(-1)!, loss: r.trainLoss.at(-1)! };
    }),
    result: r,
    divergenceAdvice: `Lower --lr (now ${p.config.lr}).`,
    finish: () => {
      if (p.network === "batchnorm") r.finalTestAccuracyPopulation = trainer.populationAccuracy();
      writeModelFiles(
        trainer.model,
        p.modelPath,
        [1, 784],
        `${p.title ?? `figure1 ${p.network} network, seed ${p.seed}`}, after ${trainer.step} steps (§4.1: 784 → ${p.config.hidden.join(" → ")} sigmoid → 10 logits; input: MNIST pixels ${p.config.input})`,
        { ...p.config, network: p.network, seed: p.seed, step: trainer.step },
        { onnx: p.config.norm === undefined },
      );
      return { result: r };
    },
    close: async () => {
      await parallel?.close();
    },
  };
});
