/**
 * The §4.1 networks as DataParallel replicas (`covshift figure1 --workers N`,
 * `covshift batchsize`): the same network, initial weights, SGD and loss as
 * Figure1Trainer builds for one process.
 */
import { nn, optim } from "../../index.js";
import type { Replica, ReplicaContext } from "../../parallel/index.js";
import { Generator } from "../../tensor/random.js";
import type { Figure1Config, NetworkKind } from "./config.js";
import { buildFigure1Network } from "./network.js";

export interface Figure1ReplicaOptions {
  config: Figure1Config;
  network: NetworkKind;
  seed: number;
}

export function createReplica({ options }: ReplicaContext<Figure1ReplicaOptions>): Replica {
  const { model } = buildFigure1Network(options.network, options.config, new Generator(options.seed));
  const loss = new nn.CrossEntropyLoss();
  return {
    model,
    loss: (output, target) => loss.forward(output, target),
    optimizer: (parameters) => new optim.SGD(parameters, { lr: options.config.lr, momentum: options.config.momentum }),
  };
}
