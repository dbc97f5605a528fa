/**
 * Per-image operations of the CIFAR-10 input pipeline: per-channel
 * normalization, crops (random for training, center for evaluation),
 * horizontal flips and photometric distortions (brightness, contrast,
 * saturation). Images are CHW: the red, green, then blue plane, each
 * row-major. Bytes come in (0–255); floats go out. The random operations
 * draw from a {@link Generator} passed in, so a run is reproducible.
 *
 * Conventions, stated once:
 * - Distortions work on the 0–1 pixel scale (byte / 255), before
 *   normalization, as torchvision's `ColorJitter` does before `Normalize`.
 * - Channel statistics are on the same 0–1 scale, and normalization maps a
 *   value v to (v − mean_c) / std_c.
 * - Padding (crops reaching over the border) is black: 0 on the 0–1 scale,
 *   like torchvision's `RandomCrop(32, padding=4)` before `Normalize`.
 *
 * Pure TypeScript without `node:` imports: runs in browsers too.
 */
import type { Generator } from "../tensor/random.js";

const CHANNELS = 3;

/** Per-channel mean and standard deviation (R, G, B) on the 0–1 pixel scale. */
export interface ChannelStats {
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * The per-channel mean and (population) standard deviation of `count` CHW
 * byte images of `planeSize` (height × width) pixels, on the 0–1 scale.
 * Exact in double: a 256-bin histogram per channel, then mean and
 * Σ n_v (v − mean)² from the histogram (no one-pass E[x²] − E[x]²).
 */
export function channelStats(images: Uint8Array, count: number, planeSize = 32 * 32): ChannelStats {
  const imageSize = CHANNELS * planeSize;
  if (!Number.isInteger(count) || count < 1 || images.length < count * imageSize) {
    throw new Error(
      `channelStats needs count ≥ 1 images of ${CHANNELS} × ${planeSize} bytes (${imageSize} each); ` +
        `got count ${count} and ${images.length} bytes`,
    );
  }
  const hist = new Float64Array(CHANNELS * 256);
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < CHANNELS; c++) {
      const from = i * imageSize + c * planeSize;
      const h = c * 256;
      for (let p = from; p < from + planeSize; p++) hist[h + images[p]]++;
    }
  }
  const n = count * planeSize;
  const mean: [number, number, number] = [0, 0, 0];
  const std: [number, number, number] = [0, 0, 0];
  for (let c = 0; c < CHANNELS; c++) {
    let sum = 0;
    for (let v = 0; v < 256; v++) sum += hist[c * 256 + v] * (v / 255);
    const m = sum / n;
    let ss = 0;
    for (let v = 0; v < 256; v++) ss += hist[c * 256 + v] * (v / 255 - m) ** 2;
    mean[c] = m;
    std[c] = Math.sqrt(ss / n);
  }
  return { mean, std };
}

/**
 * A table of what each byte value becomes, per channel: entry c·256 + v.
 * Crops read pixels through it, so scaling and normalization cost nothing
 * extra; entry c·256 + 0 (black) is also the padding value.
 */
export type PixelTable = Float32Array;

/** v ↦ v / 255 in every channel. */
export function unitTable(): PixelTable {
  const t = new Float32Array(CHANNELS * 256);
  for (let c = 0; c < CHANNELS; c++) for (let v = 0; v < 256; v++) t[c * 256 + v] = v / 255;
  return t;
}

/** v ↦ (v / 255 − mean_c) / std_c: normalization straight from bytes. */
export function normalizeTable(mean: ArrayLike<number>, std: ArrayLike<number>): PixelTable {
  checkStats(mean, std);
  const t = new Float32Array(CHANNELS * 256);
  for (let c = 0; c < CHANNELS; c++) for (let v = 0; v < 256; v++) t[c * 256 + v] = (v / 255 - mean[c]) / std[c];
  return t;
}

/**
 * dst[i] = (src[i] / 255 − mean_c) / std_c for whole CHW byte images
 * (`src.length` a multiple of 3 × `planeSize`); dst has src's length.
 */
export function normalizeInto(
  src: Uint8Array,
  dst: Float32Array,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
  planeSize = 32 * 32,
): void {
  if (src.length % (CHANNELS * planeSize) !== 0 || dst.length !== src.length) {
    throw new Error(
      `normalizeInto needs whole images of ${CHANNELS} × ${planeSize} bytes and a destination of the same length; ` +
        `got ${src.length} bytes and a destination of ${dst.length}`,
    );
  }
  const table = normalizeTable(mean, std);
  for (let p = 0; p < src.length; p += planeSize) {
    const h = ((p / planeSize) % CHANNELS) * 256;
    for (let i = p; i < p + planeSize; i++) dst[i] = table[h + src[i]];
  }
}

/**
 * x ↦ (x − mean_c) / std_c in place, for one or more CHW float images on the
 * 0–1 scale (used after distortions, which need the 0–1 scale).
 */
export function normalizeInPlace(
  img: Float32Array,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
  planeSize: number,
): void {
  checkStats(mean, std);
  for (let p = 0; p < img.length; p += planeSize) {
    const c = (p / planeSize) % CHANNELS;
    const m = mean[c];
    const inv = 1 / std[c];
    for (let i = p; i < p + planeSize; i++) img[i] = (img[i] - m) * inv;
  }
}

function checkStats(mean: ArrayLike<number>, std: ArrayLike<number>): void {
  for (let c = 0; c < CHANNELS; c++) {
    if (!Number.isFinite(mean[c]) || !(std[c] > 0) || !Number.isFinite(std[c])) {
      throw new Error(
        `channel ${c} statistics must be a finite mean and a positive std; got mean ${mean[c]}, std ${std[c]} ` +
          `(a channel with std 0 is constant in the data the statistics came from)`,
      );
    }
  }
}

/**
 * A crop window in the coordinates of the unpadded image: rows
 * top … top+crop−1 and columns left … left+crop−1, which may reach over the
 * border (those pixels are padding). With `flip`, the window's columns are
 * read right to left: the crop of the horizontally mirrored image.
 */
export interface CropWindow {
  top: number;
  left: number;
  flip: boolean;
}

/**
 * A uniformly random crop×crop window of a size×size image padded by `pad`
 * on every side: top and left each uniform over −pad … size+pad−crop (every
 * offset equally likely); with `flip`, mirrored with probability 0.5.
 * Draws top, left, then (only with `flip`) the coin. Writes into `out`.
 */
export function randomWindow(
  size: number,
  crop: number,
  pad: number,
  flip: boolean,
  gen: Generator,
  out: CropWindow = { top: 0, left: 0, flip: false },
): CropWindow {
  const offsets = size + 2 * pad - crop + 1;
  if (offsets < 1) throw new Error(`a ${crop}×${crop} crop does not fit a ${size}×${size} image padded by ${pad}`);
  out.top = gen.randint(offsets) - pad;
  out.left = gen.randint(offsets) - pad;
  out.flip = flip && gen.uniform() < 0.5;
  return out;
}

/**
 * The centered crop×crop window, unflipped: top = left = ⌊(size − crop)/2⌋
 * (for 28 of 32: rows and columns 2 … 29, two pixels off each side).
 */
export function centerWindow(
  size: number,
  crop: number,
  out: CropWindow = { top: 0, left: 0, flip: false },
): CropWindow {
  out.top = out.left = Math.floor((size - crop) / 2);
  out.flip = false;
  return out;
}

const UNIT_TABLE = unitTable();

/**
 * Writes the window `win` of the CHW byte image at `src[srcAt …]`
 * (size×size per plane) into `dst` (3 × crop × crop floats), each byte v of
 * channel c read through `table[c·256 + v]`, pixels outside the image as
 * black (`table[c·256]`). The default table gives the 0–1 scale.
 */
export function cropInto(
  dst: Float32Array,
  crop: number,
  src: Uint8Array,
  size: number,
  win: CropWindow,
  table: PixelTable = UNIT_TABLE,
  srcAt = 0,
): void {
  const { top, left, flip } = win;
  const plane = size * size;
  for (let c = 0; c < CHANNELS; c++) {
    const t = c * 256;
    const black = table[t];
    for (let y = 0; y < crop; y++) {
      const row = c * crop * crop + y * crop;
      const sy = top + y;
      if (sy < 0 || sy >= size) {
        dst.fill(black, row, row + crop);
        continue;
      }
      const srcRow = srcAt + c * plane + sy * size;
      // scalar math: dst[row + x] = table[src[srcRow + sx]], sx = left + x (or left + crop − 1 − x when flipped)
      if (!flip && left >= 0 && left + crop <= size) {
        for (let x = 0; x < crop; x++) dst[row + x] = table[t + src[srcRow + left + x]];
      } else {
        for (let x = 0; x < crop; x++) {
          const sx = flip ? left + crop - 1 - x : left + x;
          dst[row + x] = sx < 0 || sx >= size ? black : table[t + src[srcRow + sx]];
        }
      }
    }
  }
}

/** The random parameters of one {@link distortInPlace} call. */
export interface DistortionParams {
  /** δ added to every pixel. */
  brightness: number;
  /** Factor on each channel's deviation from its mean. */
  contrast: number;
  /** Factor on each pixel's deviation from its gray value. */
  saturation: number;
}

/** How far full strength (s = 1) reaches: brightness ±0.4, contrast and saturation ×(1 ± 0.4). */
export const MAX_JITTER = 0.4;

/**
 * Random photometric distortions of one CHW float image on the 0–1 scale,
 * in place, with strength s ∈ [0, 1] (1 ↔ REFERENCE_RUNS' ±0.4 Inception
 * jitter, 0.25 ↔ BN-x5's ±0.1), always in this order, each clamped to [0, 1]:
 *
 * 1. brightness: x ← x + δ, δ ~ U(−0.4s, 0.4s);
 * 2. contrast: x_c ← m_c + f (x_c − m_c), f ~ U(1 − 0.4s, 1 + 0.4s), m_c the
 *    channel's mean over the image (per channel, as TensorFlow's
 *    `adjust_contrast`);
 * 3. saturation: x_c ← g + f' (x_c − g), f' ~ U(1 − 0.4s, 1 + 0.4s), g the
 *    pixel's gray value 0.299 R + 0.587 G + 0.114 B.
 *
 * Bounds: the output is in [0, 1]; each step moves a pixel by at most 0.4s
 * (|δ|, |f − 1|·|x − m|, |f' − 1|·|x − g| with x, m, g ∈ [0, 1]; clamping,
 * a projection onto [0, 1], moves it no farther), so the whole distortion
 * moves a pixel by at most 1.2s. s = 0 draws nothing and leaves `img`
 * untouched (exactly the identity). The drawn parameters go to `out`.
 */
export function distortInPlace(img: Float32Array, strength: number, gen: Generator, out?: DistortionParams): void {
  const p = drawDistortion(strength, gen, out ?? { brightness: 0, contrast: 1, saturation: 1 });
  if (strength === 0) return;
  adjustBrightness(img, p.brightness);
  adjustContrast(img, p.contrast);
  adjustSaturation(img, p.saturation);
}

/**
 * The random parameters of one distortion at strength s, into `out`: δ, f
 * and f' drawn in that order (nothing drawn at s = 0: δ 0, f = f' = 1).
 */
function drawDistortion(strength: number, gen: Generator, out: DistortionParams): DistortionParams {
  if (!(strength >= 0 && strength <= 1)) throw new Error(`distortion strength must be in [0, 1]; got ${strength}`);
  if (strength === 0) {
    out.brightness = 0;
    out.contrast = out.saturation = 1;
    return out;
  }
  const r = MAX_JITTER * strength;
  out.brightness = -r + 2 * r * gen.uniform();
  out.contrast = 1 - r + 2 * r * gen.uniform();
  out.saturation = 1 - r + 2 * r * gen.uniform();
  return out;
}

/** distortAndNormalizeInPlace's parameters, reused from image to image. */
const drawn: DistortionParams = { brightness: 0, contrast: 1, saturation: 1 };

/**
 * distortInPlace(img, strength, gen) followed by normalizeInPlace(img, mean,
 * std, plane) with the same bits — the same draws, the same double
 * operations on the same float32 values — in two passes over the image
 * instead of six: brightness with the channel sums contrast needs, then
 * contrast, saturation and normalization per pixel. The training pipeline's
 * per-example work (it ran at ~7 ns a value in six passes).
 */
export function distortAndNormalizeInPlace(
  img: Float32Array,
  strength: number,
  gen: Generator,
  mean: ArrayLike<number>,
  std: ArrayLike<number>,
): void {
  checkStats(mean, std);
  const { brightness, contrast, saturation } = drawDistortion(strength, gen, drawn);
  const plane = img.length / CHANNELS;
  if (strength === 0) {
    normalizeInPlace(img, mean, std, plane);
    return;
  }
  // Brightness, stored as float32, and each channel's mean of the stored values (adjustContrast's m_c).
  let mR = 0;
  let mG = 0;
  let mB = 0;
  for (let c = 0; c < CHANNELS; c++) {
    const from = c * plane;
    let sum = 0;
    for (let i = from; i < from + plane; i++) {
      const v = Math.fround(clamp01(img[i] + brightness));
      img[i] = v;
      sum += v;
    }
    const m = sum / plane;
    if (c === 0) mR = m;
    else if (c === 1) mG = m;
    else mB = m;
  }
  const invR = 1 / std[0];
  const invG = 1 / std[1];
  const invB = 1 / std[2];
  const meanR = mean[0];
  const meanG = mean[1];
  const meanB = mean[2];
  for (let i = 0; i < plane; i++) {
    // contrast (each value rounded to float32, as adjustContrast stores it)
    const cr = Math.fround(clamp01(mR + contrast * (img[i] - mR)));
    const cg = Math.fround(clamp01(mG + contrast * (img[plane + i] - mG)));
    const cb = Math.fround(clamp01(mB + contrast * (img[2 * plane + i] - mB)));
    // saturation (rounded as adjustSaturation stores it), then normalization
    const gray = 0.299 * cr + 0.587 * cg + 0.114 * cb;
    img[i] = (Math.fround(clamp01(gray + saturation * (cr - gray))) - meanR) * invR;
    img[plane + i] = (Math.fround(clamp01(gray + saturation * (cg - gray))) - meanG) * invG;
    img[2 * plane + i] = (Math.fround(clamp01(gray + saturation * (cb - gray))) - meanB) * invB;
  }
}

/** x ← clamp(x + delta, 0, 1) for every value of a 0–1 image. */
export function adjustBrightness(img: Float32Array, delta: number): void {
  for (let i = 0; i < img.length; i++) img[i] = clamp01(img[i] + delta);
}

/** x_c ← clamp(m_c + factor·(x_c − m_c), 0, 1), m_c the mean of channel c, for one CHW 0–1 image. */
export function adjustContrast(img: Float32Array, factor: number): void {
  const plane = img.length / CHANNELS;
  for (let c = 0; c < CHANNELS; c++) {
    const from = c * plane;
    let sum = 0;
    for (let i = from; i < from + plane; i++) sum += img[i];
    const m = sum / plane;
    for (let i = from; i < from + plane; i++) img[i] = clamp01(m + factor * (img[i] - m));
  }
}

/** x_c ← clamp(g + factor·(x_c − g), 0, 1), g = 0.299 R + 0.587 G + 0.114 B per pixel, for one CHW 0–1 image. */
export function adjustSaturation(img: Float32Array, factor: number): void {
  const plane = img.length / CHANNELS;
  for (let i = 0; i < plane; i++) {
    const r = img[i];
    const g = img[plane + i];
    const b = img[2 * plane + i];
    const gray = 0.299 * r + 0.587 * g + 0.114 * b;
    img[i] = clamp01(gray + factor * (r - gray));
    img[plane + i] = clamp01(gray + factor * (g - gray));
    img[2 * plane + i] = clamp01(gray + factor * (b - gray));
  }
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}
