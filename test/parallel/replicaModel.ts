/**
 * The replica module of the DataParallel tests: a small BN network (an MLP,
 * or a conv net with BatchNorm2d), seeded, trained by SGD on cross-entropy.
 */
import { nn, optim, Tensor } from "../../src/index.js";
import { Generator } from "../../src/tensor/random.js";
import type { ReplicaContext, Replica } from "../../src/parallel/index.js";

export interface TestReplicaOptions {
  seed: number;
  kind: "mlp" | "conv";
  lr: number;
  momentum: number;
  /** A failure to test error reporting: throw in the factory, or in forward on this rank. */
  failIn?: "factory" | { forwardOnRank: number };
}

export function buildTestModel(o: TestReplicaOptions, extra: nn.Module[] = []): nn.Sequential {
  const g = new Generator(o.seed);
  if (o.kind === "mlp") {
    return new nn.Sequential(
      ...extra,
      new nn.Linear(6, 8, { bias: false, generator: g }),
      new nn.BatchNorm1d(8),
      new nn.ReLU(),
      new nn.Linear(8, 5, { bias: false, generator: g }),
      new nn.BatchNorm1d(5),
      new nn.Tanh(),
      new nn.Linear(5, 3, { generator: g }),
    );
  }
  return new nn.Sequential(
    ...extra,
    new nn.Conv2d(2, 3, 3, { padding: 1, bias: false, generator: g }),
    new nn.BatchNorm2d(3),
    new nn.ReLU(),
    new nn.Flatten(),
    new nn.Linear(48, 3, { generator: g }),
  );
}

class Boom extends nn.Module {
  constructor(private readonly rank: number, private readonly failRank: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    if (this.rank === this.failRank) throw new Error("boom in forward");
    return x;
  }
}

export function createReplica({ rank, options }: ReplicaContext<TestReplicaOptions>): Replica {
  if (options.failIn === "factory" && rank >= 0) throw new Error("the factory was told to fail");
  const model = buildTestModel(options, typeof options.failIn === "object" ? [new Boom(rank, options.failIn.forwardOnRank)] : []);
  const loss = new nn.CrossEntropyLoss();
  return {
    model,
    loss: (output, target) => loss.forward(output, target),
    optimizer: (parameters) => new optim.SGD(parameters, { lr: options.lr, momentum: options.momentum }),
  };
}
