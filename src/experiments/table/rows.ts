/**
 * The six rows of the paper's Inception table (§4.2.2), each derived from one
 * base configuration — the Inception row — by the differences the paper
 * names, listed per row in `differences` so table.md can print them:
 *
 * | row | derived from | differences |
 * |---|---|---|
 * | Inception | — | the base: lr 0.01, Dropout 0.4, LRN, L2 5e-4, fixed shards without within-shard shuffling, distortion 1, ReLU |
 * | BN-Baseline | Inception | + BN before every nonlinearity |
 * | BN-x5 | BN-Baseline | + all of §4.2.1: lr × 5, no Dropout, L2 ÷ 5, lr decay 6× faster, no LRN, within-shard shuffling, distortion 0.25 |
 * | BN-x30 | BN-x5 | lr × 30 instead of × 5 |
 * | BN-x5-Sigmoid | BN-x5 | sigmoid instead of ReLU |
 * | Inception-Sigmoid | Inception | sigmoid instead of ReLU (no BN) |
 *
 * Shuffling, as §4.2.1 item 6 of the paper words it: "Shuffle training
 * examples more thoroughly. We enabled within-shard shuffling of the training
 * data, which prevents the same examples from always appearing in a
 * mini-batch together." So the rows without §4.2.1 (Inception, BN-Baseline,
 * Inception-Sigmoid) read their shards with *no* within-shard shuffling —
 * `"fixed"`: the same batches, in the same order, every epoch — and the
 * accelerated rows (BN-x5, BN-x30, BN-x5-Sigmoid) enable it — `"shard"`:
 * examples dealt once into fixed shards of 1,024 and shuffled within them
 * every epoch (see data/batches.ts). A global reshuffle of all examples
 * (`"thorough"`) is not what the paper describes; it stays available as
 * `--accel-shuffle thorough`.
 *
 * The learning rate decays stepwise and exponentially, as the paper's
 * ("lr × 0.94 every 2 epochs" in REFERENCE_RUNS):
 *   lr(step) = lr0 · lrDecay^⌊step / lrDecayEvery⌋
 * (the trainer steps an `optim.ExponentialLR` with gamma = lrDecay once
 * every lrDecayEvery training steps, as a PyTorch user would), with lrDecayEvery = 1,406 steps by default: 2 epochs of the 45,000
 * training images at batch 64 (2 × ⌊45,000 / 64⌋ = 2 × 703). "6× faster"
 * (§4.2.1 item 4) divides that interval by 6: ⌊1,406 / 6⌉ = 234 steps.
 * The interval is in steps, not epochs, so that --train-limit changes the
 * data but not the schedule.
 *
 * Every knob is in {@link TableConfig}; the CLI and a JSON config file set
 * the base knobs, the §4.2.1 knobs (`accelerated`) and, from a file only,
 * per-row `overrides` applied last.
 *
 * The defaults and the time budget: the whole table (six rows, two at a time
 * on a 2-core machine) should take at most about 40 minutes. Measured with
 * the wasm backend (relaxed-SIMD build) at width 1/16 with a stride-2 stem,
 * two rows side by side on an otherwise idle 2-core machine train at 5.4
 * steps/s (BN-x5, BN-x30), 4.9 (BN-x5-Sigmoid), 4.5 (Inception-Sigmoid), 4.1
 * (Inception) and 3.6 (BN-Baseline) — LRN is what slows the last three — and
 * one validation pass over the 5,000 images takes 5–7 s. A 200-step table of
 * all six rows took 174 s, so 2,000 steps with an evaluation every 100 come
 * to about 30 minutes at those speeds (measured since, with faster kernels:
 * 928 s with --jobs 2, see the README). A stride-1 stem
 * (28×28 modules 3a–3b, as the PyTorch miniature) makes each step 3–5 times
 * slower, leaving too few steps for Inception to get past its slow start,
 * and width 1/8 halves the steps for about the same accuracy per second.
 * REFERENCE_RUNS trains 3,000 steps; at 2,000 Inception's learning rate
 * decays once and BN-x5's eight times. `--steps 3000` (about 45 minutes)
 * and `--stem-stride 1` (three to five times that) come closer to the
 * PyTorch miniature when time allows.
 */
import type { ShuffleMode } from "../../data/batches.js";
import { SHUFFLE_MODES } from "../../data/batches.js";
import { Activation, checkWidth, DEFAULT_WIDTH, InitScheme } from "./inception.js";
import { checkWorkers } from "../groupTraining.js";

/** The rows as --rows spells them, in the paper's order. */
export const ROW_IDS = ["inception", "bn-baseline", "bn-x5", "bn-x30", "bn-x5-sigmoid", "inception-sigmoid"] as const;
export type RowId = (typeof ROW_IDS)[number];

/** The rows as the paper (and table.json) names them. */
export const ROW_NAMES: Readonly<Record<RowId, string>> = Object.freeze({
  inception: "Inception",
  "bn-baseline": "BN-Baseline",
  "bn-x5": "BN-x5",
  "bn-x30": "BN-x30",
  "bn-x5-sigmoid": "BN-x5-Sigmoid",
  "inception-sigmoid": "Inception-Sigmoid",
});

/** Everything that may differ from row to row. */
export interface RowSettings {
  /** BN before every nonlinearity, convolutions without bias. */
  bn: boolean;
  activation: Activation;
  /** Local Response Normalization after the stem. */
  lrn: boolean;
  /** Dropout probability before the final linear layer (0: no Dropout layer). */
  dropout: number;
  /** Initial learning rate lr0. */
  lr: number;
  momentum: number;
  /** L2 weight decay λ (SGD adds λ·p to every parameter's gradient, BN's γ and β included, as PyTorch's weight_decay). */
  weightDecay: number;
  /** Factor of each learning-rate decay. */
  lrDecay: number;
  /** Steps between decays. */
  lrDecayEvery: number;
  /** Photometric distortion strength in [0, 1] (1 ↔ ±0.4 jitter, 0.25 ↔ ±0.1). */
  distortion: number;
  shuffle: ShuffleMode;
}

/** The base knobs: the Inception row's settings other than bn and activation. */
export type BaseKnobs = Omit<RowSettings, "bn" | "activation">;

/** §4.2.1's changes that have a size, as applied to BN-x5, BN-x30 and BN-x5-Sigmoid. */
export interface AcceleratedKnobs {
  /** "reduce the L2 weight regularization by a factor of 5" */
  weightDecayDivisor: number;
  /** "accelerate the learning rate decay by 6 times": the decay interval is divided by this. */
  decaySpeedup: number;
  /** "reduce the photometric distortions": the distortion strength of these rows. */
  distortion: number;
  /** "shuffle training examples more thoroughly": "we enabled within-shard shuffling" (§4.2.1 item 6). */
  shuffle: ShuffleMode;
}

/** Every setting of the table experiment; all of it goes into table.json. */
export interface TableConfig extends BaseKnobs {
  /** SGD steps per row. */
  steps: number;
  /** Measure validation accuracy every this many steps (and after the last step). */
  evalEvery: number;
  /** Channel multiplier of the network (see inception.ts). */
  width: number;
  /** Stride of the stem convolution: 1 runs modules 3a–3b at 28×28 (as the PyTorch miniature), 2 at 14×14 (3–5× faster). */
  stemStride: number;
  /** Examples per mini-batch (the paper: 32; REFERENCE_RUNS: 64). */
  batchSize: number;
  /** Side of the random training crop and of the centered evaluation crop. */
  crop: number;
  /** Seeds the weights, the batch order, the augmentations and Dropout (the same for every row). */
  seed: number;
  /** Initialization of the convolution weights. */
  init: InitScheme;
  /** §4.2.1's changes, for BN-x5, BN-x30 and BN-x5-Sigmoid. */
  accelerated: AcceleratedKnobs;
  /** Per-row settings applied after the derivation (from a config file). */
  overrides: Partial<Record<RowId, Partial<RowSettings>>>;
  /** Kernel backend for float32 work. */
  backend: string;
  /** Data-parallel workers per row, each on batchSize/workers examples of every batch (1: the row trains in its job's thread). */
  workers: number;
  /** With workers > 1: BN over the whole batch (SyncBatchNorm) rather than each worker's shard. Recorded as false for one worker. */
  syncBatchNorm: boolean;
}

export const defaultTableConfig: TableConfig = {
  steps: 2000,
  evalEvery: 100,
  width: DEFAULT_WIDTH,
  stemStride: 2,
  batchSize: 64,
  crop: 28,
  seed: 0,
  init: "he",
  lr: 0.01,
  momentum: 0.9,
  weightDecay: 5e-4,
  lrDecay: 0.94,
  lrDecayEvery: 1406,
  dropout: 0.4,
  lrn: true,
  distortion: 1,
  shuffle: "fixed",
  accelerated: { weightDecayDivisor: 5, decaySpeedup: 6, distortion: 0.25, shuffle: "shard" },
  overrides: {},
  backend: "auto",
  workers: 1,
  syncBatchNorm: true,
};

/** A row's settings, and how they differ from the Inception row, in words. */
export interface DerivedRow {
  id: RowId;
  name: string;
  settings: RowSettings;
  /** Every difference from the Inception row (["the baseline"] for Inception itself). */
  differences: string[];
}

/** The learning rate of the step that starts after `step` steps: lr0 · decay^⌊step / every⌋. */
export function learningRate(settings: Pick<RowSettings, "lr" | "lrDecay" | "lrDecayEvery">, step: number): number {
  return settings.lr * Math.pow(settings.lrDecay, Math.floor(step / settings.lrDecayEvery));
}

/** The settings of row `id` under `config`, and its differences from the Inception row. */
export function deriveRow(id: RowId, config: TableConfig): DerivedRow {
  const base: RowSettings = {
    bn: false,
    activation: "relu",
    lrn: config.lrn,
    dropout: config.dropout,
    lr: config.lr,
    momentum: config.momentum,
    weightDecay: config.weightDecay,
    lrDecay: config.lrDecay,
    lrDecayEvery: config.lrDecayEvery,
    distortion: config.distortion,
    shuffle: config.shuffle,
  };
  const a = config.accelerated;
  /** BN-Baseline plus all of §4.2.1, with the learning rate × `scale`. */
  const accelerated = (scale: number): [RowSettings, string[]] => [
    {
      ...base,
      bn: true,
      lr: base.lr * scale,
      dropout: 0,
      weightDecay: base.weightDecay / a.weightDecayDivisor,
      lrDecayEvery: Math.max(1, Math.round(base.lrDecayEvery / a.decaySpeedup)),
      lrn: false,
      shuffle: a.shuffle,
      distortion: a.distortion,
    },
    [
      "BN before every nonlinearity (convolutions without bias)",
      `learning rate × ${scale} (${fmt(base.lr * scale)})`,
      "Dropout removed",
      `L2 weight decay ÷ ${a.weightDecayDivisor} (${fmt(base.weightDecay / a.weightDecayDivisor)})`,
      `learning-rate decay ${a.decaySpeedup}× faster (× ${base.lrDecay} every ${Math.max(1, Math.round(base.lrDecayEvery / a.decaySpeedup))} steps instead of ${base.lrDecayEvery})`,
      "Local Response Normalization removed",
      `${shuffleWords(a.shuffle)} instead of ${shuffleWords(base.shuffle)}`,
      `photometric distortion strength ${a.distortion} instead of ${base.distortion}`,
    ],
  ];
  let settings: RowSettings;
  let differences: string[];
  switch (id) {
    case "inception":
      [settings, differences] = [base, ["the baseline"]];
      break;
    case "bn-baseline":
      [settings, differences] = [{ ...base, bn: true }, ["BN before every nonlinearity (convolutions without bias)"]];
      break;
    case "bn-x5":
      [settings, differences] = accelerated(5);
      break;
    case "bn-x30":
      [settings, differences] = accelerated(30);
      break;
    case "bn-x5-sigmoid": {
      const [s, d] = accelerated(5);
      [settings, differences] = [{ ...s, activation: "sigmoid" }, [...d, "sigmoid instead of ReLU"]];
      break;
    }
    case "inception-sigmoid":
      [settings, differences] = [{ ...base, activation: "sigmoid" }, ["sigmoid instead of ReLU (no BN)"]];
      break;
    default:
      throw new Error(`unknown row ${JSON.stringify(id)}; the rows are ${ROW_IDS.join(", ")}`);
  }
  const override = config.overrides[id];
  if (override !== undefined && Object.keys(override).length > 0) {
    settings = { ...settings, ...override };
    differences = [...differences, `set by the config file: ${Object.entries(override).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(", ")}`];
  }
  return { id, name: ROW_NAMES[id], settings, differences };
}

/** A shuffle mode in the paper's words. */
export function shuffleWords(mode: ShuffleMode): string {
  switch (mode) {
    case "fixed":
      return "fixed shards without within-shard shuffling";
    case "shard":
      return "within-shard shuffling";
    case "thorough":
      return "a global shuffle every epoch";
  }
}

function fmt(v: number): string {
  return Number(v.toPrecision(6)).toString();
}

/** Parse --rows: lower-case names separated by commas, each at most once. */
export function parseRows(text: string): RowId[] {
  const ids = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (ids.length === 0) throw new Error(`--rows needs at least one row of ${ROW_IDS.join(", ")}`);
  const out: RowId[] = [];
  for (const id of ids) {
    if (!(ROW_IDS as readonly string[]).includes(id)) {
      throw new Error(`--rows: unknown row "${id}"; choose from ${ROW_IDS.join(", ")} (lower case, separated by commas)`);
    }
    if (out.includes(id as RowId)) throw new Error(`--rows: "${id}" is listed twice`);
    out.push(id as RowId);
  }
  // The paper's order, whatever order they were given in.
  return ROW_IDS.filter((r) => out.includes(r));
}

const ROW_KEYS: readonly (keyof RowSettings)[] = [
  "bn", "activation", "lrn", "dropout", "lr", "momentum", "weightDecay", "lrDecay", "lrDecayEvery", "distortion", "shuffle",
];

/** Reject settings that cannot run, with a message that says which and why. `where` names the source ("--lr", "overrides.bn-x30.lr"). */
function checkRowSettings(s: Partial<RowSettings>, where: (key: string) => string): void {
  const bad = (key: string, what: string, v: unknown) => {
    throw new Error(`table: ${where(key)} must be ${what}; got ${JSON.stringify(v)}`);
  };
  if (s.bn !== undefined && typeof s.bn !== "boolean") bad("bn", "true or false", s.bn);
  if (s.activation !== undefined && s.activation !== "relu" && s.activation !== "sigmoid") bad("activation", `"relu" or "sigmoid"`, s.activation);
  if (s.lrn !== undefined && typeof s.lrn !== "boolean") bad("lrn", "true or false", s.lrn);
  if (s.dropout !== undefined && !(typeof s.dropout === "number" && s.dropout >= 0 && s.dropout < 1)) bad("dropout", "a probability in [0, 1)", s.dropout);
  if (s.lr !== undefined && !(typeof s.lr === "number" && s.lr > 0 && Number.isFinite(s.lr))) bad("lr", "a number > 0", s.lr);
  if (s.momentum !== undefined && !(typeof s.momentum === "number" && s.momentum >= 0 && s.momentum < 1)) bad("momentum", "in [0, 1)", s.momentum);
  if (s.weightDecay !== undefined && !(typeof s.weightDecay === "number" && s.weightDecay >= 0 && Number.isFinite(s.weightDecay))) bad("weightDecay", "a number ≥ 0", s.weightDecay);
  if (s.lrDecay !== undefined && !(typeof s.lrDecay === "number" && s.lrDecay > 0 && s.lrDecay <= 1)) bad("lrDecay", "a factor in (0, 1]", s.lrDecay);
  if (s.lrDecayEvery !== undefined && !(Number.isInteger(s.lrDecayEvery) && s.lrDecayEvery > 0)) bad("lrDecayEvery", "a positive whole number of steps", s.lrDecayEvery);
  if (s.distortion !== undefined && !(typeof s.distortion === "number" && s.distortion >= 0 && s.distortion <= 1)) bad("distortion", "a strength in [0, 1]", s.distortion);
  if (s.shuffle !== undefined && !SHUFFLE_MODES.includes(s.shuffle)) bad("shuffle", SHUFFLE_MODES.map((m) => `"${m}"`).join(", "), s.shuffle);
}

/** The config-key ↔ command-line-flag spelling, for messages: weightDecay → --weight-decay. */
export function flagOf(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Reject a configuration that cannot run, with a message naming the setting. */
export function validateTableConfig(c: TableConfig): void {
  const positiveInt = (key: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`table: ${flagOf(key)} must be a positive whole number; got ${JSON.stringify(v)}`);
  };
  positiveInt("steps", c.steps);
  positiveInt("evalEvery", c.evalEvery);
  positiveInt("batchSize", c.batchSize);
  positiveInt("crop", c.crop);
  if (c.evalEvery > c.steps) {
    throw new Error(`table: --eval-every (${c.evalEvery}) must be at most --steps (${c.steps}): the rows are measured every --eval-every steps`);
  }
  if (c.stemStride !== 1 && c.stemStride !== 2) throw new Error(`table: --stem-stride must be 1 or 2; got ${JSON.stringify(c.stemStride)}`);
  if (c.batchSize < 2) throw new Error("table: --batch-size must be at least 2 (BN needs two values per feature map)");
  if (c.crop > 32) throw new Error(`table: --crop must be at most 32 (CIFAR-10 images are 32×32); got ${c.crop}`);
  if (!Number.isFinite(c.seed)) throw new Error(`table: --seed must be a number; got ${c.seed}`);
  if (c.init !== "he" && c.init !== "default") throw new Error(`table: --init must be "he" or "default"; got ${JSON.stringify(c.init)}`);
  try {
    checkWidth(c.width);
  } catch (err) {
    throw new Error(`table: --width: ${(err as Error).message}`);
  }
  checkWorkers("table", c);
  checkRowSettings(c, flagOf);
  const a = c.accelerated;
  if (!(typeof a.weightDecayDivisor === "number" && a.weightDecayDivisor > 0)) {
    throw new Error(`table: --accel-l2-divisor must be a number > 0; got ${JSON.stringify(a.weightDecayDivisor)}`);
  }
  if (!(typeof a.decaySpeedup === "number" && a.decaySpeedup > 0)) {
    throw new Error(`table: --accel-decay-speedup must be a number > 0; got ${JSON.stringify(a.decaySpeedup)}`);
  }
  checkRowSettings({ distortion: a.distortion, shuffle: a.shuffle }, (k) => `--accel-${k}`);
  for (const [id, o] of Object.entries(c.overrides)) {
    if (!(ROW_IDS as readonly string[]).includes(id)) {
      throw new Error(`table: the config file's "overrides" names an unknown row "${id}"; the rows are ${ROW_IDS.join(", ")}`);
    }
    if (o === null || typeof o !== "object" || Array.isArray(o)) throw new Error(`table: overrides.${id} must be an object of row settings`);
    for (const k of Object.keys(o)) {
      if (!(ROW_KEYS as readonly string[]).includes(k)) {
        throw new Error(`table: overrides.${id}.${k} is not a row setting; the row settings are ${ROW_KEYS.join(", ")}`);
      }
    }
    checkRowSettings(o, (k) => `overrides.${id}.${k}`);
  }
}

/**
 * A config file's contents (JSON) merged over `base`, checked key by key so a
 * misspelt setting is an error rather than silently ignored. `file` names the
 * file in messages.
 */
export function mergeConfigFile(
  base: TableConfig,
  json: unknown,
  file: string,
): TableConfig & { rows?: RowId[]; limits?: { train?: number; validation?: number; test?: number } } {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new Error(`${file}: a table config file must hold one JSON object, e.g. {"steps": 3000, "width": 0.125, "overrides": {"bn-x30": {"lr": 0.2}}}`);
  }
  // table.json's config holds these too, so it can serve as a config file.
  const allowed = [...Object.keys(base), "rows", "limits"];
  const out: ReturnType<typeof mergeConfigFile> = { ...base, accelerated: { ...base.accelerated }, overrides: { ...base.overrides } };
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if (!allowed.includes(k)) throw new Error(`${file}: unknown setting "${k}"; the settings are ${allowed.join(", ")}`);
    if (k === "rows") {
      out.rows = parseRows(Array.isArray(v) ? v.join(",") : String(v));
    } else if (k === "limits") {
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${file}: "limits" must be an object such as {"train": 2000}`);
      for (const [lk, lv] of Object.entries(v)) {
        if (!["train", "validation", "test"].includes(lk) || !(Number.isInteger(lv) && (lv as number) >= 0)) {
          throw new Error(`${file}: limits.${lk} must be one of train, validation, test with a whole number of images ≥ 0; got ${JSON.stringify(lv)}`);
        }
      }
      out.limits = v as { train?: number; validation?: number; test?: number };
    } else if (k === "accelerated") {
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${file}: "accelerated" must be an object`);
      for (const [ak, av] of Object.entries(v)) {
        if (!(ak in base.accelerated)) {
          throw new Error(`${file}: unknown setting "accelerated.${ak}"; the settings are ${Object.keys(base.accelerated).join(", ")}`);
        }
        (out.accelerated as unknown as Record<string, unknown>)[ak] = av;
      }
    } else if (k === "overrides") {
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${file}: "overrides" must be an object of rows`);
      out.overrides = v as TableConfig["overrides"];
    } else {
      const expected = typeof (base as unknown as Record<string, unknown>)[k];
      if (typeof v !== expected) throw new Error(`${file}: "${k}" must be a ${expected}; got ${JSON.stringify(v)}`);
      (out as unknown as Record<string, unknown>)[k] = v;
    }
  }
  return out;
}
