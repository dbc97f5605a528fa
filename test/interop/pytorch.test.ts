/**
 * PyTorch state dicts, both ways, on the committed fixtures of
 * tools/torch/make_interop_fixtures.py (PyTorch 1.13):
 * - PyTorch → covshift: the safetensors of `model.state_dict()` of PyTorch's
 *   §4.1 BN network (and of a small conv network with BatchNorm2d) loads
 *   strictly into covshift's network of the same architecture, and the
 *   eval-mode outputs match PyTorch's within 1e-5;
 * - covshift → PyTorch: PyTorch loaded the bytes covshift writes for its
 *   §4.1 BN network with `load_state_dict(strict=True)` (the test rebuilds
 *   the bytes and checks they are the ones PyTorch read, by SHA-256), and
 *   PyTorch's eval outputs match covshift's within 1e-5.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Generator, loadSafetensors, nn, noGrad, readSafetensors } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { covshiftMlpForPyTorch, covshiftMlpSafetensors, figure1BnNetwork, hashedInputs } from "./fixtureModels.js";

const fixturePath = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/interop/${name}`, import.meta.url));
const fixture = JSON.parse(readFileSync(fixturePath("interop.json"), "utf8"));
const TOLERANCE = { atol: 1e-5, rtol: 1e-5 };

/** covshift's version of the fixture script's convnet_bn(). */
function convnetBn(): nn.Sequential {
  const g = new Generator(0);
  return new nn.Sequential(
    new nn.Conv2d(3, 6, 3, { padding: 1, bias: false, generator: g }), new nn.BatchNorm2d(6), new nn.ReLU(), new nn.MaxPool2d(2),
    new nn.Conv2d(6, 4, 3, { stride: 2, padding: 1, bias: false, generator: g }), new nn.BatchNorm2d(4), new nn.ReLU(),
    new nn.Flatten(), new nn.Linear(16, 5, { generator: g }),
  );
}

describe("PyTorch → covshift", () => {
  it("PyTorch's safetensors of the §4.1 BN network has exactly covshift's keys, shapes and dtypes (num_batches_tracked as I64)", () => {
    const bytes = readFileSync(fixturePath("torch_mlp_bn.safetensors"));
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
    assert.deepEqual(header["1.num_batches_tracked"].dtype, "I64");
    const loaded = loadSafetensors(bytes);
    const own = figure1BnNetwork().stateDict();
    assert.deepEqual(Object.keys(loaded).sort(), Object.keys(own).sort());
    for (const [k, t] of Object.entries(own)) assert.deepEqual(loaded[k].shape, t.shape, k);
  });

  for (const [name, file, build] of [
    ["the §4.1 BN network (figure1's)", "torch_mlp_bn", figure1BnNetwork],
    ["a conv network with BatchNorm2d, MaxPool2d, stride and padding", "torch_convnet_bn", convnetBn],
  ] as const) {
    it(`${name}: PyTorch's state dict loads strictly and covshift's eval outputs match PyTorch's (≤ 1e-5)`, () => {
      const expected = fixture[file];
      const model = build();
      const { missingKeys, unexpectedKeys } = model.loadStateDict(loadSafetensors(readFileSync(fixturePath(`${file}.safetensors`))));
      assert.deepEqual([missingKeys, unexpectedKeys], [[], []]);
      model.eval();
      const bn = model.at(1) as nn.BatchNormBase;
      assert.equal(bn.numBatchesTracked, expected.num_batches_tracked);
      const { shape, offset, scale } = expected.input;
      const y = noGrad(() => model.forward(hashedInputs(shape, offset, scale ?? 1)));
      assert.deepEqual(y.shape, expected.output.shape);
      assertAllClose(y, expected.output.data, TOLERANCE, `${file} eval outputs vs PyTorch`);
    });
  }
});

describe("covshift → PyTorch", () => {
  it("the bytes covshift writes for its §4.1 BN network are the ones PyTorch loaded with load_state_dict(strict=True) (same SHA-256)", () => {
    const bytes = covshiftMlpSafetensors();
    assert.equal(createHash("sha256").update(bytes).digest("hex"), fixture.covshift_mlp_bn_in_torch.sha256);
    assert.equal(readSafetensors(bytes).metadata.producer, "covshift");
    assert.equal(fixture.covshift_mlp_bn_in_torch.num_batches_tracked, 1234);
    assert.equal(fixture.covshift_mlp_bn_in_torch.num_batches_tracked_dtype, "torch.int64");
  });

  it("PyTorch's eval outputs with covshift's state dict match covshift's own (≤ 1e-5)", () => {
    const expected = fixture.covshift_mlp_bn_in_torch;
    const model = covshiftMlpForPyTorch();
    const y = noGrad(() => model.forward(hashedInputs(expected.input.shape, expected.input.offset)));
    assertAllClose(y, expected.output.data, TOLERANCE, "covshift vs PyTorch on covshift's weights");
  });

  it("the fixture script ran ONNX's own checker on every export the ONNX tests run, and each passed", () => {
    const checks = fixture.onnx_checker as Record<string, string>;
    for (const name of ["mlp_bn", "mlp_bn_folded", "bn_inception", "bn_inception_folded", "inception_baseline", "inception_baseline_folded"]) {
      assert.match(checks[`${name}.onnx`], /^passed onnx\.checker\.check_model\(full_check=True\)/, name);
    }
  });
});
