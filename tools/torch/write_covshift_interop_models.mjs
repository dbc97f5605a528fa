// Dev-only, called by tools/torch/make_interop_fixtures.py after `npm run build`:
// writes into the directory given as argument what covshift hands to PyTorch and to
// ONNX's checker — the deterministic §4.1 BN network as safetensors, and the ONNX
// exports the tests run in onnxruntime-node (the MLP and the table's Inceptions,
// folded and unfolded).
//   node tools/torch/write_covshift_interop_models.mjs DIR
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { exportOnnx } from "../../dist/src/index.js";
import * as fixtures from "../../dist/test/interop/fixtureModels.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: node tools/torch/write_covshift_interop_models.mjs DIR");
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "covshift_mlp_bn.safetensors"), fixtures.covshiftMlpSafetensors());
const models = {
  mlp_bn: [fixtures.covshiftMlpForPyTorch(), [1, 784]],
  bn_inception: [fixtures.bnInceptionForExport(), [1, 3, 28, 28]],
  inception_baseline: [fixtures.baselineInceptionForExport(), [1, 3, 28, 28]],
};
for (const [name, [model, inputShape]] of Object.entries(models)) {
  for (const fold of [false, true]) {
    const bytes = exportOnnx(model, { inputShape, opset: 17, foldBatchNorm: fold });
    writeFileSync(join(dir, `${name}${fold ? "_folded" : ""}.onnx`), bytes);
  }
}
console.log(`wrote covshift's models to ${dir}`);
