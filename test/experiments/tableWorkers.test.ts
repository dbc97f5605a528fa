import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { decodeCheckpoint, encodeCheckpoint } from "../../src/experiments/runner/checkpoint.js";
import { startTableGroup } from "../../src/experiments/table/group.js";
import { defaultTableConfig, deriveRow, type RowId, type TableConfig } from "../../src/experiments/table/rows.js";
import { TableTrainer, type TableData } from "../../src/experiments/table/trainer.js";
import { assertRefused, syntheticTableData, tempDir } from "./helpers.js";

// Small crops keep this quick; lr decay every step (BN-x5: ⌊2/6⌉ → 1) exercises the replicas' schedule.
const tiny: TableConfig = { ...defaultTableConfig, width: 1 / 32, batchSize: 8, crop: 20, steps: 8, evalEvery: 3, lrDecayEvery: 2, backend: "reference" };

/** Train `trainer` to step `until`, measuring every evalEvery steps; the per-step losses. */
function train(trainer: TableTrainer, until: number): number[] {
  const losses: number[] = [];
  while (trainer.step < until && !trainer.done) {
    losses.push(trainer.trainStep());
    if (trainer.step % tiny.evalEvery === 0 || trainer.done) trainer.record();
  }
  return losses;
}

async function withTrainer<T>(id: RowId, config: TableConfig, data: TableData, fn: (t: TableTrainer) => Promise<T> | T): Promise<T> {
  const row = deriveRow(id, config);
  const parallel = await startTableGroup(config, row);
  try {
    return await fn(new TableTrainer(row, config, data, { parallel: parallel ?? undefined }));
  } finally {
    await parallel?.close();
  }
}

describe("table --workers", () => {
  it("2 workers with SyncBN give one worker's losses, learning rates and validation accuracy for rows without Dropout (within 1e-4 relative)", async () => {
    const data = syntheticTableData();
    // A small rate (BN-x5: 5 × 0.001): at the default 5 × 0.01 on random labels the trajectory is chaotic and float32
    // reduction-order differences of 1e-7 grow ~100× per step after step 5; at this rate they stay below 1e-6 for all 8 steps.
    const config = { ...tiny, lr: 0.001 };
    for (const id of ["bn-x5", "bn-x5-sigmoid"] as const) {
      const one = await withTrainer(id, config, data, (t) => ({ losses: train(t, config.steps), result: t.result }));
      const two = await withTrainer(id, { ...config, workers: 2 }, data, (t) => ({ losses: train(t, config.steps), result: t.result }));
      // Float32 kernels on shards of 4 instead of one batch of 8 (gradients all-reduced in float64): reduction order only.
      const d = Math.max(...one.losses.map((v, i) => Math.abs(two.losses[i] - v) / Math.abs(v)));
      assert.ok(d < 1e-4, `${id}: max relative loss difference ${d} (${two.losses} vs ${one.losses})`);
      assert.deepEqual(two.result.learningRate, one.result.learningRate, `${id}: the replicas follow the schedule`);
      assert.deepEqual(two.result.validationAccuracy, one.result.validationAccuracy, `${id}: validation accuracy`);
    }
  });

  it("a 2-worker row checkpointed mid-run and restored into a new group continues bit-identically, Dropout masks included", async () => {
    const data = syntheticTableData();
    const config = { ...tiny, workers: 2 };
    for (const id of ["inception", "bn-x5"] as const) {
      const whole = await withTrainer(id, config, data, (t) => {
        train(t, config.steps);
        t.finish();
        return { result: t.result, state: t.model.stateDict() };
      });
      const saved = await withTrainer(id, config, data, async (t) => {
        train(t, 5);
        return decodeCheckpoint(encodeCheckpoint({ command: "table", run: "x", backend: "reference" }, await t.checkpointAsync()), "(in memory)");
      });
      const second = await withTrainer(id, config, data, async (t) => {
        await t.restoreAsync(saved);
        train(t, config.steps);
        t.finish();
        return { result: t.result, state: t.model.stateDict() };
      });
      assert.deepEqual(second.result, whole.result, `${id}: measurements`);
      for (const k of Object.keys(whole.state)) assert.deepEqual(Array.from(second.state[k].data), Array.from(whole.state[k].data), `${id}: ${k}`);
    }
  });

  it("--workers and --no-sync-bn are checked before any work, naming the option, the value and what it accepts", () => {
    const out = tempDir();
    try {
      assertRefused("table", ["--data", out, "--no-download", "--out", join(out, "o")], [
        [["--workers", "0"], /table: --workers must be a whole number ≥ 1 \(data-parallel workers per run\); got 0/],
        [["--workers", "3"], /table: --workers 3 does not divide --batch-size 64.*use a divisor of 64 \(1, 2, 4, 8, 16, …\)/],
        [["--no-sync-bn"], /table: --no-sync-bn needs --workers ≥ 2 .*got --workers 1/],
      ]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
