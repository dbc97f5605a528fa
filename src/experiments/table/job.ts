/**
 * The table's job module: one row in a worker thread of the experiment
 * runner (see runner/runner.ts, which owns the loop, checkpoints and files);
 * this only builds the trainer and finishes the row (test accuracy, the
 * softmax outputs for ensembles, the model files).
 */
import { writeFileAtomic } from "../../io/files.js";
import { writeModelFiles } from "../modelFiles.js";
import { jobTrainer, runJobInWorker } from "../runner/worker.js";
import type { DerivedRow, TableConfig } from "./rows.js";
import { startTableGroup } from "./group.js";
import { encodeRowOutputs, TableTrainer, type TableData } from "./trainer.js";

export interface TableJobPayload {
  config: TableConfig;
  row: DerivedRow;
  /** The data, loaded once by the main thread, in shared memory. */
  data: TableData;
  /** Where the final network's softmax outputs go (see encodeRowOutputs); written before the result. */
  outputsPath: string;
  /** The trained network goes to <modelPath>.safetensors and .onnx. */
  modelPath: string;
  /** An ensemble member's seed (config.seed is then this seed); absent for the table's own rows. */
  memberSeed?: number;
}

runJobInWorker<TableJobPayload>(async ({ payload: p }) => {
  // --workers N: the row trains through a DataParallel group of N threads started here (table/group.ts), closed on every way out.
  const parallel = await startTableGroup(p.config, p.row);
  const trainer = new TableTrainer(p.row, p.config, p.data, { parallel: parallel ?? undefined });
  const r = trainer.result;
  return {
    trainer: jobTrainer(trainer, () => {
      trainer.record();
      return { accuracy: r.validationAccuracy.at(-1)!, loss: r.trainLoss.at(-1)! };
    }),
    result: r,
    divergenceAdvice: `Lower its initial learning rate (${p.row.settings.lr}).`,
    finish: () => {
      const outputs = trainer.finish();
      writeFileAtomic(p.outputsPath, JSON.stringify(encodeRowOutputs(outputs)));
      writeModelFiles(
        trainer.model,
        p.modelPath,
        [1, 3, p.config.crop, p.config.crop],
        `table row ${p.row.id} after ${trainer.step} steps (miniature BN-Inception of §4.2; input: centered ${p.config.crop}×${p.config.crop} crops of CIFAR-10 pixels / 255, NCHW, each channel normalized by the mean and std in settings.inputStats)`,
        { ...p.config, row: p.row.id, settings: p.row.settings, step: trainer.step, inputStats: p.data.stats },
      );
      return { testAccuracy: r.testAccuracy! };
    },
    close: async () => {
      await parallel?.close();
    },
  };
});
