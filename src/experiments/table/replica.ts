/**
 * A table row's network as a DataParallel replica (`covshift table
 * --workers N`): the same network, initial weights, loss and SGD (momentum,
 * L2 weight decay) as TableTrainer builds for one process, and the same
 * stepwise learning-rate schedule, driven by the replica's own count of
 * optimizer steps (restored with the optimizer's state on resume).
 *
 * Dropout: each replica draws its own masks for its shard, from a generator
 * reseeded every step from (seed, rank, step) — so a resumed run draws what
 * an uninterrupted one does, and rows with Dropout match one worker in
 * distribution rather than bit for bit (rows without Dropout match within
 * float32 reduction order).
 */
import { nn, optim } from "../../index.js";
import type { Replica, ReplicaContext, ReplicaOptimizer } from "../../parallel/index.js";
import { Generator } from "../../tensor/random.js";
import type { DerivedRow, TableConfig } from "./rows.js";
import { buildRowNetwork, SEED_OFFSET } from "./trainer.js";

export interface TableReplicaOptions {
  config: TableConfig;
  row: DerivedRow;
}

export function createReplica({ rank, options }: ReplicaContext<TableReplicaOptions>): Replica {
  const { config, row } = options;
  const s = row.settings;
  const dropoutSeed = config.seed + SEED_OFFSET.dropout;
  const dropoutGenerator = new Generator(dropoutSeed);
  const model = buildRowNetwork(s, config, dropoutGenerator);
  const loss = new nn.CrossEntropyLoss();
  return {
    model,
    loss: (output, target) => loss.forward(output, target as Int32Array),
    optimizer: (parameters): ReplicaOptimizer => {
      const sgd = new optim.SGD(parameters, { lr: s.lr, momentum: s.momentum, weightDecay: s.weightDecay });
      // lr0 · decay^⌊steps / lrDecayEvery⌋, reached by the same ExponentialLR steps as TableTrainer's (the same bits).
      const schedule = new optim.ExponentialLR(sgd, { gamma: s.lrDecay });
      let steps = 0;
      return {
        zeroGrad: (o) => {
          // Called first in every step: this step's Dropout masks depend on (seed, rank, step) alone.
          dropoutGenerator.manualSeed((dropoutSeed * 1_000_003 + steps) * 64 + rank);
          sgd.zeroGrad(o);
        },
        step: () => {
          while (schedule.lastEpoch < Math.floor(steps / s.lrDecayEvery)) schedule.step();
          sgd.step();
          steps++;
        },
        stateDict: () => sgd.stateDict(),
        loadStateDict: (state: optim.SGDState) => {
          sgd.loadStateDict(state);
          steps = state.steps;
        },
      };
    },
  };
}
