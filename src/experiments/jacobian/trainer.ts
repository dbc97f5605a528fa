/**
 * One network of `covshift jacobian`: Figure 1's trainer (same seed, same
 * batches) with the layer Jacobians measured at every evaluation, and its
 * checkpoint state — Figure 1's plus `jacobian: { run, lossSum, lossCount }`,
 * every field of which is checked on restore (errors name the file and the
 * field). No Node API and no worker here: job.ts runs it in the experiment
 * runner's worker; tests and the fuzzer drive it directly.
 */
import type { NetworkKind } from "../figure1/config.js";
import { Figure1Trainer, type ImageSet } from "../figure1/trainer.js";
import { CheckpointFields, type CheckpointContents } from "../runner/checkpointState.js";
import type { JobTrainer } from "../runner/worker.js";
import { JacobianConfig, trainingConfig } from "./config.js";
import { measureJacobians } from "./jacobian.js";
import { emptyRun, recordMeasurement, runFromCheckpoint, type JacobianRun } from "./result.js";

export class JacobianTrainer implements JobTrainer {
  readonly trainer: Figure1Trainer;
  /** The run's measurements (and the runner's timings) so far: the job's result. */
  readonly run: JacobianRun & { trainSeconds: number };
  private readonly probe: Float32Array;
  private lossSum = 0;
  private lossCount = 0;

  constructor(
    readonly network: NetworkKind,
    readonly config: JacobianConfig,
    train: ImageSet,
    test: ImageSet,
  ) {
    this.trainer = new Figure1Trainer(network, config.seed, trainingConfig(config), train, test);
    this.run = { ...emptyRun(network, config), trainSeconds: 0 };
    this.probe = test.images.subarray(0, config.images * 784);
  }

  get step(): number {
    return this.trainer.step;
  }

  get done(): boolean {
    return this.trainer.done;
  }

  trainStep(): number {
    const loss = this.trainer.trainStep();
    this.lossSum += loss;
    this.lossCount++;
    return loss;
  }

  record(): { accuracy: number; loss: number } {
    const { accuracy } = this.trainer.evaluate();
    const t0 = performance.now();
    const m = measureJacobians(this.trainer.model, this.probe, this.config.images);
    this.run.jacobianSeconds += (performance.now() - t0) / 1000;
    recordMeasurement(this.run, this.trainer.step, accuracy, m);
    const shown = { accuracy, loss: this.lossSum / this.lossCount };
    this.lossSum = 0;
    this.lossCount = 0;
    return shown;
  }

  checkpoint(): CheckpointContents {
    const saved = this.trainer.checkpoint();
    saved.state.jacobian = { run: structuredClone(this.run), lossSum: this.lossSum, lossCount: this.lossCount };
    return saved;
  }

  /**
   * Continue from a checkpoint. Figure 1's trainer checks its own fields
   * (its measurement series stay empty here: record() above takes the
   * measurements); every series of the run is checked — one entry per
   * measurement so far, finite, singular values ordered — and nothing is
   * taken unread. Nothing changes unless every field passes.
   */
  restore(saved: CheckpointContents, path = "(checkpoint)"): void {
    const c = this.config;
    const all = new CheckpointFields(path, saved.state);
    const step = all.int("step", 0, c.steps);
    const f = all.object("jacobian");
    const run = runFromCheckpoint(f.object("run"), this.network, c, Math.floor(step / c.every));
    const lossSum = f.num("lossSum", 0);
    const lossCount = f.int("lossCount", 0, Math.min(c.every, step));
    this.trainer.restore(saved, path, { evaluations: 0 }); // checks the rest before it changes anything
    Object.assign(this.run, run);
    this.lossSum = lossSum;
    this.lossCount = lossCount;
  }
}
