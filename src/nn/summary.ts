import { noGrad } from "../tensor/autograd.js";
import type { DType } from "../backend/storage.js";
import { Tensor, zeros } from "../tensor/tensor.js";
import { Module } from "./module.js";

/** Options of {@link summary}. */
export interface SummaryOptions {
  /** Rows deeper than this are not printed (their parameters still count); torchinfo's default 3. */
  depth?: number;
  /** The dtype of the sample input (default float32). */
  dtype?: DType;
}

interface Row {
  module: Module;
  className: string;
  depth: number;
  depthIndex: number;
  isLeaf: boolean;
  /** Seen earlier in the tree (a module registered twice): printed as "(recursive)", counted once. */
  isRecursive: boolean;
  outputShape: readonly number[] | null;
  numParams: number;
  trainableParams: number;
  paramBytes: number;
  outputBytes: number;
  macs: number;
  children: Row[];
}

const NAME_WIDTH = 40;
const COLUMN_WIDTH = 25;

/**
 * A table of the model's layers in torchinfo's default layout
 * (`torchinfo.summary(model, input_size)`, version 1.8): one row per
 * module, indented by depth (`├─Linear: 1-1`), its output shape for a
 * sample input of `inputShape` (zeros, run once in inference mode without
 * gradients — the model's state is not changed), its parameter count
 * (`--` for none; parenthesized when none of them trains); then the total,
 * trainable and frozen parameter counts, the multiply-adds of one forward
 * pass, and torchinfo's memory estimate: input, activations (outputs of
 * layers with parameters, ×2 for their gradients), parameters.
 */
export function summary(model: Module, inputShape: readonly number[], options: SummaryOptions = {}): string {
  if (!(model instanceof Module)) throw new Error(`summary: expected a covshift nn.Module as the model; got ${describeValue(model)}`);
  if (!Array.isArray(inputShape) || inputShape.length === 0 || !inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(
      `summary: inputShape must be the sample input's shape, batch first, e.g. [1, 784]; got ${JSON.stringify(inputShape)}`,
    );
  }
  const maxDepth = options.depth ?? 3;
  const dtype = options.dtype ?? "float32";
  const rows = collectRows(model);
  recordOutputShapes(model, rows, inputShape, dtype);
  for (const row of rows) countRow(row);

  let totalParams = 0;
  let trainableParams = 0;
  let paramBytes = 0;
  let outputBytes = 0;
  let macs = 0;
  for (const row of rows) {
    if (row.isLeaf) {
      macs += row.macs;
      if (row.numParams > 0) outputBytes += row.outputBytes * 2; // ×2: the gradients
      if (row.isRecursive) continue;
      totalParams += row.numParams;
      trainableParams += row.trainableParams;
      paramBytes += row.paramBytes;
    } else if (!row.isRecursive) {
      totalParams += Math.max(0, leftover(row, (r) => r.numParams));
      trainableParams += Math.max(0, leftover(row, (r) => r.trainableParams));
    }
  }
  const inputBytes = inputShape.reduce((p, d) => p * d, 1) * (dtype === "float64" ? 8 : 4);

  let nameWidth = NAME_WIDTH;
  const longest = Math.max(...rows.map((r) => layerName(r).length + r.depth * 5 + 1));
  if (longest >= nameWidth) nameWidth = Math.ceil(longest / 5) * 5;
  const divider = "=".repeat(nameWidth + 2 * COLUMN_WIDTH);
  const line = (name: string, shape: string, params: string) =>
    `${name.padEnd(nameWidth)} ${shape.padEnd(COLUMN_WIDTH)} ${params.padEnd(COLUMN_WIDTH)}`.trimEnd();

  const out = [divider, line("Layer (type:depth-idx)", "Output Shape", "Param #"), divider];
  for (const row of rows) {
    if (row.depth > maxDepth) continue;
    const shape = row.outputShape === null ? "--" : `[${row.outputShape.join(", ")}]`;
    out.push(line(treePrefix(row.depth) + layerName(row), shape, paramsText(row, row.depth === maxDepth)));
  }
  const mb = (bytes: number) => formatFixed2(bytes / 1e6);
  const [macUnit, macValue] = macs >= 1e12 ? ["T", macs / 1e12] : macs >= 1e9 ? ["G", macs / 1e9] : ["M", macs / 1e6];
  out.push(
    divider,
    `Total params: ${withCommas(totalParams)}`,
    `Trainable params: ${withCommas(trainableParams)}`,
    `Non-trainable params: ${withCommas(totalParams - trainableParams)}`,
    `Total mult-adds (${macUnit}): ${Number.isInteger(macValue) ? withCommas(macValue) : formatFixed2(macValue)}`,
    divider,
    `Input size (MB): ${mb(inputBytes)}`,
    `Forward/backward pass size (MB): ${mb(outputBytes)}`,
    `Params size (MB): ${mb(paramBytes)}`,
    `Estimated Total Size (MB): ${mb(inputBytes + outputBytes + paramBytes)}`,
    divider,
  );
  return out.join("\n");
}

/** Every module in tree order with its depth and torchinfo's depth index (counted per depth across the tree). */
function collectRows(model: Module): Row[] {
  const rows: Row[] = [];
  const perDepth = new Map<number, number>();
  const seen = new Set<Module>();
  const visit = (m: Module, depth: number): Row => {
    const index = (perDepth.get(depth) ?? 0) + 1;
    perDepth.set(depth, index);
    const children = [...m.children()];
    const row: Row = {
      module: m,
      className: m.constructor.name,
      depth,
      depthIndex: index,
      isLeaf: children.length === 0,
      isRecursive: seen.has(m),
      outputShape: null,
      numParams: 0,
      trainableParams: 0,
      paramBytes: 0,
      outputBytes: 0,
      macs: 0,
      children: [],
    };
    seen.add(m);
    rows.push(row);
    for (const c of children) row.children.push(visit(c, depth + 1));
    return row;
  };
  visit(model, 0);
  return rows;
}

/** Runs the model once on zeros, noting each module's output shape; restores the model's modes. */
function recordOutputShapes(model: Module, rows: Row[], inputShape: readonly number[], dtype: DType): void {
  const byModule = new Map<Module, Row[]>();
  for (const r of rows) byModule.set(r.module, [...(byModule.get(r.module) ?? []), r]);
  const modes = new Map<Module, boolean>();
  for (const m of model.modules()) modes.set(m, m.training);
  const wrapped: Module[] = [];
  try {
    for (const [m, list] of byModule) {
      const original = m.forward;
      // An own property shadows the class's forward for this one call of summary().
      (m as { forward: Module["forward"] }).forward = function (this: Module, input: Tensor, ...rest: unknown[]) {
        const y = original.call(this, input, ...rest);
        if (y instanceof Tensor) {
          for (const r of list) {
            r.outputShape = [...y.shape];
            r.outputBytes = y.size * (y.dtype === "float64" ? 8 : 4);
          }
        }
        return y;
      };
      wrapped.push(m);
    }
    model.eval();
    noGrad(() => {
      try {
        model.forward(zeros(inputShape, { dtype }));
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new Error(
          `summary: the model could not run on an input of shape [${inputShape.join(", ")}]: ${why}\nPass the shape the model's first layer expects, batch first (e.g. [1, 784] for a Linear(784, …), [1, 3, 32, 32] for a Conv2d(3, …)).`,
          { cause: err },
        );
      }
    });
  } finally {
    for (const m of wrapped) delete (m as { forward?: unknown }).forward;
    for (const [m, mode] of modes) m.training = mode;
  }
}

/** Parameter counts and multiply-adds of one row, as torchinfo's LayerInfo computes them. */
function countRow(row: Row): void {
  const out = row.outputShape;
  const named = row.module.namedParameters();
  for (const [name, p] of named) {
    row.numParams += p.size;
    if (p.requiresGrad) row.trainableParams += p.size;
    row.paramBytes += p.size * (p.dtype === "float64" ? 8 : 4);
    if (out === null || (name !== "weight" && name !== "bias")) continue;
    // A convolution's weight is applied at every output position, once per batch element and output map (C left out).
    if (row.className.includes("Conv")) row.macs += p.size * out[0] * out.slice(2).reduce((a, b) => a * b, 1);
    else row.macs += out[0] * p.size;
  }
}

/**
 * A container's parameters that none of the modules below it hold (its
 * own), as torchinfo counts them: minus every leaf below, and minus what is
 * left over in every container below.
 */
function leftover(row: Row, count: (r: Row) => number): number {
  let below = 0;
  for (const d of descendants(row)) {
    if (d.isRecursive) continue;
    below += d.isLeaf ? count(d) : leftover(d, count);
  }
  return count(row) - below;
}

function* descendants(row: Row): Generator<Row> {
  for (const c of row.children) {
    yield c;
    yield* descendants(c);
  }
}

function paramsText(row: Row, reachedMaxDepth: boolean): string {
  if (row.numParams === 0) return "--";
  if (row.isRecursive) return "(recursive)";
  if (reachedMaxDepth || row.isLeaf) {
    const text = withCommas(row.numParams);
    return row.trainableParams > 0 ? text : `(${text})`;
  }
  const own = leftover(row, (r) => r.numParams);
  return own > 0 ? withCommas(own) : "--";
}

function layerName(row: Row): string {
  return row.depth > 0 ? `${row.className}: ${row.depth}-${row.depthIndex}` : row.className;
}

function treePrefix(depth: number): string {
  if (depth === 0) return "";
  if (depth === 1) return "├─";
  return "│    ".repeat(depth - 1) + "└─";
}

/** 1234567 → "1,234,567" (Python's `f"{n:,}"`). */
function withCommas(n: number | string): string {
  const [int, frac] = String(n).split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac === undefined ? grouped : `${grouped}.${frac}`;
}

/** Python's `f"{x:,.2f}"`. */
function formatFixed2(x: number): string {
  return withCommas(x.toFixed(2));
}

function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  return typeof v === "object" ? `an object of class ${(v as object).constructor?.name ?? "?"}` : `${typeof v} ${String(v)}`;
}
