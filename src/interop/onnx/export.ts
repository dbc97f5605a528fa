/**
 * ONNX export: a covshift model in inference mode as an ONNX ModelProto,
 * encoded with protobufjs from ONNX's own schema (./schema.ts). The graph
 * takes one float32 tensor named "input" and gives one named "output";
 * initializers carry the state-dict keys ("0.weight", "1.running_mean", …).
 *
 * Each layer becomes the ONNX operator with PyTorch's semantics:
 *   Linear → Gemm (transB = 1)        Conv2d → Conv
 *   BatchNorm1d/2d → BatchNormalization in inference mode (running statistics),
 *     or folded into the Linear/Conv2d before it (Algorithm 2, step 11)
 *   ReLU, Sigmoid, Tanh → Relu, Sigmoid, Tanh
 *   MaxPool2d → MaxPool, AvgPool2d → AveragePool (count_include_pad as set)
 *   GlobalAvgPool2d / AdaptiveAvgPool2d → GlobalAveragePool (or AveragePool when the sizes divide)
 *   Concat → its branches on the same input, then Concat on axis 1
 *   Flatten → Flatten (axis 1) or Reshape
 *   Dropout, Identity → nothing (the identity at inference)
 *   LocalResponseNorm → LRN for odd sizes; for even sizes, where ONNX's window
 *     sits one channel off PyTorch's, the same sums as a 1×1 convolution
 */
import type * as Protobuf from "protobufjs/light.js";
// protobufjs/light as one ES module, bundled at build time (scripts/bundle-protobuf.mjs): browsers import it unbundled.
import bundledProtobuf from "./generated/protobufLight.js";
const protobuf = bundledProtobuf as unknown as typeof Protobuf;
import { deepCopy } from "../../nn/clone.js";
import { foldBatchNorm } from "../../nn/fold.js";
import { Module } from "../../nn/module.js";
import { Sequential } from "../../nn/sequential.js";
import { Concat } from "../../nn/container.js";
import { Linear } from "../../nn/linear.js";
import { Conv2d } from "../../nn/conv.js";
import { BatchNorm1d, BatchNorm2d, BatchNormBase } from "../../nn/batchnorm.js";
import { Flatten, Identity, ReLU, Sigmoid, Tanh } from "../../nn/activation.js";
import { AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d } from "../../nn/pool.js";
import { Dropout } from "../../nn/dropout.js";
import { LocalResponseNorm } from "../../nn/lrn.js";
import { noGrad } from "../../tensor/autograd.js";
import { Tensor, zeros } from "../../tensor/tensor.js";
import { onnxSchema } from "./schema.js";

export interface OnnxExportOptions {
  /** The input's shape, batch first, e.g. [1, 784] or [1, 3, 28, 28]. */
  inputShape: readonly number[];
  /** The ONNX operator set, 13–21. Default 17. */
  opset?: number;
  /** Fold every BN that follows a Linear or Conv2d into it (nn.foldBatchNorm) instead of exporting BatchNormalization. Default false. */
  foldBatchNorm?: boolean;
  /** Name the batch dimension "batch" so that any batch size runs (as PyTorch's dynamic_axes); false fixes it to inputShape[0]. Default true. */
  dynamicBatch?: boolean;
  /** Strings stored in the model's metadata_props (e.g. the run's settings). */
  metadata?: Record<string, string>;
  /** The graph's doc_string. */
  docString?: string;
}

/** The opsets whose definitions of the operators used here agree, with the IR version each needs. */
const IR_VERSION_FOR_OPSET: Readonly<Record<number, number>> = { 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };

/** TensorProto.DataType.FLOAT */
const FLOAT = 1;
/** TensorProto.DataType.INT64 */
const INT64 = 7;

const AttributeType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

let modelProto: Protobuf.Type | null = null;
function modelType(): Protobuf.Type {
  modelProto ??= protobuf.Root.fromJSON(onnxSchema as unknown as Protobuf.INamespace).lookupType("onnx.ModelProto");
  return modelProto;
}

type Attribute = { name: string; type: number; f?: number; i?: number; ints?: number[] };
interface NodeSpec {
  op_type: string;
  name: string;
  input: string[];
  output: string[];
  attribute: Attribute[];
}
interface InitializerSpec {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

const int = (name: string, i: number): Attribute => ({ name, type: AttributeType.INT, i });
const ints = (name: string, values: readonly number[]): Attribute => ({ name, type: AttributeType.INTS, ints: [...values] });
const float = (name: string, f: number): Attribute => ({ name, type: AttributeType.FLOAT, f });

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function float32Bytes(values: ArrayLike<number>): Uint8Array {
  const f = Float32Array.from(values);
  if (littleEndianHost) return new Uint8Array(f.buffer);
  const out = new Uint8Array(4 * f.length);
  const view = new DataView(out.buffer);
  f.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return out;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(8 * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setBigInt64(8 * i, BigInt(v), true));
  return out;
}

/** A value flowing through the graph: its ONNX name and a covshift tensor of its shape (from running the layer). */
interface Value {
  name: string;
  sample: Tensor;
}

class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: InitializerSpec[] = [];
  private readonly usedNames = new Set<string>(["input"]);
  /** False once a layer mixes the batch dimension with others (Flatten from dim 0). */
  batchPreserved = true;

  private unique(base: string): string {
    let name = base;
    for (let k = 1; this.usedNames.has(name); k++) name = `${base}_${k}`;
    this.usedNames.add(name);
    return name;
  }

  initializer(name: string, dims: readonly number[], values: ArrayLike<number>): string {
    const unique = this.unique(name);
    this.initializers.push({ name: unique, dims: [...dims], data_type: FLOAT, raw_data: float32Bytes(values) });
    return unique;
  }

  int64Initializer(name: string, values: number[]): string {
    const unique = this.unique(name);
    this.initializers.push({ name: unique, dims: [values.length], data_type: INT64, raw_data: int64Bytes(values) });
    return unique;
  }

  /** Add a node named after the module's path ("/2/1/0/Conv", as PyTorch's exporter names them); returns its output's name. */
  node(path: string, opType: string, inputs: string[], attributes: Attribute[] = []): string {
    const base = path === "" ? `/${opType}` : `/${path.replace(/\./g, "/")}/${opType}`;
    const name = this.unique(base);
    const output = this.unique(`${base}_output_0`);
    this.nodes.push({ op_type: opType, name, input: inputs, output: [output], attribute: attributes });
    return output;
  }

  /** Emit the nodes of `m` applied to `x`. */
  emit(m: Module, path: string, x: Value): Value {
    const run = (): Tensor => noGrad(() => m.forward(x.sample));
    const key = (local: string) => (path === "" ? local : `${path}.${local}`);
    const cls = m.constructor;
    if (cls === Sequential) {
      let v = x;
      for (const [name, child] of m.namedChildren()) v = this.emit(child, key(name), v);
      return v;
    }
    if (cls === Concat) {
      const outs = [...m.namedChildren()].map(([name, child]) => this.emit(child, key(name), x));
      return { name: this.node(path, "Concat", outs.map((o) => o.name), [int("axis", 1)]), sample: run() };
    }
    if (cls === Identity || cls === Dropout) return x;
    if (cls === Linear) {
      const l = m as Linear;
      const inputs = [x.name, this.initializer(key("weight"), l.weight.shape, l.weight.data)];
      if (l.bias !== null) inputs.push(this.initializer(key("bias"), l.bias.shape, l.bias.data));
      return { name: this.node(path, "Gemm", inputs, [float("alpha", 1), float("beta", 1), int("transB", 1)]), sample: run() };
    }
    if (cls === Conv2d) {
      const c = m as Conv2d;
      const inputs = [x.name, this.initializer(key("weight"), c.weight.shape, c.weight.data)];
      if (c.bias !== null) inputs.push(this.initializer(key("bias"), c.bias.shape, c.bias.data));
      const [ph, pw] = c.padding;
      const attributes = [ints("dilations", [1, 1]), int("group", 1), ints("kernel_shape", c.kernelSize), ints("pads", [ph, pw, ph, pw]), ints("strides", c.stride)];
      return { name: this.node(path, "Conv", inputs, attributes), sample: run() };
    }
    if (cls === BatchNorm1d || cls === BatchNorm2d) {
      const bn = m as BatchNormBase;
      if (!bn.trackRunningStats) {
        throw new Error(
          `exportOnnx: cannot export ${describe(m, path)}: it has no running statistics (trackRunningStats: false), so it normalizes with each batch's own statistics even at inference, which ONNX's BatchNormalization (inference mode) does not do. Train it with running statistics to export it.`,
        );
      }
      const C = bn.numFeatures;
      const inputs = [
        x.name,
        this.initializer(key("weight"), [C], bn.weight?.data ?? new Float32Array(C).fill(1)),
        this.initializer(key("bias"), [C], bn.bias?.data ?? new Float32Array(C)),
        this.initializer(key("running_mean"), [C], bn.runningMean!.data),
        this.initializer(key("running_var"), [C], bn.runningVar!.data),
      ];
      const attributes = [float("epsilon", bn.eps)];
      // ONNX's momentum weighs the old running value (used in training mode only); covshift's, as PyTorch's, the new batch.
      if (bn.momentum !== null) attributes.push(float("momentum", 1 - bn.momentum));
      return { name: this.node(path, "BatchNormalization", inputs, attributes), sample: run() };
    }
    if (cls === ReLU || cls === Sigmoid || cls === Tanh) {
      const op = cls === ReLU ? "Relu" : cls === Sigmoid ? "Sigmoid" : "Tanh";
      return { name: this.node(path, op, [x.name]), sample: run() };
    }
    if (cls === MaxPool2d || cls === AvgPool2d) {
      const p = m as MaxPool2d | AvgPool2d;
      const [ph, pw] = p.padding;
      const attributes = [int("ceil_mode", 0), ints("kernel_shape", p.kernelSize), ints("pads", [ph, pw, ph, pw]), ints("strides", p.stride)];
      if (p instanceof AvgPool2d) attributes.push(int("count_include_pad", p.countIncludePad ? 1 : 0));
      return { name: this.node(path, cls === MaxPool2d ? "MaxPool" : "AveragePool", [x.name], attributes), sample: run() };
    }
    if (cls === GlobalAvgPool2d || cls === AdaptiveAvgPool2d) {
      const [oh, ow] = (m as AdaptiveAvgPool2d).outputSize;
      if (oh === 1 && ow === 1) return { name: this.node(path, "GlobalAveragePool", [x.name]), sample: run() };
      const [, , H, W] = x.sample.shape;
      if (H % oh !== 0 || W % ow !== 0) {
        throw new Error(
          `exportOnnx: cannot export ${describe(m, path)}: pooling ${H}×${W} down to ${oh}×${ow} uses windows of different sizes, which no ONNX pooling operator expresses; choose an output size that divides the input (or an input size that ${oh}×${ow} divides)`,
        );
      }
      const kernel = [H / oh, W / ow];
      const attributes = [int("ceil_mode", 0), int("count_include_pad", 0), ints("kernel_shape", kernel), ints("pads", [0, 0, 0, 0]), ints("strides", kernel)];
      return { name: this.node(path, "AveragePool", [x.name], attributes), sample: run() };
    }
    if (cls === Flatten) return this.flatten(m as Flatten, path, x, run());
    if (cls === LocalResponseNorm) return this.lrn(m as LocalResponseNorm, path, x, run());
    const known = "Sequential, Concat, Linear, Conv2d, BatchNorm1d, BatchNorm2d, ReLU, Sigmoid, Tanh, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d, Flatten, Dropout, LocalResponseNorm, Identity";
    throw new Error(
      `exportOnnx: cannot export ${describe(m, path)}: ONNX export knows the layers ${known} (each by its exact class, since a subclass may compute something else). Rebuild the model from those layers, or export the part before it.`,
    );
  }

  private flatten(f: Flatten, path: string, x: Value, y: Tensor): Value {
    const rank = x.sample.ndim;
    const start = f.startDim < 0 ? f.startDim + rank : f.startDim;
    const end = f.endDim < 0 ? f.endDim + rank : f.endDim;
    if (start === 1 && end === rank - 1) return { name: this.node(path, "Flatten", [x.name], [int("axis", 1)]), sample: y };
    // Reshape to the output's shape; 0 copies the (possibly dynamic) batch dimension, −1 infers a dimension that absorbed it.
    const shape = [...y.shape];
    if (start === 0) {
      shape[0] = -1;
      this.batchPreserved = false;
    } else {
      shape[0] = 0;
    }
    const target = this.int64Initializer(`${path === "" ? "" : `${path}.`}shape`, shape);
    return { name: this.node(path, "Reshape", [x.name, target]), sample: y };
  }

  /**
   * PyTorch (and covshift) sum the squares over channels [c − ⌊n/2⌋, c + ⌊(n−1)/2⌋];
   * ONNX's LRN over [c − ⌊(n−1)/2⌋, c + ⌈(n−1)/2⌉]. For odd n they agree. For even n
   * the sums are written out: S = conv1×1(x², band) with band[c, c'] = 1 on
   * PyTorch's window, then y = x · (k + α/n · S)^(−β).
   */
  private lrn(l: LocalResponseNorm, path: string, x: Value, y: Tensor): Value {
    if (l.size % 2 === 1) {
      const attributes = [float("alpha", l.alpha), float("beta", l.beta), float("bias", l.k), int("size", l.size)];
      return { name: this.node(path, "LRN", [x.name], attributes), sample: y };
    }
    const rank = x.sample.ndim;
    const C = x.sample.shape[1];
    if (rank < 3 || rank > 5) {
      throw new Error(`exportOnnx: cannot export ${describe(l, path)} of even size on a ${rank}-d input: the export writes its window sums as a convolution, which takes 3- to 5-d inputs`);
    }
    const before = Math.floor(l.size / 2);
    const after = Math.floor((l.size - 1) / 2);
    const band = new Float32Array(C * C);
    for (let c = 0; c < C; c++) {
      for (let c2 = Math.max(0, c - before); c2 <= Math.min(C - 1, c + after); c2++) band[c * C + c2] = 1;
    }
    const ones = new Array(rank - 2).fill(1);
    const prefix = path === "" ? "" : `${path}.`;
    const square = this.node(path, "Mul", [x.name, x.name]);
    const sums = this.node(path, "Conv", [square, this.initializer(`${prefix}window`, [C, C, ...ones], band)], [ints("kernel_shape", ones)]);
    const scaled = this.node(path, "Mul", [sums, this.initializer(`${prefix}alpha_over_size`, [], [l.alpha / l.size])]);
    const d = this.node(path, "Add", [scaled, this.initializer(`${prefix}k`, [], [l.k])]);
    const power = this.node(path, "Pow", [d, this.initializer(`${prefix}minus_beta`, [], [-l.beta])]);
    return { name: this.node(path, "Mul", [x.name, power]), sample: y };
  }
}

function describe(m: Module, path: string): string {
  return `${m.constructor.name} '${path === "" ? "(root)" : path}'`;
}

/** A float32 tensor type; dimension 0 is named (dynamic), unknown (dynamic and mixed with others) or fixed. */
function tensorType(shape: readonly number[], batch: "named" | "unknown" | "fixed") {
  const first = batch === "named" ? { dim_param: "batch" } : batch === "unknown" ? {} : { dim_value: shape[0] };
  return {
    tensor_type: {
      elem_type: FLOAT,
      shape: { dim: shape.map((d, i) => (i === 0 ? first : { dim_value: d })) },
    },
  };
}

/**
 * The model as ONNX bytes (a serialized ModelProto), for inference: BN uses
 * its running statistics and Dropout is the identity, whatever mode the model
 * is in (it is not changed; the export works on a copy). The graph's input
 * is named "input" (float32, `inputShape`, the batch dimension named "batch"
 * unless `dynamicBatch: false`) and its output "output". float64 models are
 * exported in float32.
 */
export function exportOnnx(model: Module, options: OnnxExportOptions): Uint8Array {
  if (!(model instanceof Module)) throw new Error(`exportOnnx: expected a covshift nn.Module; got ${model === null ? "null" : typeof model}`);
  const inputShape = options?.inputShape;
  if (!Array.isArray(inputShape) || inputShape.length < 1 || !inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`exportOnnx: inputShape must list the input's dimensions as positive integers, batch first (e.g. [1, 784] or [1, 3, 28, 28]); got ${JSON.stringify(inputShape)}`);
  }
  const opset = options.opset ?? 17;
  const irVersion = IR_VERSION_FOR_OPSET[opset];
  if (irVersion === undefined) {
    throw new Error(`exportOnnx: opset must be an integer from 13 to 21 (the opsets whose operators this export writes the same way); got ${opset}`);
  }
  for (const [k, v] of Object.entries(options.metadata ?? {})) {
    if (typeof v !== "string") throw new Error(`exportOnnx: metadata '${k}' must be a string; got ${typeof v}`);
  }
  const dynamicBatch = options.dynamicBatch ?? true;

  let copy = deepCopy(model).eval();
  for (const [path, m] of copy.namedModules()) {
    if (m instanceof BatchNormBase && !m.trackRunningStats) {
      throw new Error(
        `exportOnnx: cannot export ${describe(m, path)}: it has no running statistics (trackRunningStats: false), so it normalizes with each batch's own statistics even at inference, which ONNX's BatchNormalization (inference mode) does not do. Train it with running statistics to export it.`,
      );
    }
  }
  if (options.foldBatchNorm) copy = foldBatchNorm(copy);

  const builder = new GraphBuilder();
  const dtype = copy.parameters()[0]?.dtype ?? "float32";
  const input: Value = { name: "input", sample: zeros(inputShape, { dtype }) };
  let out: Value;
  try {
    out = builder.emit(copy, "", input);
  } catch (err) {
    const message = (err as Error).message;
    if (message.startsWith("exportOnnx:")) throw err;
    throw new Error(`exportOnnx: the model does not run on an input of shape [${inputShape.join(", ")}]: ${message}`);
  }
  // Name the graph's result "output": rename the last node's output, or pass the input through.
  if (out.name === "input") {
    builder.nodes.push({ op_type: "Identity", name: "/Identity", input: ["input"], output: ["output"], attribute: [] });
  } else {
    for (const node of builder.nodes) node.output = node.output.map((o) => (o === out.name ? "output" : o));
  }

  const model_ = {
    ir_version: irVersion,
    opset_import: [{ domain: "", version: opset }],
    producer_name: "covshift",
    graph: {
      name: "covshift",
      doc_string: options.docString ?? "",
      node: builder.nodes,
      initializer: builder.initializers,
      input: [{ name: "input", type: tensorType(inputShape, dynamicBatch ? "named" : "fixed") }],
      output: [{ name: "output", type: tensorType(out.sample.shape, !dynamicBatch ? "fixed" : builder.batchPreserved ? "named" : "unknown") }],
    },
    metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
  };
  const type = modelType();
  return type.encode(type.fromObject(model_)).finish();
}
