/**
 * The experiments keep their models: figure1 and table write each trained
 * network to <out>/models/ as .safetensors (with the run's settings in the
 * metadata) and .onnx, the ONNX file runs in ONNX Runtime with the outputs
 * of the network loaded back from the safetensors, and `covshift export`
 * converts model files and checkpoints of unfinished runs (ONNX, folded or
 * not, and safetensors).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { loadSafetensors, noGrad, readSafetensors, Tensor } from "../../src/index.js";
import { defaultFigure1Config, type Figure1Config } from "../../src/experiments/figure1/config.js";
import { runFigure1 } from "../../src/experiments/figure1/run.js";
import { buildFigure1Network } from "../../src/experiments/figure1/network.js";
import { runTable } from "../../src/experiments/table/run.js";
import { defaultTableConfig, type TableConfig } from "../../src/experiments/table/rows.js";
import { loadTrainedNetwork } from "../../src/experiments/exportModel.js";
import { readCheckpoint } from "../../src/experiments/runner/checkpoint.js";
import { Generator } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { hashedInputs } from "./fixtureModels.js";
import { realData } from "../realData.js";

const MNIST = realData("mnist"); // figure1's networks are trained on ../shared/data/mnist
const CIFAR = realData("cifar10"); // table's on ../shared/data/cifar10
const F32 = { atol: 2e-5, rtol: 1e-4 };

async function onnxOutput(path: string, x: Tensor): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(path)));
  try {
    const r = await session.run({ input: new ort.Tensor("float32", Float32Array.from(x.data), [...x.shape]) });
    return r.output.data as Float32Array;
  } finally {
    await session.release();
  }
}

const covshift = (args: string[]) =>
  spawnSync(process.execPath, ["bin/covshift.js", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });

describe("figure1 keeps its networks", () => {
  it("each trained network lands in <out>/models as .safetensors (settings in the metadata) and .onnx, which runs in ONNX Runtime with the network's outputs; covshift export converts it and a checkpoint", { skip: MNIST.skip }, async () => {
    const out = mkdtempSync(join(tmpdir(), "covshift-models-"));
    const parted = mkdtempSync(join(tmpdir(), "covshift-models-"));
    try {
      const config: Figure1Config = { ...defaultFigure1Config, steps: 20, evalEvery: 10, seeds: 1, populationBatches: 2, backend: "reference" };
      const limits = { train: 300, test: 60 };
      const outcome = await runFigure1({ config, dataDir: MNIST.dir, outDir: out, jobs: 2, limits });
      assert.equal(outcome.status, "complete");
      assert.deepEqual(readdirSync(join(out, "models")).sort(), [
        "baseline-seed0.onnx", "baseline-seed0.safetensors", "batchnorm-seed0.onnx", "batchnorm-seed0.safetensors",
      ]);
      const x = hashedInputs([4, 784], 3);
      for (const network of ["baseline", "batchnorm"] as const) {
        const base = join(out, "models", `${network}-seed0`);
        const { tensors, metadata } = readSafetensors(new Uint8Array(readFileSync(`${base}.safetensors`)));
        const settings = JSON.parse(metadata.settings);
        assert.equal(settings.network, network);
        assert.equal(settings.steps, 20);
        assert.equal(settings.step, 20);
        const model = buildFigure1Network(network, config, new Generator(9)).model;
        model.loadStateDict(tensors);
        model.eval();
        if (network === "batchnorm") assert.equal(tensors["1.num_batches_tracked"].item(), 20);
        const expected = noGrad(() => model.forward(x));
        assertAllClose(await onnxOutput(`${base}.onnx`, x), expected, F32, `${network} .onnx vs its .safetensors`);
      }

      // covshift export of a model file: ONNX with BN folded, and back to safetensors
      const bnFile = join(out, "models", "batchnorm-seed0.safetensors");
      const r1 = covshift(["export", bnFile, "--format", "onnx", "--fold-bn"]);
      assert.equal(r1.status, 0, r1.stderr);
      assert.match(r1.stdout, /batchnorm-seed0-folded\.onnx/);
      const expected = noGrad(() => loadTrainedNetwork(bnFile).model.eval().forward(x));
      assertAllClose(await onnxOutput(join(out, "models", "batchnorm-seed0-folded.onnx"), x), expected, F32, "exported, folded");

      // a checkpoint of an unfinished run
      const stopFlag = new SharedArrayBuffer(4);
      const stopped = await runFigure1({
        config, dataDir: MNIST.dir, outDir: parted, jobs: 2, limits, stopFlag,
        onEvent: (e) => {
          if (e.message.type === "eval") Atomics.store(new Int32Array(stopFlag), 0, 1);
        },
      });
      assert.equal(stopped.status, "interrupted");
      const checkpoint = join(parted, "checkpoints", "batchnorm-seed0.safetensors");
      const saved = readCheckpoint(checkpoint);
      const target = join(parted, "exported.safetensors");
      const r2 = covshift(["export", checkpoint, "--format", "safetensors", "--output", target]);
      assert.equal(r2.status, 0, r2.stderr);
      const exported = loadSafetensors(new Uint8Array(readFileSync(target)));
      const modelKeys = Object.keys(saved.tensors).filter((k) => k.startsWith("model."));
      assert.deepEqual(Object.keys(exported).sort(), modelKeys.map((k) => k.slice("model.".length)).sort());
      for (const k of modelKeys) assert.deepEqual([...exported[k.slice("model.".length)].data], [...saved.tensors[k].data], k);
      const r3 = covshift(["export", checkpoint, "--format", "onnx"]);
      assert.equal(r3.status, 0, r3.stderr);
      assert.ok(existsSync(join(parted, "checkpoints", "batchnorm-seed0.onnx")));

      // errors: what cannot be exported says why, without a stack trace
      const bad = covshift(["export", join(out, "figure1.json"), "--format", "onnx"]);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /^covshift: export: .*figure1\.json is neither a model file .* nor a checkpoint/);
      const noFormat = covshift(["export", bnFile]);
      assert.equal(noFormat.status, 1);
      assert.match(noFormat.stderr, /--format/);
    } finally {
      rmSync(out, { recursive: true, force: true });
      rmSync(parted, { recursive: true, force: true });
    }
  });
});

describe("table keeps its networks", () => {
  it("a finished row lands in <out>/models as .safetensors and .onnx (BN-Inception, CIFAR crops), and they agree in ONNX Runtime; export reads a row's checkpoint", { skip: CIFAR.skip }, async () => {
    const out = mkdtempSync(join(tmpdir(), "covshift-models-"));
    try {
      const config: TableConfig = { ...defaultTableConfig, width: 1 / 32, batchSize: 16, crop: 20, steps: 4, evalEvery: 2, lrDecayEvery: 5 };
      const outcome = await runTable({ config, rows: ["bn-x5"], dataDir: CIFAR.dir, jobs: 1, limits: { train: 64, validation: 16, test: 16 }, outDir: out });
      assert.equal(outcome.status, "complete");
      const base = join(out, "models", "bn-x5");
      const file = `${base}.safetensors`;
      const { metadata } = readSafetensors(new Uint8Array(readFileSync(file)));
      assert.equal(JSON.parse(metadata.settings).row, "bn-x5");
      assert.equal(JSON.parse(metadata.input_shape).join(), "1,3,20,20");
      const network = loadTrainedNetwork(file);
      const x = hashedInputs([2, 3, 20, 20], 5, 2);
      const expected = noGrad(() => network.model.eval().forward(x));
      assertAllClose(await onnxOutput(`${base}.onnx`, x), expected, F32, "table row .onnx vs its .safetensors");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

