/**
 * The shifted domains of `covshift adabn`, made from MNIST test images
 * (rows of 28×28 floats in [0, 1]). Each is a pure function of the images
 * (and, for noise, a seed), so a domain is the same on every run.
 */
import { Generator } from "../../tensor/random.js";

export type DomainName = "source" | "inverted" | "rotated" | "noise" | "faded";
export const DOMAINS: readonly DomainName[] = ["source", "inverted", "rotated", "noise", "faded"];

export interface DomainSettings {
  /** Rotation of the "rotated" domain, degrees counter-clockwise about the image centre. */
  rotateDegrees: number;
  /** Standard deviation of the Gaussian noise added to every pixel of the "noise" domain (not clipped). */
  noiseStd: number;
  /** Seed of the noise. */
  noiseSeed: number;
}

const SIDE = 28;
const PIXELS = SIDE * SIDE;

/** What each domain is, for the table and the README. */
export function describeDomain(name: DomainName, s: DomainSettings): string {
  switch (name) {
    case "source":
      return "the MNIST test images as trained on";
    case "inverted":
      return "x → 1 − x (black digits on white)";
    case "rotated":
      return `rotated ${s.rotateDegrees}° counter-clockwise about the centre, bilinear, 0 outside`;
    case "noise":
      return `x + N(0, ${s.noiseStd}²) per pixel (seed ${s.noiseSeed}), not clipped`;
    case "faded":
      return "x → 0.25 + 0.5·x (half the contrast on a grey background)";
  }
}

/** A copy of `images` (count × 784) moved to domain `name`. */
export function shiftImages(images: Float32Array, name: DomainName, s: DomainSettings): Float32Array {
  const out = new Float32Array(images.length);
  switch (name) {
    case "source":
      out.set(images);
      return out;
    case "inverted":
      for (let i = 0; i < images.length; i++) out[i] = 1 - images[i];
      return out;
    case "rotated": {
      const count = images.length / PIXELS;
      for (let n = 0; n < count; n++) rotate(images.subarray(n * PIXELS, (n + 1) * PIXELS), out.subarray(n * PIXELS, (n + 1) * PIXELS), s.rotateDegrees);
      return out;
    }
    case "noise": {
      const g = new Generator(s.noiseSeed);
      for (let i = 0; i < images.length; i++) out[i] = images[i] + s.noiseStd * g.normal();
      return out;
    }
    case "faded":
      for (let i = 0; i < images.length; i++) out[i] = 0.25 + 0.5 * images[i];
      return out;
  }
}

/**
 * Rotate one 28×28 image by `degrees` counter-clockwise (as seen with row 0
 * at the top) about its centre (13.5, 13.5): each output pixel samples the
 * input at the inversely rotated position, bilinearly; outside the image is 0.
 */
export function rotate(src: Float32Array, dst: Float32Array, degrees: number): void {
  const a = (degrees * Math.PI) / 180;
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  const c = (SIDE - 1) / 2;
  const at = (r: number, col: number) => (r >= 0 && r < SIDE && col >= 0 && col < SIDE ? src[r * SIDE + col] : 0);
  for (let r = 0; r < SIDE; r++) {
    for (let col = 0; col < SIDE; col++) {
      // (x right, y up) = (col − c, c − r); the source point is the output point rotated by −a.
      const x = col - c;
      const y = c - r;
      const sx = cos * x + sin * y;
      const sy = -sin * x + cos * y;
      const fc = sx + c;
      const fr = c - sy;
      const r0 = Math.floor(fr);
      const c0 = Math.floor(fc);
      const dr = fr - r0;
      const dc = fc - c0;
      dst[r * SIDE + col] =
        (1 - dr) * ((1 - dc) * at(r0, c0) + dc * at(r0, c0 + 1)) + dr * ((1 - dc) * at(r0 + 1, c0) + dc * at(r0 + 1, c0 + 1));
    }
  }
}
