/**
 * ONNX export, checked by the real consumer: every exported model runs in
 * ONNX Runtime (onnxruntime-node) and gives covshift's eval-mode outputs at
 * float32 tolerance — the §4.1 MLP with BN and the table's BN-Inception and
 * baseline Inception (LRN, Dropout), with and without folding BN; a model of
 * every other layer (Tanh, even-size LRN, average pooling both ways, adaptive
 * pooling, Reshape-style Flatten); several opsets; a dynamic and a fixed
 * batch. ONNX's own checker passed the same exports in the fixture script
 * (see pytorch.test.ts). Unexportable modules get errors that name them.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import protobuf from "protobufjs/light.js";
import { exportOnnx, Generator, nn, noGrad, Tensor } from "../../src/index.js";
import { onnxSchema } from "../../src/interop/onnx/schema.js";
import { assertAllClose } from "../allclose.js";
import { baselineInceptionForExport, bnInceptionForExport, covshiftMlpForPyTorch, fillDeterministic, hashedInputs } from "./fixtureModels.js";

/** float32 tolerance: both sides compute in float32, summing in different orders. */
const F32 = { atol: 2e-5, rtol: 1e-4 };

const ModelProto = protobuf.Root.fromJSON(onnxSchema as unknown as protobuf.INamespace).lookupType("onnx.ModelProto");
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const decode = (bytes: Uint8Array): any => ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, defaults: false });

async function runOnnx(bytes: Uint8Array, x: Tensor): Promise<{ dims: readonly number[]; data: Float32Array }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    assert.deepEqual([session.inputNames, session.outputNames], [["input"], ["output"]]);
    const result = await session.run({ input: new ort.Tensor("float32", Float32Array.from(x.data), [...x.shape]) });
    return { dims: result.output.dims, data: result.output.data as Float32Array };
  } finally {
    await session.release();
  }
}

async function assertSameAsCovshift(model: nn.Module, bytes: Uint8Array, x: Tensor, what: string): Promise<void> {
  const expected = noGrad(() => model.forward(x));
  const got = await runOnnx(bytes, x);
  assert.deepEqual(got.dims, expected.shape, `${what}: output shape`);
  assertAllClose(got.data, expected, F32, what);
}

const opsOf = (bytes: Uint8Array): string[] => decode(bytes).graph.node.map((n: { op_type: string }) => n.op_type);
const count = (ops: string[], op: string) => ops.filter((o) => o === op).length;

describe("ONNX export runs in ONNX Runtime with covshift's outputs", () => {
  const cases = [
    { name: "the §4.1 MLP with BN", build: covshiftMlpForPyTorch, inputShape: [1, 784], batch: 5 },
    { name: "the table's BN-Inception", build: bnInceptionForExport, inputShape: [1, 3, 28, 28], batch: 2 },
    { name: "the table's baseline Inception (LRN, Dropout, no BN)", build: baselineInceptionForExport, inputShape: [1, 3, 28, 28], batch: 2 },
  ];
  for (const { name, build, inputShape, batch } of cases) {
    for (const foldBatchNorm of [false, true]) {
      it(`${name}, ${foldBatchNorm ? "BN folded into the layers before it" : "BN as BatchNormalization"}: outputs within float32 tolerance on a batch of ${batch} (dynamic batch)`, async () => {
        const model = build();
        const bytes = exportOnnx(model, { inputShape, opset: 17, foldBatchNorm });
        const ops = opsOf(bytes);
        const bn = [...model.modules()].filter((m) => m instanceof nn.BatchNormBase).length;
        assert.equal(count(ops, "BatchNormalization"), foldBatchNorm ? 0 : bn, "BatchNormalization nodes");
        if (name.includes("baseline")) assert.equal(count(ops, "LRN"), 1);
        assert.ok(!ops.includes("Dropout"), "Dropout is the identity at inference");
        const x = hashedInputs([batch, ...inputShape.slice(1)], 7, 2);
        await assertSameAsCovshift(model, bytes, x, `${name}${foldBatchNorm ? " (folded)" : ""}`);
      });
    }
  }

  it("the export does not change the model (a training-mode model is exported in inference mode, and stays in training mode)", async () => {
    const model = covshiftMlpForPyTorch().train();
    const before = model.stateDict();
    const bytes = exportOnnx(model, { inputShape: [1, 784] });
    assert.ok(model.training);
    for (const [k, t] of Object.entries(model.stateDict())) assert.deepEqual([...t.data], [...before[k].data], k);
    await assertSameAsCovshift(model.eval(), bytes, hashedInputs([3, 784]), "exported from training mode");
  });

  it("every other layer: Tanh, Sigmoid, LRN of even size (written out as sums), AvgPool2d with and without padded zeros, AdaptiveAvgPool2d(2), MaxPool2d with padding, Flatten to 3-d (Reshape), BatchNorm1d on (N, C, L), Identity", async () => {
    const g = new Generator(11);
    const model = new nn.Sequential(
      new nn.Conv2d(3, 6, 3, { padding: 1, generator: g }),
      new nn.LocalResponseNorm(4, { alpha: 0.5, beta: 0.6, k: 1.5 }),
      new nn.Tanh(),
      new nn.AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: true }),
      new nn.AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: false }),
      new nn.MaxPool2d(3, { stride: 2, padding: 1 }),
      new nn.AdaptiveAvgPool2d(2),
      new nn.Flatten(2),
      new nn.BatchNorm1d(6),
      new nn.Sigmoid(),
      new nn.Identity(),
      new nn.Flatten(),
      new nn.Linear(24, 3, { generator: g }),
    );
    fillDeterministic(model, new Generator(12));
    model.eval();
    const bytes = exportOnnx(model, { inputShape: [1, 3, 8, 8] });
    const ops = opsOf(bytes);
    for (const op of ["Tanh", "AveragePool", "MaxPool", "Reshape", "Flatten", "BatchNormalization", "Pow", "Gemm"]) assert.ok(ops.includes(op), op);
    assert.ok(!ops.includes("LRN"), "ONNX's LRN window differs from PyTorch's for even sizes");
    await assertSameAsCovshift(model, bytes, hashedInputs([3, 3, 8, 8], 0, 3), "every layer");
  });

  it("LRN of odd size exports as ONNX's LRN with PyTorch's α, β, k", async () => {
    const model = new nn.Sequential(new nn.LocalResponseNorm(3, { alpha: 0.3, beta: 0.9, k: 2 }));
    const bytes = exportOnnx(model, { inputShape: [1, 7, 3, 3] });
    assert.deepEqual(opsOf(bytes), ["LRN"]);
    await assertSameAsCovshift(model, bytes, hashedInputs([2, 7, 3, 3], 3, 4), "LRN size 3");
  });

  for (const opset of [13, 15, 19, 21]) {
    it(`opset ${opset} runs too, with the matching IR version`, async () => {
      const model = bnInceptionForExport();
      const bytes = exportOnnx(model, { inputShape: [1, 3, 28, 28], opset });
      const proto = decode(bytes);
      assert.equal(proto.opset_import[0].version, opset);
      assert.equal(proto.ir_version, { 13: 7, 15: 8, 19: 9, 21: 10 }[opset]);
      await assertSameAsCovshift(model, bytes, hashedInputs([1, 3, 28, 28]), `opset ${opset}`);
    });
  }

  it("the graph: input 'input' and output 'output' with a named batch dimension, initializers under the state-dict keys, metadata kept; dynamicBatch: false fixes the batch", async () => {
    const model = covshiftMlpForPyTorch();
    const proto = decode(exportOnnx(model, { inputShape: [1, 784], metadata: { steps: "50000" }, docString: "figure1" }));
    assert.equal(proto.producer_name, "covshift");
    assert.equal(proto.graph.doc_string, "figure1");
    assert.deepEqual(proto.metadata_props, [{ key: "steps", value: "50000" }]);
    assert.deepEqual(proto.graph.input[0].type.tensor_type.shape.dim, [{ dim_param: "batch" }, { dim_value: 784 }]);
    assert.deepEqual(proto.graph.output[0].type.tensor_type.shape.dim, [{ dim_param: "batch" }, { dim_value: 10 }]);
    const names = proto.graph.initializer.map((t: { name: string }) => t.name);
    assert.deepEqual(names.slice(0, 5), ["0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var"]);

    const fixed = exportOnnx(model, { inputShape: [2, 784], dynamicBatch: false });
    assert.deepEqual(decode(fixed).graph.input[0].type.tensor_type.shape.dim, [{ dim_value: 2 }, { dim_value: 784 }]);
    await assertSameAsCovshift(model, fixed, hashedInputs([2, 784]), "fixed batch");
    await assert.rejects(runOnnx(fixed, hashedInputs([3, 784])), /dim|shape|Got invalid dimensions/i);
  });

  it("a model of Identity alone still maps 'input' to 'output'", async () => {
    const bytes = exportOnnx(new nn.Sequential(new nn.Identity()), { inputShape: [1, 4] });
    assert.deepEqual(opsOf(bytes), ["Identity"]);
    const x = hashedInputs([2, 4]);
    assert.deepEqual([...(await runOnnx(bytes, x)).data], [...x.data]);
  });
});

describe("ONNX export: what cannot be exported is named", () => {
  class Doubler extends nn.Module {
    forward(x: Tensor): Tensor {
      return x;
    }
  }
  class MyReLU extends nn.ReLU {}

  it("an unknown module, and a subclass of a known one, by class and path", () => {
    const model = new nn.Sequential(new nn.Linear(2, 2), new nn.Sequential(new nn.ReLU(), new Doubler()));
    assert.throws(() => exportOnnx(model, { inputShape: [1, 2] }), /exportOnnx: cannot export Doubler '1\.1': ONNX export knows the layers Sequential, Concat, Linear/);
    assert.throws(() => exportOnnx(new nn.Sequential(new MyReLU()), { inputShape: [1, 2] }), /cannot export MyReLU '0'.*exact class/);
  });

  it("a BN without running statistics, by class and path", () => {
    const model = new nn.Sequential(new nn.Linear(3, 4), new nn.BatchNorm1d(4, { trackRunningStats: false }));
    assert.throws(() => exportOnnx(model, { inputShape: [2, 3] }), /cannot export BatchNorm1d '1': it has no running statistics/);
    assert.throws(() => exportOnnx(model, { inputShape: [2, 3], foldBatchNorm: true }), /cannot export BatchNorm1d '1'/);
  });

  it("adaptive pooling whose windows would differ in size", () => {
    const model = new nn.Sequential(new nn.AdaptiveAvgPool2d(3));
    assert.throws(() => exportOnnx(model, { inputShape: [1, 1, 4, 4] }), /cannot export AdaptiveAvgPool2d '0': pooling 4×4 down to 3×3/);
  });

  it("bad options and an input the model does not take", () => {
    const model = covshiftMlpForPyTorch();
    assert.throws(() => exportOnnx(model, { inputShape: [] }), /inputShape must list the input's dimensions as positive integers/);
    assert.throws(() => exportOnnx(model, { inputShape: [1, 784], opset: 9 }), /opset must be an integer from 13 to 21 .*; got 9/);
    assert.throws(() => exportOnnx(model, { inputShape: [1, 785] }), /exportOnnx: the model does not run on an input of shape \[1, 785\]: linear: expected input of shape \[N, 784\]/);
  });
});
