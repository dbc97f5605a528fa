/**
 * The trained networks leave the experiments as files others read: the
 * state dict as safetensors (PyTorch: `load_state_dict(load_file(path))`),
 * with the run's settings in its metadata, and the network in inference mode
 * as ONNX (ONNX Runtime, any platform). Both are written atomically.
 */
import type { nn } from "../index.js";
import { exportOnnx } from "../interop/onnx/export.js";
import { saveSafetensorsFile } from "../io/safetensorsFile.js";
import { writeFileAtomic } from "../io/files.js";

/**
 * Write `<basePath>.safetensors` and `<basePath>.onnx` for `model`, whose
 * input is `inputShape` (batch first; the ONNX batch dimension is dynamic).
 * `settings` (any JSON) goes into both files' metadata under "settings", and
 * `description` says what the network is. With `onnx: false` only the
 * safetensors file (for layers ONNX's inference BatchNormalization does not
 * cover, e.g. ghost BN). Returns the paths written.
 */
export function writeModelFiles(
  model: nn.Module,
  basePath: string,
  inputShape: number[],
  description: string,
  settings: unknown,
  options: { onnx?: boolean } = {},
): string[] {
  const metadata = {
    producer: "covshift",
    description,
    input_shape: JSON.stringify(inputShape),
    settings: JSON.stringify(settings),
  };
  const files = [`${basePath}.safetensors`];
  saveSafetensorsFile(files[0], model.stateDict(), metadata);
  if (options.onnx === false) return files;
  files.push(`${basePath}.onnx`);
  writeFileAtomic(files[1], exportOnnx(model, { inputShape, opset: 17, metadata, docString: description }));
  return files;
}
