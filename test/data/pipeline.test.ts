import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  adjustBrightness,
  adjustContrast,
  adjustSaturation,
  centerWindow,
  channelStats,
  cropInto,
  distortInPlace,
  normalizeInPlace,
  normalizeInto,
  normalizeTable,
  randomWindow,
  type CropWindow,
  type DistortionParams,
  distortAndNormalizeInPlace,
} from "../../src/data/augment.js";
import { BatchSampler, type BatchSamplerOptions, type ShuffleMode } from "../../src/data/batches.js";
import { loadCifar10, type CifarSplit } from "../../src/data/cifar10.js";
import { CifarPipeline, evalBatches, type CifarPipelineOptions } from "../../src/data/pipeline.js";
import { Generator } from "../../src/tensor/random.js";
import { assertAllClose } from "../allclose.js";
import { realData } from "../realData.js";

const CIFAR = realData("cifar10"); // the last test reads ../shared/data/cifar10
const IMAGE = 3 * 32 * 32;

/**
 * `count` random 32 × 32 CHW byte images whose channels differ in spread
 * (R uniform over 0–255, G over 60–159, B skewed dark) and whose first red
 * byte is the image's index, so a batch's images can be identified.
 */
function syntheticSplit(count: number, seed = 1): CifarSplit {
  const g = new Generator(seed);
  const images = new Uint8Array(count * IMAGE);
  for (let i = 0; i < count; i++) {
    for (let p = 0; p < 1024; p++) {
      images[i * IMAGE + p] = g.randint(256);
      images[i * IMAGE + 1024 + p] = 60 + g.randint(100);
      images[i * IMAGE + 2048 + p] = Math.floor(255 * g.uniform() ** 2);
    }
    images[i * IMAGE] = i % 256;
  }
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  return { images, labels, count };
}

/** Per-channel mean and population std (in double) of CHW float images with `plane` pixels per channel. */
function floatStats(x: Float32Array, plane: number): { mean: number[]; std: number[] } {
  const mean = [0, 0, 0];
  const std = [0, 0, 0];
  const n = x.length / 3;
  for (let p = 0; p < x.length; p += plane) {
    const c = (p / plane) % 3;
    for (let i = p; i < p + plane; i++) mean[c] += x[i] / n;
  }
  for (let p = 0; p < x.length; p += plane) {
    const c = (p / plane) % 3;
    for (let i = p; i < p + plane; i++) std[c] += (x[i] - mean[c]) ** 2 / n;
  }
  return { mean, std: std.map(Math.sqrt) };
}

/** A 0–1 CHW float image of `side` × `side` with random pixels. */
function randomUnitImage(side: number, g: Generator): Float32Array {
  return Float32Array.from({ length: 3 * side * side }, () => g.uniform());
}

/** Collects `n` batches of a sampler as plain arrays. */
function take(s: BatchSampler, n: number): number[][] {
  return Array.from({ length: n }, () => Array.from(s.next()));
}

describe("per-channel normalization", () => {
  it("channelStats equals a direct two-pass mean and population std on the 0–1 scale", () => {
    const split = syntheticSplit(20);
    const stats = channelStats(split.images, split.count);
    const direct = floatStats(Float32Array.from(split.images, (v) => v / 255), 1024);
    // Both in double; the only difference is summation order (and float32 storage of v/255: ≤ 3e-8 relative).
    assertAllClose(stats.mean, direct.mean, { atol: 1e-7, rtol: 0 }, "per-channel mean vs direct two-pass");
    assertAllClose(stats.std, direct.std, { atol: 1e-7, rtol: 0 }, "per-channel std vs direct two-pass");
    // The three synthetic channels really differ, so a channel mix-up would show.
    assert.ok(stats.std[0] > 0.28 && stats.std[1] < 0.12, JSON.stringify(stats));
  });

  it("normalizeInto gives per-channel mean ≈ 0 and std ≈ 1 on the images the statistics came from", () => {
    const split = syntheticSplit(50);
    const stats = channelStats(split.images, split.count);
    const x = new Float32Array(split.images.length);
    normalizeInto(split.images, x, stats.mean, stats.std);
    const got = floatStats(x, 1024);
    // float32 outputs averaged in double: error ~1e-7 per value, far below 1e-5.
    assertAllClose(got.mean, [0, 0, 0], { atol: 1e-5, rtol: 0 }, "per-channel mean after normalizing");
    assertAllClose(got.std, [1, 1, 1], { atol: 1e-5, rtol: 0 }, "per-channel std after normalizing");
  });

  it("refuses statistics with a zero std, saying why", () => {
    assert.throws(() => normalizeTable([0.5, 0.5, 0.5], [0.2, 0, 0.2]), /channel 1 .*positive std.*constant/);
  });
});

describe("crops and flips", () => {
  const split = syntheticSplit(1);
  const image = split.images;
  /** The 0–1 value of channel c at (y, x) of the test image, or 0 (black) outside it. */
  const pixel = (c: number, y: number, x: number) => (y < 0 || y >= 32 || x < 0 || x >= 32 ? 0 : image[c * 1024 + y * 32 + x] / 255);

  function assertWindow(dst: Float32Array, crop: number, win: CropWindow): void {
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < crop; y++) {
        for (let x = 0; x < crop; x++) {
          const sx = win.flip ? win.left + crop - 1 - x : win.left + x;
          assert.equal(dst[c * crop * crop + y * crop + x], Math.fround(pixel(c, win.top + y, sx)), `(${c}, ${y}, ${x}) of ${JSON.stringify(win)}`);
        }
      }
    }
  }

  it("center crop of 28 from 32 is rows and columns 2 … 29, unflipped", () => {
    const win = centerWindow(32, 28);
    assert.deepEqual(win, { top: 2, left: 2, flip: false });
    const dst = new Float32Array(3 * 28 * 28);
    cropInto(dst, 28, image, 32, win);
    assertWindow(dst, 28, win);
    assert.equal(dst[0], Math.fround(image[2 * 32 + 2] / 255));
  });

  it("random 28-of-32 crops copy exactly their window, lie inside the image, and every one of the 5 × 5 offsets occurs about equally often", () => {
    const g = new Generator(3);
    const counts = new Map<string, number>();
    const dst = new Float32Array(3 * 28 * 28);
    const draws = 2500;
    for (let k = 0; k < draws; k++) {
      const win = randomWindow(32, 28, 0, false, g);
      assert.ok(win.top >= 0 && win.left >= 0 && win.top + 28 <= 32 && win.left + 28 <= 32, JSON.stringify(win));
      counts.set(`${win.top},${win.left}`, (counts.get(`${win.top},${win.left}`) ?? 0) + 1);
      if (k < 50) {
        cropInto(dst, 28, image, 32, win);
        assertWindow(dst, 28, win);
      }
    }
    assert.equal(counts.size, 25);
    // Binomial(2500, 1/25): mean 100, sd 9.8; ±45 is beyond 4.5 sd (whole counts: |n − 100| < 45 is ≤ 44).
    assertAllClose([...counts.values()], new Array(counts.size).fill(100), { atol: 44, rtol: 0 }, `draws of each offset (${[...counts.keys()].join(" ")})`);
  });

  it("random 32 crops with pad 4 reach every offset −4 … 4 and read the padding as black", () => {
    const g = new Generator(4);
    const tops = new Set<number>();
    const lefts = new Set<number>();
    const dst = new Float32Array(3 * 32 * 32);
    for (let k = 0; k < 500; k++) {
      const win = randomWindow(32, 32, 4, true, g);
      tops.add(win.top);
      lefts.add(win.left);
      if (k < 30) {
        cropInto(dst, 32, image, 32, win);
        assertWindow(dst, 32, win);
      }
    }
    assert.deepEqual([...tops].sort((a, b) => a - b), [-4, -3, -2, -1, 0, 1, 2, 3, 4]);
    assert.deepEqual([...lefts].sort((a, b) => a - b), [-4, -3, -2, -1, 0, 1, 2, 3, 4]);
    // Through a normalizing table, black padding becomes −mean/std.
    const table = normalizeTable([0.5, 0.4, 0.3], [0.25, 0.2, 0.1]);
    cropInto(dst, 32, image, 32, { top: -4, left: -4, flip: false }, table);
    assert.deepEqual([dst[0], dst[1024], dst[2048]], [-2, -2, -3].map(Math.fround));
  });

  it("a flip mirrors every row of the crop exactly, and the coin comes up heads about half the time", () => {
    const plain = new Float32Array(3 * 28 * 28);
    const flipped = new Float32Array(3 * 28 * 28);
    for (const [top, left] of [[0, 0], [1, 3], [4, 4]]) {
      cropInto(plain, 28, image, 32, { top, left, flip: false });
      cropInto(flipped, 28, image, 32, { top, left, flip: true });
      for (let row = 0; row < 3 * 28; row++) {
        const a = Array.from(plain.subarray(row * 28, (row + 1) * 28)).reverse();
        assert.deepEqual(Array.from(flipped.subarray(row * 28, (row + 1) * 28)), a, `row ${row} at (${top}, ${left})`);
      }
    }
    const g = new Generator(5);
    let heads = 0;
    const n = 4000;
    for (let k = 0; k < n; k++) if (randomWindow(32, 28, 0, true, g).flip) heads++;
    // Binomial(4000, 0.5): sd 0.0079 in proportion; ±0.035 is beyond 4 sd (|heads − 2000| < 140, whole counts: ≤ 139).
    assertAllClose(heads, n / 2, { atol: 139, rtol: 0 }, `flips in ${n}`);
    // Without flip, never.
    for (let k = 0; k < 100; k++) assert.equal(randomWindow(32, 28, 0, false, g).flip, false);
  });
});

describe("photometric distortions", () => {
  it("strength 0 is exactly the identity and draws nothing from the generator", () => {
    const g = new Generator(6);
    const img = randomUnitImage(28, g);
    const before = img.slice();
    const state = g.getState();
    distortInPlace(img, 0, g);
    assert.deepEqual(img, before);
    assert.deepEqual(g.getState(), state);
  });

  for (const [strength, reach] of [
    [1, 0.4],
    [0.25, 0.1],
  ]) {
    it(`strength ${strength} draws brightness within ±${reach} and factors within 1 ± ${reach}, keeps pixels in [0, 1], moves none by more than ${3 * reach}, and changes every image`, () => {
      const g = new Generator(7);
      const p: DistortionParams = { brightness: 0, contrast: 0, saturation: 0 };
      const seen = { bMin: 1, bMax: -1, cMin: 2, cMax: 0, sMin: 2, sMax: 0 };
      for (let k = 0; k < 300; k++) {
        const img = randomUnitImage(12, g);
        // Some images near the clamping edges too.
        if (k % 3 === 1) img.forEach((v, i) => (img[i] = v * 0.1));
        if (k % 3 === 2) img.forEach((v, i) => (img[i] = 0.9 + v * 0.1));
        const before = img.slice();
        distortInPlace(img, strength, g, p);
        assert.ok(Math.abs(p.brightness) <= reach && Math.abs(p.contrast - 1) <= reach && Math.abs(p.saturation - 1) <= reach, JSON.stringify(p));
        seen.bMin = Math.min(seen.bMin, p.brightness);
        seen.bMax = Math.max(seen.bMax, p.brightness);
        seen.cMin = Math.min(seen.cMin, p.contrast);
        seen.cMax = Math.max(seen.cMax, p.contrast);
        seen.sMin = Math.min(seen.sMin, p.saturation);
        seen.sMax = Math.max(seen.sMax, p.saturation);
        let moved = 0;
        for (let i = 0; i < img.length; i++) {
          assert.ok(img[i] >= 0 && img[i] <= 1, `pixel ${i} = ${img[i]}`);
          // Bound 3 × 0.4s; float32 rounding of the three steps adds < 1e-6.
          assert.ok(Math.abs(img[i] - before[i]) <= 3 * reach + 1e-6, `pixel ${i} moved ${img[i] - before[i]}`);
          moved = Math.max(moved, Math.abs(img[i] - before[i]));
        }
        assert.ok(moved > 0, "the image did not change");
      }
      // The draws span their ranges (uniform: 300 draws land within 5% of each end).
      assert.ok(seen.bMin < -0.9 * reach && seen.bMax > 0.9 * reach, JSON.stringify(seen));
      assert.ok(seen.cMin < 1 - 0.9 * reach && seen.cMax > 1 + 0.9 * reach, JSON.stringify(seen));
      assert.ok(seen.sMin < 1 - 0.9 * reach && seen.sMax > 1 + 0.9 * reach, JSON.stringify(seen));
    });
  }

  it("is brightness, then contrast around each channel's mean, then saturation around the gray value, each clamped to [0, 1]", () => {
    const g = new Generator(8);
    const img = randomUnitImage(4, g);
    const p: DistortionParams = { brightness: 0, contrast: 0, saturation: 0 };
    const distorted = img.slice();
    distortInPlace(distorted, 1, new Generator(9), p);
    // The same by the formulas, in double, on 16-pixel planes.
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    let x = Array.from(img, (v) => clamp(v + p.brightness));
    const means = [0, 1, 2].map((c) => x.slice(c * 16, (c + 1) * 16).reduce((s, v) => s + v, 0) / 16);
    x = x.map((v, i) => clamp(means[Math.floor(i / 16)] + p.contrast * (v - means[Math.floor(i / 16)])));
    const gray = Array.from({ length: 16 }, (_, i) => 0.299 * x[i] + 0.587 * x[16 + i] + 0.114 * x[32 + i]);
    x = x.map((v, i) => clamp(gray[i % 16] + p.saturation * (v - gray[i % 16])));
    // float32 storage between steps: agreement to 1e-6.
    assertAllClose(distorted, x, { atol: 1e-6, rtol: 0 }, "distorted image vs brightness, contrast, saturation by hand");
  });

  it("saturation 0 makes every pixel gray; contrast 0 flattens each channel to its mean; brightness +1 saturates to white", () => {
    const g = new Generator(10);
    const a = randomUnitImage(5, g);
    adjustSaturation(a, 0);
    assertAllClose(a.subarray(25, 50), a.subarray(0, 25), { atol: 1e-7, rtol: 0 }, "saturation 0: green plane = red plane");
    assertAllClose(a.subarray(50, 75), a.subarray(0, 25), { atol: 1e-7, rtol: 0 }, "saturation 0: blue plane = red plane");
    const b = randomUnitImage(5, g);
    const meanR = b.subarray(0, 25).reduce((s, v) => s + v, 0) / 25;
    adjustContrast(b, 0);
    for (let i = 0; i < 25; i++) assert.equal(b[i], Math.fround(meanR));
    const c = randomUnitImage(5, g);
    adjustBrightness(c, 1);
    assert.ok(c.every((v) => v === 1));
  });
});

describe("batch samplers: thorough, shard, fixed", () => {
  const base = { batchSize: 16, seed: 11 } as const;

  it("thorough visits every example exactly once per epoch, in a different order each epoch", () => {
    const s = new BatchSampler({ ...base, count: 320, mode: "thorough" });
    assert.equal(s.batchesPerEpoch, 20);
    const epochs = [0, 1, 2].map(() => take(s, 20).flat());
    for (const e of epochs) assert.deepEqual([...e].sort((a, b) => a - b), Array.from({ length: 320 }, (_, i) => i));
    assert.notDeepEqual(epochs[0], epochs[1]);
    assert.notDeepEqual(epochs[1], epochs[2]);
    assert.equal(s.epoch, 2);
  });

  it("every mode drops the incomplete last batch (floor(N/B) batches of B distinct examples per epoch); thorough leaves out different examples each epoch", () => {
    for (const mode of ["thorough", "shard", "fixed"] as ShuffleMode[]) {
      const s = new BatchSampler({ ...base, count: 333, mode, shardSize: 64 });
      assert.equal(s.batchesPerEpoch, 20, mode);
      for (let e = 0; e < 2; e++) {
        const seen = take(s, 20).flat();
        assert.equal(new Set(seen).size, 320, `${mode}: 320 distinct examples in epoch ${e}`);
      }
    }
    const s = new BatchSampler({ ...base, count: 333, mode: "thorough" });
    const leftOut = [0, 1, 2].map(() => {
      const seen = new Set(take(s, 20).flat());
      return Array.from({ length: 333 }, (_, i) => i).filter((i) => !seen.has(i));
    });
    assert.equal(leftOut[0].length, 13);
    assert.notDeepEqual(leftOut[0], leftOut[1]);
  });

  it("fixed repeats the same batches in the same order every epoch", () => {
    const s = new BatchSampler({ ...base, count: 333, mode: "fixed" });
    const first = take(s, 20);
    assert.deepEqual(take(s, 20), first);
    assert.deepEqual(take(s, 20), first);
    // One seeded shuffle, not the file order.
    assert.notDeepEqual(first.flat(), Array.from({ length: 320 }, (_, i) => i));
  });

  it("shard: every batch lies within one shard, shards keep their members, and an example only ever meets the others of its own shard", () => {
    const s = new BatchSampler({ ...base, count: 1000, mode: "shard", shardSize: 128 });
    const shardOf = s.shardOf();
    const sizes = new Map<number, number>();
    for (const k of shardOf) sizes.set(k, (sizes.get(k) ?? 0) + 1);
    // 7 shards of 128 and the rest, 104.
    assert.deepEqual([...sizes.values()].sort((a, b) => a - b), [104, 128, 128, 128, 128, 128, 128, 128]);
    const met = Array.from({ length: 1000 }, () => new Set<number>());
    const shardSequences: number[][] = [];
    for (let e = 0; e < 6; e++) {
      const seq: number[] = [];
      for (const batch of take(s, s.batchesPerEpoch)) {
        const k = shardOf[batch[0]];
        for (const i of batch) assert.equal(shardOf[i], k, `batch ${JSON.stringify(batch)} mixes shards`);
        for (const i of batch) for (const j of batch) if (i !== j) met[i].add(j);
        seq.push(k);
      }
      shardSequences.push(seq);
    }
    assert.deepEqual(s.shardOf(), shardOf, "the shard layout changed");
    for (let i = 0; i < 1000; i++) {
      assert.ok(met[i].size <= sizes.get(shardOf[i])! - 1);
      for (const j of met[i]) assert.equal(shardOf[j], shardOf[i]);
    }
    // The shards are visited in a new order each epoch.
    assert.notDeepEqual(shardSequences[0], shardSequences[1]);
  });

  it("shard mode makes pairs meet again across epochs far more often than thorough, each as (B−1)/(S−1) and (B−1)/(N−1) predict (measured)", () => {
    const N = 2048;
    const B = 16;
    const S = 128;
    const E = 8;
    /** Of all pair meetings in epochs 1 … E−1, the fraction whose pair had already met in an earlier epoch. */
    function repeatRate(mode: ShuffleMode): number {
      const s = new BatchSampler({ count: N, batchSize: B, mode, shardSize: S, seed: 12 });
      const met = new Uint8Array(N * N);
      let meetings = 0;
      let repeats = 0;
      for (let e = 0; e < E; e++) {
        const fresh: number[] = [];
        for (let b = 0; b < s.batchesPerEpoch; b++) {
          const batch = s.next();
          for (let u = 0; u < B; u++) {
            for (let v = u + 1; v < B; v++) {
              const key = Math.min(batch[u], batch[v]) * N + Math.max(batch[u], batch[v]);
              if (e > 0) {
                meetings++;
                if (met[key]) repeats++;
              }
              fresh.push(key);
            }
          }
        }
        for (const key of fresh) met[key] = 1;
      }
      return repeats / meetings;
    }
    /** The same fraction if a pair meets independently with probability p each epoch. */
    const theory = (p: number) => {
      let sum = 0;
      for (let e = 1; e < E; e++) sum += 1 - (1 - p) ** e;
      return sum / (E - 1);
    };
    const thorough = repeatRate("thorough");
    const shard = repeatRate("shard");
    const fixed = repeatRate("fixed");
    const msg = `repeat rates: thorough ${thorough.toFixed(4)} (theory ${theory((B - 1) / (N - 1)).toFixed(4)}), ` +
      `shard ${shard.toFixed(4)} (theory ${theory((B - 1) / (S - 1)).toFixed(4)}), fixed ${fixed}`;
    // ~107,000 meetings per mode: the measured rates sit within a few % of theory; 15% allows for chance.
    assertAllClose(thorough, theory((B - 1) / (N - 1)), { atol: 0, rtol: 0.15 }, `thorough: ${msg}`);
    assertAllClose(shard, theory((B - 1) / (S - 1)), { atol: 0, rtol: 0.15 }, `shard: ${msg}`);
    assert.ok(shard > 10 * thorough, msg);
    assert.equal(fixed, 1, msg);
  });

  it("the same seed gives the same batches and another seed different ones, in every mode", () => {
    for (const mode of ["thorough", "shard", "fixed"] as ShuffleMode[]) {
      const opts: BatchSamplerOptions = { ...base, count: 500, mode, shardSize: 64 };
      assert.deepEqual(take(new BatchSampler(opts), 70), take(new BatchSampler(opts), 70), mode);
      assert.notDeepEqual(take(new BatchSampler({ ...opts, seed: 12 }), 70), take(new BatchSampler(opts), 70), mode);
    }
  });

  it("setState(getState()) through JSON, mid-epoch, continues with identical batches across epoch boundaries, in every mode", () => {
    for (const mode of ["thorough", "shard", "fixed"] as ShuffleMode[]) {
      const opts: BatchSamplerOptions = { ...base, count: 500, mode, shardSize: 64 };
      const a = new BatchSampler(opts);
      take(a, 31 + 7); // epoch 1, batch 7 (31 batches per epoch)
      const saved = JSON.stringify(a.getState());
      const expected = take(a, 80);
      const b = new BatchSampler(opts);
      b.setState(JSON.parse(saved));
      assert.deepEqual(take(b, 80), expected, mode);
      assert.deepEqual(take(BatchSampler.fromState(JSON.parse(saved)), 80), expected, `${mode} fromState`);
    }
  });

  it("refuses a shard size that is not a whole number of batches, and a checkpoint of other options, saying what to do", () => {
    assert.throws(() => new BatchSampler({ ...base, count: 500, mode: "shard", shardSize: 100 }), /multiple of batchSize 16.*Try 96/);
    const state = new BatchSampler({ ...base, count: 500, mode: "thorough" }).getState();
    assert.throws(() => new BatchSampler({ ...base, count: 500, mode: "fixed" }).setState(state), /mode "thorough".*"fixed"/);
  });
});

describe("CifarPipeline", () => {
  const split = syntheticSplit(200);
  const options: CifarPipelineOptions = { batchSize: 16, crop: 28, flip: true, distortion: 1, shuffle: "shard", shardSize: 64, seed: 13 };

  it("with crop 32, no pad, flip or distortion, a batch is exactly the normalized images of its examples and their labels", () => {
    const p = new CifarPipeline(split, { ...options, crop: 32, flip: false, distortion: 0, shuffle: "thorough" });
    assert.deepEqual(p.shape, [16, 3, 32, 32]);
    const all = new Float32Array(split.images.length);
    normalizeInto(split.images, all, p.stats.mean, p.stats.std);
    const table = normalizeTable(p.stats.mean, p.stats.std);
    const seen = new Set<number>();
    for (let k = 0; k < p.batchesPerEpoch; k++) {
      const { x, y } = p.nextBatch();
      assert.equal(x.length, 16 * IMAGE);
      for (let b = 0; b < 16; b++) {
        // The first red byte of image i is i: find it back through the table.
        const i = table.subarray(0, 256).indexOf(x[b * IMAGE]);
        assert.ok(i >= 0);
        seen.add(i);
        assert.deepEqual(x.subarray(b * IMAGE, (b + 1) * IMAGE), all.subarray(i * IMAGE, (i + 1) * IMAGE));
        assert.equal(y[b], split.labels[i]);
      }
    }
    assert.equal(seen.size, 192);
  });

  it("normalizes with the training statistics: per-channel mean ≈ 0 and std ≈ 1 over an epoch of undistorted full crops", () => {
    const p = new CifarPipeline(split, { ...options, crop: 32, distortion: 0, shuffle: "fixed" });
    const xs = new Float32Array(p.batchesPerEpoch * 16 * IMAGE);
    for (let k = 0; k < p.batchesPerEpoch; k++) xs.set(p.nextBatch().x, k * 16 * IMAGE);
    const got = floatStats(xs, 1024);
    // 192 of the 200 images (8 dropped): close to, not exactly, 0 and 1.
    assertAllClose(got.mean, [0, 0, 0], { atol: 0.01, rtol: 0 }, "per-channel mean over an epoch");
    assertAllClose(got.std, [1, 1, 1], { atol: 0.01, rtol: 0 }, "per-channel std over an epoch");
  });

  it("the same seed gives bit-identical batches; another seed different crops and a different order", () => {
    const a = new CifarPipeline(split, options);
    const b = new CifarPipeline(split, options);
    const c = new CifarPipeline(split, { ...options, seed: 14 });
    for (let k = 0; k < 30; k++) {
      const ba = a.nextBatch();
      const bb = b.nextBatch();
      assert.deepEqual(ba.x, bb.x);
      assert.deepEqual(ba.y, bb.y);
      assert.notDeepEqual(c.nextBatch().x, ba.x);
    }
  });

  it("setState(getState()) through JSON, mid-epoch, continues with bit-identical batches (crop 28, flip, distortion 1, every shuffle mode)", () => {
    for (const shuffle of ["thorough", "shard", "fixed"] as ShuffleMode[]) {
      const opts = { ...options, shuffle };
      const a = new CifarPipeline(split, opts);
      for (let k = 0; k < 17; k++) a.nextBatch(); // epoch 1, batch 5 (12 per epoch)
      const saved = JSON.stringify(a.getState());
      const expected = Array.from({ length: 20 }, () => {
        const { x, y } = a.nextBatch();
        return { x: x.slice(), y: y.slice() };
      });
      const b = new CifarPipeline(split, opts);
      b.nextBatch(); // state that setState must overwrite
      b.setState(JSON.parse(saved));
      for (const e of expected) {
        const { x, y } = b.nextBatch();
        assert.deepEqual(x, e.x, shuffle);
        assert.deepEqual(y, e.y, shuffle);
      }
    }
  });

  it("setState refuses a checkpoint of a pipeline with other options", () => {
    const state = new CifarPipeline(split, options).getState();
    const other = new CifarPipeline(split, { ...options, distortion: 0.25 });
    assert.throws(() => other.setState(state), /checkpoint's options/);
  });

  it("nextBatch refills the same output arrays every call", () => {
    const p = new CifarPipeline(split, options);
    const first = p.nextBatch();
    const { x, y } = first;
    const before = x.slice();
    const second = p.nextBatch();
    assert.equal(second, first);
    assert.equal(second.x, x);
    assert.equal(second.y, y);
    assert.notDeepEqual(x, before);
  });

  it("distortion 1 batches stay within the normalized images of [0, 1] pixels and differ from distortion 0 batches", () => {
    const p1 = new CifarPipeline(split, options);
    const p0 = new CifarPipeline(split, { ...options, distortion: 0 });
    const { mean, std } = p1.stats;
    for (let k = 0; k < 12; k++) {
      const x1 = p1.nextBatch().x;
      const x0 = p0.nextBatch().x;
      for (let i = 0; i < x1.length; i++) {
        const c = Math.floor(i / 784) % 3;
        // Normalized 0 and 1, with float32 slack.
        assert.ok(x1[i] >= -mean[c] / std[c] - 1e-5 && x1[i] <= (1 - mean[c]) / std[c] + 1e-5, `value ${i}: ${x1[i]}`);
      }
      assert.notDeepEqual(x1, x0);
    }
  });

  it("evalBatches yields every example once, in order, center-cropped and normalized with the training statistics, the last batch short", () => {
    const p = new CifarPipeline(split, options);
    const heldOut = syntheticSplit(37, 99);
    const table = normalizeTable(p.stats.mean, p.stats.std);
    const expected = new Float32Array(3 * 28 * 28);
    const counts: number[] = [];
    let i = 0;
    for (const { x, y, count } of p.evalBatches(heldOut)) {
      counts.push(count);
      assert.equal(x.length, count * 3 * 28 * 28);
      for (let b = 0; b < count; b++, i++) {
        cropInto(expected, 28, heldOut.images, 32, { top: 2, left: 2, flip: false }, table, i * IMAGE);
        assert.deepEqual(x.subarray(b * 2352, (b + 1) * 2352), expected);
        assert.equal(y[b], heldOut.labels[i]);
      }
    }
    assert.deepEqual(counts, [16, 16, 5]);
    // The standalone function with the same statistics gives the same.
    const standalone = [...evalBatches(heldOut, { stats: p.stats, crop: 28, batchSize: 37 })];
    assert.equal(standalone.length, 1);
  });

  it(
    "on the first 200 real CIFAR-10 training images: statistics near CIFAR-10's, and distorted 28×28 batches that are finite, in range and labelled 0–9",
    { skip: CIFAR.skip },
    async () => {
      const train = await loadCifar10(CIFAR.dir, "train", { limit: 200, download: false });
      const p = new CifarPipeline(train, { batchSize: 64, crop: 28, flip: true, distortion: 1, shuffle: "thorough", seed: 0 });
      // Full training set: mean (0.491, 0.482, 0.447), std (0.247, 0.243, 0.262); 200 images land within ±0.04.
      const full = { mean: [0.491, 0.482, 0.447], std: [0.247, 0.243, 0.262] };
      assertAllClose(p.stats.mean, full.mean, { atol: 0.04, rtol: 0 }, "per-channel mean of 200 images vs the full training set's");
      assertAllClose(p.stats.std, full.std, { atol: 0.04, rtol: 0 }, "per-channel std of 200 images vs the full training set's");
      assert.equal(p.batchesPerEpoch, 3);
      for (let k = 0; k < 6; k++) {
        const { x, y } = p.nextBatch();
        assert.ok(x.every(Number.isFinite));
        for (let i = 0; i < x.length; i++) {
          const c = Math.floor(i / 784) % 3;
          assert.ok(x[i] >= -p.stats.mean[c] / p.stats.std[c] - 1e-5 && x[i] <= (1 - p.stats.mean[c]) / p.stats.std[c] + 1e-5);
        }
        assert.ok(y.every((v) => v >= 0 && v <= 9));
      }
      let n = 0;
      for (const b of p.evalBatches(train)) n += b.count;
      assert.equal(n, 200);
    },
  );
});

describe("distortAndNormalizeInPlace (the training pipeline's fused pass)", () => {
  it("gives the bits of distortInPlace then normalizeInPlace, and leaves the generator in the same state, at every strength, clamping included", () => {
    const stats = { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] };
    const plane = 28 * 28;
    for (const strength of [0, 0.1, 0.25, 0.7, 1]) {
      for (let trial = 0; trial < 5; trial++) {
        const seed = 1000 * trial + Math.round(strength * 100);
        const src = new Generator(seed);
        // Values across [0, 1], with runs at 0 and 1 so that every clamp is reached.
        const img = Float32Array.from({ length: 3 * plane }, (_, i) => (i % 97 < 10 ? 0 : i % 89 < 10 ? 1 : src.uniform()));
        const a = img.slice();
        const b = img.slice();
        const ga = new Generator(seed + 7);
        const gb = new Generator(seed + 7);
        distortInPlace(a, strength, ga);
        normalizeInPlace(a, stats.mean, stats.std, plane);
        distortAndNormalizeInPlace(b, strength, gb, stats.mean, stats.std);
        assert.deepEqual(new Uint32Array(b.buffer), new Uint32Array(a.buffer), `strength ${strength}, trial ${trial}: the same bits`);
        assert.deepEqual(gb.getState(), ga.getState(), "the same draws");
      }
    }
    assert.throws(() => distortAndNormalizeInPlace(new Float32Array(3), 1.5, new Generator(0), stats.mean, stats.std), /distortion strength must be in \[0, 1\]; got 1.5/);
    assert.throws(() => distortAndNormalizeInPlace(new Float32Array(3), 1, new Generator(0), stats.mean, [1, 0, 1]), /channel 1 statistics must be a finite mean and a positive std/);
  });
});
