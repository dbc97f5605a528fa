/**
 * The models and inputs the interop tests share with the dev-only fixture
 * script (tools/torch/make_interop_fixtures.py, through
 * tools/torch/write_covshift_interop_models.mjs): every value is fixed by a
 * formula or a seeded covshift Generator, so the bytes are the same on every
 * backend and machine.
 */
import { Generator, nn, saveSafetensors, Tensor } from "../../src/index.js";
import { defaultFigure1Config } from "../../src/experiments/figure1/config.js";
import { buildFigure1Network } from "../../src/experiments/figure1/network.js";
import { buildInception } from "../../src/experiments/table/inception.js";

/**
 * Inputs both sides compute the same way, exactly: element i is
 * ((i + offset)·2654435761 mod 2^32) / 2^32 rounded to float32 (a
 * multiplicative hash, in [0, 1) like MNIST's scaled pixels), times `scale`.
 */
export function hashedInputs(shape: number[], offset = 0, scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (((i + offset) * 2654435761) % 4294967296) / 4294967296 * scale;
  return new Tensor(data, shape);
}

/** The §4.1 network with BN (figure1's "batchnorm" network: 784 → 3 × (Linear without bias, BN, sigmoid) → 10). */
export function figure1BnNetwork(): nn.Sequential {
  return buildFigure1Network("batchnorm", defaultFigure1Config, new Generator(0)).model;
}

/**
 * The §4.1 BN network with every parameter and buffer set from a seeded
 * Generator at scales where every layer matters (weights U(±1/sqrt(fan_in))
 * rather than figure1's N(0, 0.01²), γ in [0.5, 1.5], β in [−0.5, 0.5],
 * running means in [−0.3, 0.3], variances in [0.5, 2]) and the batch counter
 * at 1234: the model whose safetensors bytes PyTorch loads in the fixture
 * script.
 */
export function covshiftMlpForPyTorch(): nn.Sequential {
  const model = figure1BnNetwork();
  fillDeterministic(model, new Generator(2015));
  return model.eval();
}

/** Give every parameter and buffer of `model` well-scaled deterministic values (see covshiftMlpForPyTorch), module by module. */
export function fillDeterministic(model: nn.Module, g: Generator): void {
  const fill = (t: Tensor | null, lo: number, hi: number) => {
    if (t !== null) for (let i = 0; i < t.size; i++) t.data[i] = lo + (hi - lo) * g.uniform();
  };
  for (const m of model.modules()) {
    if (m instanceof nn.BatchNormBase) {
      fill(m.weight, 0.5, 1.5);
      fill(m.bias, -0.5, 0.5);
      fill(m.runningMean, -0.3, 0.3);
      fill(m.runningVar, 0.5, 2);
      const counter = m.namedBuffers().find(([name]) => name === "num_batches_tracked")![1];
      counter.data[0] = 1234;
    } else if (m instanceof nn.Linear || m instanceof nn.Conv2d) {
      const bound = 1 / Math.sqrt(m.weight.size / m.weight.shape[0]);
      fill(m.weight, -bound, bound);
      fill(m.bias, -0.2, 0.2);
    }
  }
}

/** The bytes the fixture script hands to PyTorch. */
export function covshiftMlpSafetensors(): Uint8Array {
  return saveSafetensors(covshiftMlpForPyTorch().stateDict(), { producer: "covshift", network: "figure1 batchnorm (fixture)" });
}

/** The table's BN-Inception (width 1/16, stem stride 2) with deterministic, well-scaled state, in eval mode. */
export function bnInceptionForExport(): nn.Sequential {
  const model = buildInception({ bn: true, generator: new Generator(3) });
  fillDeterministic(model, new Generator(4));
  return model.eval();
}

/** The table's baseline Inception (LRN after the stem, Dropout 0.4, biases, no BN), deterministic, in eval mode. */
export function baselineInceptionForExport(): nn.Sequential {
  const model = buildInception({ bn: false, lrn: true, dropout: 0.4, generator: new Generator(5) });
  fillDeterministic(model, new Generator(6));
  return model.eval();
}
