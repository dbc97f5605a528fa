/**
 * A small Inception for 28×28 CIFAR-10 crops, built like the paper's
 * BN-Inception (§4.2 and its Figure 5): every module has a 1×1 branch, a
 * 1×1 → 3×3 branch, a 1×1 → 3×3 → 3×3 branch (the two 3×3 layers that replace
 * GoogLeNet's 5×5) and a pooling branch (3×3 pool, stride 1 → 1×1
 * projection); the two downsampling modules (3c, 4e) have a stride-2 3×3
 * branch, a stride-2 double-3×3 branch and a stride-2 3×3 max-pool passed
 * through. The stages follow the paper — two modules, a downsampling
 * module, four modules, another downsampling module, two modules — and so do
 * the channel counts, multiplied by `width` and rounded (at least 1). Only
 * the stem differs: ImageNet's 7×7/2 conv, pools and 3×3 conv become one 3×3
 * conv, since a CIFAR crop is already small. Global average pooling and one
 * linear layer (10 classes) close the network; there is no other
 * fully-connected layer, as in the paper.
 *
 * This is the paper's variant of the two-branch miniature measured in
 * PyTorch (../shared/REFERENCE_RUNS.md): the same stage layout, with
 * BN-Inception's four branches per module. At width 1/16 its module outputs
 * (16, 20, 36, 36, 36, 38, 38, 66, 64, 64 channels) are close to the
 * miniature's at width 0.25 (16, 20, 40, 40, 40, 40, 36, 60, 84, 84).
 *
 * The stem's stride sets the resolution of every stage: 1 keeps 28×28 for
 * modules 3a–3b (then 14×14, 7×7), as the miniature does; 2 runs them at
 * 14×14 (then 7×7, 4×4), which costs a third to a fifth as much per step and is
 * what the table uses by default (see rows.ts for why).
 *
 * Every convolution is a "unit": conv → [BN] → nonlinearity. With `bn`, BN
 * (per feature map, §3.2) sits before every nonlinearity of the network and
 * the convolutions drop their biases (β takes their place).
 *
 * At the default width 1/16 and stem stride 2 (channels of each branch, with
 * Figure 5's width-1 counts in parentheses):
 *
 * | layer | size in | 1×1 | 3×3 reduce → 3×3 | double-3×3 reduce → 3×3 → 3×3 | pool + projection | out |
 * |---|---|---|---|---|---|---|
 * | stem: conv 3×3, stride 2 | 28×28×3 | | | | | 12 (192) |
 * | LRN (baseline only) | 14×14 | | | | | 12 |
 * | 3a | 14×14 | 4 (64) | 4→4 (64→64) | 4→6→6 (64→96→96) | avg + 2 (32) | 16 |
 * | 3b | 14×14 | 4 (64) | 4→6 (64→96) | 4→6→6 (64→96→96) | avg + 4 (64) | 20 |
 * | 3c, stride 2 | 14×14 | — | 8→10 (128→160) | 4→6→6 (64→96→96) | max, 20 passed through | 36 |
 * | 4a | 7×7 | 14 (224) | 4→6 (64→96) | 6→8→8 (96→128→128) | avg + 8 (128) | 36 |
 * | 4b | 7×7 | 12 (192) | 6→8 (96→128) | 6→8→8 (96→128→128) | avg + 8 (128) | 36 |
 * | 4c | 7×7 | 10 (160) | 8→10 (128→160) | 8→10→10 (128→160→160) | avg + 8 (128) | 38 |
 * | 4d | 7×7 | 6 (96) | 8→12 (128→192) | 10→12→12 (160→192→192) | avg + 8 (128) | 38 |
 * | 4e, stride 2 | 7×7 | — | 8→12 (128→192) | 12→16→16 (192→256→256) | max, 38 passed through | 66 |
 * | 5a | 4×4 | 22 (352) | 12→20 (192→320) | 10→14→14 (160→224→224) | avg + 8 (128) | 64 |
 * | 5b | 4×4 | 22 (352) | 12→20 (192→320) | 12→14→14 (192→224→224) | max + 8 (128) | 64 |
 * | global avg pool, [Dropout], linear | 4×4×64 | | | | | 10 |
 *
 * Parameters at width 1/16: 41,726 with BN (convolutions without bias; γ and
 * β per feature map) and 41,108 without (a bias per feature map instead);
 * the stride changes no count. The test "parameter count at the default
 * width" recounts both by hand from Figure 5's channels.
 */
import { nn } from "../../index.js";
import { Generator } from "../../tensor/random.js";

/** The nonlinearity of every unit. */
export type Activation = "relu" | "sigmoid";

/** How the convolution weights start. */
export type InitScheme = "he" | "default";

export interface InceptionOptions {
  /** Multiplies every channel count of Figure 5 (rounded, at least 1). Default {@link DEFAULT_WIDTH}. */
  width?: number;
  /** BN before every nonlinearity, convolutions without bias. Default false. */
  bn?: boolean;
  /** Default "relu". */
  activation?: Activation;
  /** Local Response Normalization after the stem (the baseline has it, §4.2.1 removes it). Default false. */
  lrn?: boolean;
  /** Dropout probability before the final linear layer; 0 leaves the layer out. Default 0. */
  dropout?: number;
  /**
   * "he": convolution weights ~ N(0, 2/fan_in) (He et al. 2015) and biases 0 —
   * without BN the deep ReLU network needs it to train at all
   * (REFERENCE_RUNS). "default": PyTorch's default U(±1/sqrt(fan_in)).
   * The final linear layer keeps PyTorch's default either way. Default "he".
   */
  init?: InitScheme;
  /** Stride of the stem convolution: 1 keeps 28×28 for modules 3a–3b (as the PyTorch miniature), 2 halves every stage. Default 2. */
  stemStride?: number;
  /** Draws the initial weights. */
  generator?: Generator;
  /** Draws Dropout's masks; keep it to checkpoint its state. Default: the global generator. */
  dropoutGenerator?: Generator;
}

/** The width the table runs at unless told otherwise (see the module comment and rows.ts). */
export const DEFAULT_WIDTH = 1 / 16;

/** An Inception module of Figure 5 at width 1. */
export interface ModuleSpec {
  name: string;
  kind: "inception";
  /** 1×1 branch */
  b1: number;
  /** 1×1 reduction, then 3×3 */
  b3Reduce: number;
  b3: number;
  /** 1×1 reduction, then two 3×3 */
  d3Reduce: number;
  d3: number;
  /** 3×3 pool, stride 1, then a 1×1 projection */
  pool: "avg" | "max";
  poolProj: number;
}

/** A downsampling module of Figure 5 at width 1: stride-2 3×3 and double-3×3 branches, and a stride-2 max-pool passed through. */
export interface DownSpec {
  name: string;
  kind: "down";
  b3Reduce: number;
  b3: number;
  d3Reduce: number;
  d3: number;
}

/** The stem's output channels at width 1 (Figure 5: 28×28×192 enter module 3a). */
export const STEM_CHANNELS = 192;

/** BN-Inception's modules (the paper's Figure 5), in order, at width 1. */
export const FIGURE5_MODULES: readonly (ModuleSpec | DownSpec)[] = Object.freeze([
  { name: "3a", kind: "inception", b1: 64, b3Reduce: 64, b3: 64, d3Reduce: 64, d3: 96, pool: "avg", poolProj: 32 },
  { name: "3b", kind: "inception", b1: 64, b3Reduce: 64, b3: 96, d3Reduce: 64, d3: 96, pool: "avg", poolProj: 64 },
  { name: "3c", kind: "down", b3Reduce: 128, b3: 160, d3Reduce: 64, d3: 96 },
  { name: "4a", kind: "inception", b1: 224, b3Reduce: 64, b3: 96, d3Reduce: 96, d3: 128, pool: "avg", poolProj: 128 },
  { name: "4b", kind: "inception", b1: 192, b3Reduce: 96, b3: 128, d3Reduce: 96, d3: 128, pool: "avg", poolProj: 128 },
  { name: "4c", kind: "inception", b1: 160, b3Reduce: 128, b3: 160, d3Reduce: 128, d3: 160, pool: "avg", poolProj: 128 },
  { name: "4d", kind: "inception", b1: 96, b3Reduce: 128, b3: 192, d3Reduce: 160, d3: 192, pool: "avg", poolProj: 128 },
  { name: "4e", kind: "down", b3Reduce: 128, b3: 192, d3Reduce: 192, d3: 256 },
  { name: "5a", kind: "inception", b1: 352, b3Reduce: 192, b3: 320, d3Reduce: 160, d3: 224, pool: "avg", poolProj: 128 },
  { name: "5b", kind: "inception", b1: 352, b3Reduce: 192, b3: 320, d3Reduce: 192, d3: 224, pool: "max", poolProj: 128 },
] as const);

/** A channel count of Figure 5 at `width`: rounded, at least 1. */
export function scaled(channels: number, width: number): number {
  return Math.max(1, Math.round(channels * width));
}

/** The channels one module puts out at `width`, given the channels that enter it. */
export function moduleOutChannels(spec: ModuleSpec | DownSpec, inChannels: number, width: number): number {
  const s = (c: number) => scaled(c, width);
  return spec.kind === "inception"
    ? s(spec.b1) + s(spec.b3) + s(spec.d3) + s(spec.poolProj)
    : s(spec.b3) + s(spec.d3) + inChannels;
}

/** Named widths for --width. */
export const WIDTH_PRESETS: Readonly<Record<string, number>> = Object.freeze({
  tiny: 1 / 32,
  small: 1 / 16,
  medium: 1 / 8,
  large: 1 / 4,
});

/** --width: a number, or one of {@link WIDTH_PRESETS}. */
export function parseWidth(text: string): number {
  const preset = WIDTH_PRESETS[text];
  const width = preset ?? Number(text);
  if (text.trim() === "" || !Number.isFinite(width)) {
    throw new Error(`--width must be a number or one of ${Object.keys(WIDTH_PRESETS).join(", ")}; got "${text}"`);
  }
  checkWidth(width);
  return width;
}

export function checkWidth(width: number): void {
  if (!(width > 0) || !Number.isFinite(width) || width > 4) {
    throw new Error(`Inception: width must be a number in (0, 4] multiplying the paper's channel counts (${DEFAULT_WIDTH} is the default); got ${width}`);
  }
}

/**
 * The network described in the module comment, as a Sequential:
 * stem unit, [LRN], ten modules (nn.Concat of branches), global average
 * pool, flatten, [Dropout], linear. Each unit is a Sequential
 * (conv, [BN], nonlinearity), so state-dict keys read like PyTorch's, e.g.
 * "2.1.0.0.weight" = module 3a, branch 1, unit 0, its conv.
 */
export function buildInception(options: InceptionOptions = {}): nn.Sequential {
  const width = options.width ?? DEFAULT_WIDTH;
  checkWidth(width);
  const bn = options.bn ?? false;
  const activation = options.activation ?? "relu";
  if (activation !== "relu" && activation !== "sigmoid") {
    throw new Error(`Inception: activation must be "relu" or "sigmoid"; got ${JSON.stringify(activation)}`);
  }
  const init = options.init ?? "he";
  if (init !== "he" && init !== "default") throw new Error(`Inception: init must be "he" or "default"; got ${JSON.stringify(init)}`);
  const dropout = options.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`Inception: dropout must be a probability in [0, 1); got ${dropout}`);
  const generator = options.generator ?? new Generator(0);
  const s = (c: number) => scaled(c, width);

  /** conv → [BN] → nonlinearity, the conv without bias under BN. */
  const unit = (inC: number, outC: number, kernel: number, stride = 1): nn.Sequential => {
    const conv = new nn.Conv2d(inC, outC, kernel, { stride, padding: (kernel - 1) / 2, bias: !bn, generator });
    if (init === "he") {
      nn.init.kaimingNormal(conv.weight, { generator });
      if (conv.bias) nn.init.zeros(conv.bias);
    }
    const layers: nn.Module[] = [conv];
    if (bn) layers.push(new nn.BatchNorm2d(outC));
    layers.push(activation === "relu" ? new nn.ReLU() : new nn.Sigmoid());
    return new nn.Sequential(...layers);
  };

  const layers: nn.Module[] = [];
  let channels = s(STEM_CHANNELS);
  const stemStride = options.stemStride ?? 2;
  if (stemStride !== 1 && stemStride !== 2) throw new Error(`Inception: stemStride must be 1 or 2; got ${stemStride}`);
  layers.push(unit(3, channels, 3, stemStride));
  // GoogLeNet's LRN: 5 channels, α 1e-4, β 0.75, k 1.
  if (options.lrn) layers.push(new nn.LocalResponseNorm(5, { alpha: 1e-4, beta: 0.75, k: 1 }));
  for (const m of FIGURE5_MODULES) {
    if (m.kind === "inception") {
      const pool = m.pool === "avg"
        ? new nn.AvgPool2d(3, { stride: 1, padding: 1, countIncludePad: false })
        : new nn.MaxPool2d(3, { stride: 1, padding: 1 });
      layers.push(
        new nn.Concat(
          unit(channels, s(m.b1), 1),
          new nn.Sequential(unit(channels, s(m.b3Reduce), 1), unit(s(m.b3Reduce), s(m.b3), 3)),
          new nn.Sequential(unit(channels, s(m.d3Reduce), 1), unit(s(m.d3Reduce), s(m.d3), 3), unit(s(m.d3), s(m.d3), 3)),
          new nn.Sequential(pool, unit(channels, s(m.poolProj), 1)),
        ),
      );
    } else {
      layers.push(
        new nn.Concat(
          new nn.Sequential(unit(channels, s(m.b3Reduce), 1), unit(s(m.b3Reduce), s(m.b3), 3, 2)),
          new nn.Sequential(unit(channels, s(m.d3Reduce), 1), unit(s(m.d3Reduce), s(m.d3), 3), unit(s(m.d3), s(m.d3), 3, 2)),
          new nn.MaxPool2d(3, { stride: 2, padding: 1 }),
        ),
      );
    }
    channels = moduleOutChannels(m, channels, width);
  }
  layers.push(new nn.GlobalAvgPool2d(), new nn.Flatten());
  if (dropout > 0) layers.push(new nn.Dropout(dropout, { generator: options.dropoutGenerator }));
  layers.push(new nn.Linear(channels, 10, { generator }));
  return new nn.Sequential(...layers);
}

/** Number of trainable values (parameters; BN's running statistics are buffers and not counted). */
export function parameterCount(model: nn.Module): number {
  return model.parameters().reduce((n, p) => n + p.size, 0);
}
