/**
 * `covshift export`: a network the experiments trained, rebuilt from what
 * they leave — a model file (`<out>/models/<name>.safetensors`, whose
 * metadata holds the run's settings) or a checkpoint of an unfinished run
 * (`<out>/checkpoints/<name>.safetensors`, with the settings in `<out>/state.json`)
 * — and written as ONNX or safetensors.
 */
import { existsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Generator, nn, Tensor } from "../index.js";
import { CHECKPOINT_FORMAT, modelStateFrom, readCheckpoint } from "./runner/checkpoint.js";
import { exportOnnx } from "../interop/onnx/export.js";
import { loadSafetensorsFile } from "../io/safetensorsFile.js";
import { readJson, writeFileAtomic } from "../io/files.js";
import { saveSafetensors } from "../interop/safetensors.js";
import { defaultFigure1Config, type Figure1Config, type NetworkKind } from "./figure1/config.js";
import { buildFigure1Network } from "./figure1/network.js";
import { buildInception } from "./table/inception.js";
import type { RowSettings, TableConfig } from "./table/rows.js";

/** A network ready to export: the model with its trained state, its input shape, and what it is. */
export interface LoadedNetwork {
  model: nn.Sequential;
  inputShape: number[];
  description: string;
  /** The run's settings (JSON), carried into the exported file's metadata. */
  settings: string;
}

type Figure1Settings = Figure1Config & { network: NetworkKind; seed: number };
type TableSettings = TableConfig & { row: string; settings: RowSettings };

function figure1Model(s: Figure1Settings): nn.Sequential {
  return buildFigure1Network(s.network, { ...defaultFigure1Config, ...s }, new Generator(0)).model;
}

function tableModel(config: TableConfig, row: RowSettings): nn.Sequential {
  return buildInception({
    width: config.width,
    stemStride: config.stemStride,
    bn: row.bn,
    activation: row.activation,
    lrn: row.lrn,
    dropout: row.dropout,
    init: config.init,
  });
}

/** Read a model file or checkpoint of figure1 or table; every error names the file and says what it expected. */
export function loadTrainedNetwork(path: string): LoadedNetwork {
  if (!existsSync(path)) throw new Error(`export: ${path} does not exist`);
  if (path.endsWith(".safetensors")) return isCheckpointFile(path) ? fromCheckpoint(path) : fromModelFile(path);
  throw new Error(
    `export: ${path} is neither a model file (.safetensors, as figure1 and table write into <out>/models/) nor a checkpoint (.safetensors in <out>/checkpoints/)`,
  );
}

function isCheckpointFile(path: string): boolean {
  return loadSafetensorsFile(path).metadata.format === CHECKPOINT_FORMAT;
}

function fromModelFile(path: string): LoadedNetwork {
  const { tensors, metadata } = loadSafetensorsFile(path);
  let settings: Record<string, unknown>;
  try {
    settings = JSON.parse(metadata.settings ?? "");
  } catch {
    throw new Error(
      `export: ${path} has no run settings in its metadata, so the network's architecture is unknown; export works on the model files of covshift figure1 and table (load other state dicts with loadSafetensors in code)`,
    );
  }
  let model: nn.Sequential;
  let inputShape: number[];
  if ("network" in settings) {
    model = figure1Model(settings as unknown as Figure1Settings);
    inputShape = [1, 784];
  } else if ("row" in settings) {
    const s = settings as unknown as TableSettings;
    model = tableModel(s, s.settings);
    inputShape = [1, 3, s.crop, s.crop];
  } else {
    throw new Error(`export: the settings in ${path} are neither figure1's (with "network") nor table's (with "row")`);
  }
  loadInto(model, tensors, path);
  return { model, inputShape, description: metadata.description ?? basename(path), settings: metadata.settings };
}

/** A checkpoint (runner/checkpoint.ts: verified by its checksum) with the run's settings from <out>/state.json. */
function fromCheckpoint(path: string): LoadedNetwork {
  const checkpoint = readCheckpoint(path);
  const statePath = join(dirname(dirname(path)), "state.json");
  if (!existsSync(statePath)) {
    throw new Error(`export: ${path} is a checkpoint, but ${statePath}, which holds its run's settings, is missing; export a checkpoint inside the --out directory its run wrote`);
  }
  const config = readJson<{ config: Record<string, unknown> }>(statePath).config;
  const state = checkpoint.state;
  if (checkpoint.command === "figure1") {
    const settings: Figure1Settings = { ...(config as unknown as Figure1Config), network: state.network as NetworkKind, seed: state.seed as number };
    const model = figure1Model(settings);
    loadInto(model, modelStateFrom(checkpoint.tensors, model.stateDict()), path);
    const description = `figure1 ${settings.network} network, seed ${settings.seed}, checkpoint at step ${state.step}`;
    return { model, inputShape: [1, 784], description, settings: JSON.stringify({ ...settings, step: state.step }) };
  }
  const result = state.result as { settings?: RowSettings } | undefined;
  if (checkpoint.command === "table" && result?.settings !== undefined) {
    const table = config as unknown as TableConfig;
    const model = tableModel(table, result.settings);
    loadInto(model, modelStateFrom(checkpoint.tensors, model.stateDict()), path);
    const description = `table row ${state.row}, checkpoint at step ${state.step}`;
    return {
      model,
      inputShape: [1, 3, table.crop, table.crop],
      description,
      settings: JSON.stringify({ ...table, row: state.row, settings: result.settings, step: state.step }),
    };
  }
  throw new Error(`export: ${path} is a checkpoint of covshift ${checkpoint.command}, which export does not rebuild (it knows figure1 and table)`);
}

function loadInto(model: nn.Module, state: Record<string, Tensor>, path: string): void {
  try {
    model.loadStateDict(state);
  } catch (err) {
    throw new Error(`export: ${path} does not fit the network its settings describe: ${(err as Error).message}`);
  }
}

/**
 * Write `network` to `outPath` as ONNX (opset 17, dynamic batch) or
 * safetensors; with `foldBatchNorm`, BN folded into the layer before it
 * first (the safetensors then holds the folded network's state dict).
 */
export function writeExport(network: LoadedNetwork, outPath: string, format: "onnx" | "safetensors", foldBatchNorm: boolean): void {
  const metadata = { producer: "covshift", description: network.description, input_shape: JSON.stringify(network.inputShape), settings: network.settings, folded_batchnorm: String(foldBatchNorm) };
  if (format === "onnx") {
    writeFileAtomic(outPath, exportOnnx(network.model, { inputShape: network.inputShape, opset: 17, foldBatchNorm, metadata, docString: network.description }));
  } else {
    const model = foldBatchNorm ? nn.foldBatchNorm(network.model.eval()) : network.model;
    writeFileAtomic(outPath, saveSafetensors(model.stateDict(), metadata));
  }
}
