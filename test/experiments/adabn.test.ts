/**
 * covshift adabn: the shifted domains (rotation checked against exact
 * quarter turns, inversion, seeded noise) and an end-to-end run on a slice of
 * MNIST through the CLI, with its errors.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rotate, shiftImages } from "../../src/experiments/adabn/domains.js";
import { assertAllClose } from "../allclose.js";
import { realData } from "../realData.js";

const MNIST = realData("mnist"); // the end-to-end run and the adapt-images check need ../shared/data/mnist
const settings = { rotateDegrees: 30, noiseStd: 0.5, noiseSeed: 1 };

function randomImage(seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: 784 }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648));
}

describe("adabn: shifted domains", () => {
  it("a rotation by 90° is the exact quarter turn (counter-clockwise), by 0° the identity", () => {
    const img = randomImage(7);
    const out = new Float32Array(784);
    rotate(img, out, 90);
    // counter-clockwise with row 0 at the top: out[r][c] = in[c][27 − r]
    const quarterTurn = Float32Array.from({ length: 784 }, (_, i) => img[(i % 28) * 28 + (27 - Math.floor(i / 28))]);
    assertAllClose({ shape: [28, 28], data: out }, { shape: [28, 28], data: quarterTurn }, { atol: 1e-5, rtol: 0 }, "rotated 90° vs out[r][c] = in[c][27 − r]");
    rotate(img, out, 0);
    assert.deepEqual(out, img);
  });

  it("inverted is 1 − x; noise is seeded (same seed, same images) and of the stated spread; source is a copy", () => {
    const imgs = new Float32Array([...randomImage(1), ...randomImage(2)]);
    const inv = shiftImages(imgs, "inverted", settings);
    for (let i = 0; i < imgs.length; i++) assert.equal(inv[i], Math.fround(1 - imgs[i]));
    const a = shiftImages(imgs, "noise", settings);
    assert.deepEqual(a, shiftImages(imgs, "noise", settings));
    assert.notDeepEqual(a, shiftImages(imgs, "noise", { ...settings, noiseSeed: 2 }));
    let ss = 0;
    for (let i = 0; i < imgs.length; i++) ss += (a[i] - imgs[i]) ** 2;
    assertAllClose(Math.sqrt(ss / imgs.length), 0.5, { atol: 0.03, rtol: 0 }, "noise spread (RMS change) vs --noise-std 0.5");
    const src = shiftImages(imgs, "source", settings);
    assert.deepEqual(src, imgs);
    assert.notEqual(src, imgs);
  });
});

describe("covshift adabn", () => {
  const run = (args: string[]) => spawnSync(process.execPath, ["bin/covshift.js", "adabn", ...args], { encoding: "utf8" });

  it("runs end to end on a slice of MNIST: the table, adabn.json and the picture", { skip: MNIST.skip }, () => {
    const out = mkdtempSync(join(tmpdir(), "covshift-adabn-"));
    try {
      const args = ["--data", MNIST.dir, "--steps", "60", "--train-limit", "600", "--test-limit", "400", "--adapt-images", "200", "--adapt-batch-size", "100", "--out", out, "--overwrite"];
      const r = run(args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /\| inverted \|/);
      const result = JSON.parse(readFileSync(join(out, "adabn.json"), "utf8"));
      assert.deepEqual(result.domains.map((d: { domain: string }) => d.domain), ["source", "inverted", "rotated", "noise", "faded"]);
      assert.equal(result.evalImages, 200);
      for (const d of result.domains) for (const k of ["before", "after"]) assert.ok(d[k] >= 0 && d[k] <= 1, `${d.domain} ${k}`);
      for (const f of ["summary.md", "adabn.svg", "adabn.png"]) assert.ok(existsSync(join(out, f)), f);
      const again = run(args.slice(0, -1));
      assert.equal(again.status, 1);
      assert.match(again.stderr, /already holds results.*--overwrite/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("bad options give a clear message and exit code 1", () => {
    const r2 = run(["--data", join(tmpdir(), "covshift-no-data"), "--no-download", "--noise-std", "-1", "--out", join(tmpdir(), "covshift-adabn-never")]);
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /--noise-std must be ≥ 0; got -1/);
  });

  it("--adapt-images that leaves no test image to evaluate gives a clear message and exit code 1", { skip: MNIST.skip }, () => {
    const r = run(["--data", MNIST.dir, "--test-limit", "100", "--adapt-images", "100", "--out", join(tmpdir(), "covshift-adabn-never")]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--adapt-images 100 leaves no test image to evaluate/);
  });
});
