/**
 * `covshift jacobian`'s job module: one network in a worker thread of the
 * experiment runner (see runner/runner.ts, which owns the loop, checkpoints
 * and files); the trainer and its checkpoint state are in trainer.ts.
 */
import type { NetworkKind } from "../figure1/config.js";
import type { ImageSet } from "../figure1/trainer.js";
import { runJobInWorker } from "../runner/worker.js";
import type { JacobianConfig } from "./config.js";
import { JacobianTrainer } from "./trainer.js";

export interface JacobianJobPayload {
  config: JacobianConfig;
  network: NetworkKind;
  train: ImageSet;
  test: ImageSet;
}

runJobInWorker<JacobianJobPayload>(({ payload: p }) => {
  const trainer = new JacobianTrainer(p.network, p.config, p.train, p.test);
  return {
    trainer,
    result: trainer.run,
    divergenceAdvice: `Lower --lr (now ${p.config.lr}).`,
    finish: () => {},
  };
});
