import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { resolveDataDir } from "../../src/data/datadir.js";
import { parseIdx, readIdxFile } from "../../src/data/idx.js";
import { loadMnist, mnistToFloat, MNIST_MIRRORS } from "../../src/data/mnist.js";
import { fakeFetch, fakeMnistImages, gzip, idxBytes, makeTempDir, offlineFetch, removeTempDirs } from "./helpers.js";
import { realData } from "../realData.js";
import { describeOrSkip } from "../skip.js";

const MNIST = realData("mnist"); // the mirror fallback and "the real MNIST files" need ../shared/data/mnist

after(removeTempDirs);

/** A folder holding a tiny MNIST-format split; each file written through `encode`. */
function writeSplit(
  dir: string,
  split: "train" | "t10k",
  images: Uint8Array,
  labels: Uint8Array,
  opts: { encode?: (b: Uint8Array) => Uint8Array; imagesName?: string; labelsName?: string; count?: number } = {},
): { imagesPath: string; labelsPath: string } {
  const encode = opts.encode ?? gzip;
  const imagesPath = path.join(dir, opts.imagesName ?? `${split}-images-idx3-ubyte.gz`);
  const labelsPath = path.join(dir, opts.labelsName ?? `${split}-labels-idx1-ubyte.gz`);
  fs.writeFileSync(imagesPath, encode(idxBytes(2051, [opts.count ?? labels.length, 28, 28], images)));
  fs.writeFileSync(labelsPath, encode(idxBytes(2049, [labels.length], labels)));
  return { imagesPath, labelsPath };
}

const raw = (b: Uint8Array) => b;

describe("loadMnist on tiny files in the real format", () => {
  const images = fakeMnistImages(3);
  const labels = Uint8Array.from([5, 0, 9]);

  it("reads gzipped files to exactly the bytes that were written", async () => {
    const dir = makeTempDir();
    writeSplit(dir, "train", images, labels);
    const got = await loadMnist(dir, "train", { download: false });
    assert.deepEqual(
      { count: got.count, rows: got.rows, cols: got.cols, labels: got.labels, images: got.images },
      { count: 3, rows: 28, cols: 28, labels, images },
    );
  });

  it("reads uncompressed files named without .gz to the same bytes", async () => {
    const dir = makeTempDir();
    writeSplit(dir, "t10k", images, labels, {
      encode: raw,
      imagesName: "t10k-images-idx3-ubyte",
      labelsName: "t10k-labels-idx1-ubyte",
    });
    const got = await loadMnist(dir, "test", { download: false });
    assert.deepEqual(got.images, images);
    assert.deepEqual(got.labels, labels);
  });

  it("detects gzip by content: a gzipped file under a mirror's dotted, .gz-less name still parses", async () => {
    const dir = makeTempDir();
    writeSplit(dir, "train", images, labels, {
      imagesName: "train-images.idx3-ubyte",
      labelsName: "train-labels.idx1-ubyte",
    });
    const got = await loadMnist(dir, "train", { download: false });
    assert.deepEqual(got.images, images);
  });

  it("limit keeps only the first examples, as plain Uint8Arrays of exactly that length", async () => {
    const dir = makeTempDir();
    writeSplit(dir, "train", images, labels);
    const got = await loadMnist(dir, "train", { download: false, limit: 2 });
    assert.equal(got.count, 2);
    assert.deepEqual(got.labels, Uint8Array.from([5, 0]));
    assert.deepEqual(got.images, images.subarray(0, 2 * 784));
    assert.equal(got.images.buffer.byteLength, 2 * 784);
    await assert.rejects(loadMnist(dir, "train", { download: false, limit: -1 }), /limit must be a whole number/);
  });

  it("rejects a truncated image file, naming the file and saying it is truncated", async () => {
    const dir = makeTempDir();
    const { imagesPath } = writeSplit(dir, "train", images.subarray(0, 2 * 784 + 100), labels, { encode: raw });
    await assert.rejects(loadMnist(dir, "train", { download: false }), (err: Error) => {
      assert.ok(err.message.includes(imagesPath), err.message);
      assert.match(err.message, /promises 3 × 28 × 28 = 2352 bytes of data, but only 1668 follow: the file is truncated/);
      assert.match(err.message, /re-download it or delete it/);
      return true;
    });
  });

  it("rejects a gzip stream cut short, naming the file", async () => {
    const dir = makeTempDir();
    const { imagesPath } = writeSplit(dir, "train", images, labels);
    const whole = fs.readFileSync(imagesPath);
    fs.writeFileSync(imagesPath, whole.subarray(0, whole.length - 20));
    await assert.rejects(loadMnist(dir, "train", { download: false }), (err: Error) => {
      assert.ok(err.message.includes(imagesPath), err.message);
      assert.match(err.message, /gzip-compressed .* does not decompress .* truncated or damaged/);
      return true;
    });
  });

  it("rejects bytes appended after the data the header describes", async () => {
    const dir = makeTempDir();
    const { labelsPath } = writeSplit(dir, "train", images, labels, { encode: raw });
    fs.appendFileSync(labelsPath, Uint8Array.from([1, 2, 3, 4]));
    await assert.rejects(
      loadMnist(dir, "train", { download: false }),
      (err: Error) => err.message.includes(labelsPath) && /4 extra bytes follow/.test(err.message),
    );
  });

  it("rejects a label file where the image file belongs, by its magic number", async () => {
    const dir = makeTempDir();
    const imagesPath = path.join(dir, "train-images-idx3-ubyte");
    writeSplit(dir, "train", images, labels);
    fs.writeFileSync(imagesPath, idxBytes(2049, [3], labels));
    fs.rmSync(`${imagesPath}.gz`);
    await assert.rejects(loadMnist(dir, "train", { download: false }), (err: Error) => {
      assert.ok(err.message.includes(imagesPath), err.message);
      assert.match(err.message, /expected IDX magic number 2051 .* starts with 2049/);
      return true;
    });
  });

  it("says a web page saved under the data file's name looks like a web page", async () => {
    const dir = makeTempDir();
    writeSplit(dir, "train", images, labels, { encode: raw, labelsName: "train-labels-idx1-ubyte" });
    fs.writeFileSync(path.join(dir, "train-labels-idx1-ubyte"), "<!DOCTYPE html><html>Access denied</html>");
    await assert.rejects(loadMnist(dir, "train", { download: false }), /looks like a web page/);
  });

  it("rejects image and label files of different counts, naming both files and both counts", async () => {
    const dir = makeTempDir();
    const { imagesPath, labelsPath } = writeSplit(dir, "train", images, labels.subarray(0, 2), { count: 3 });
    await assert.rejects(loadMnist(dir, "train", { download: false }), (err: Error) => {
      assert.ok(err.message.includes(imagesPath) && err.message.includes(labelsPath), err.message);
      assert.match(err.message, /holds 3 images but .* holds 2 labels/);
      return true;
    });
  });

  it("rejects a label outside 0–9, naming the file, the position and the value", async () => {
    const dir = makeTempDir();
    const { labelsPath } = writeSplit(dir, "train", images, Uint8Array.from([5, 10, 9]));
    await assert.rejects(loadMnist(dir, "train", { download: false }), (err: Error) => {
      assert.ok(err.message.includes(labelsPath), err.message);
      assert.match(err.message, /label #1 is 10, but MNIST labels are digits 0–9/);
      return true;
    });
  });

  it("rejects images that are not 28 × 28", async () => {
    const dir = makeTempDir();
    writeSplit(dir, "train", images, labels);
    fs.writeFileSync(path.join(dir, "train-images-idx3-ubyte.gz"), gzip(idxBytes(2051, [3, 4, 4], new Uint8Array(48))));
    await assert.rejects(loadMnist(dir, "train", { download: false }), /holds 4 × 4 images, but MNIST images are 28 × 28/);
  });
});

describe("the generic IDX parser", () => {
  it("parses any number of dimensions, not just MNIST's", async () => {
    const dir = makeTempDir();
    const file = path.join(dir, "grid.idx");
    fs.writeFileSync(file, gzip(idxBytes(0x0802, [2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6]))));
    const got = await readIdxFile(file);
    assert.deepEqual(got.dims, [2, 3]);
    assert.deepEqual(got.data, Uint8Array.from([1, 2, 3, 4, 5, 6]));
  });

  it("refuses element types other than unsigned bytes and headers that are not IDX", () => {
    assert.throws(() => parseIdx(idxBytes(0x0d01, [1], new Uint8Array(4)), "floats.idx"), /floats\.idx: holds IDX 32-bit floats/);
    assert.throws(() => parseIdx(Uint8Array.from([9, 9, 9, 9, 0]), "junk.bin"), /junk\.bin: does not start with an IDX header/);
    assert.throws(() => parseIdx(Uint8Array.from([0, 0]), "tiny.idx"), /tiny\.idx: is 2 bytes long/);
  });
});

describe("downloading missing MNIST files", () => {
  it("with download: false, names the missing files, the folder and both ways to point elsewhere, without fetching", async () => {
    const dir = makeTempDir();
    const { fetchImpl, urls } = offlineFetch();
    await assert.rejects(loadMnist(dir, "test", { download: false, fetchImpl }), (err: Error) => {
      assert.match(err.message, /t10k-images-idx3-ubyte\.gz, t10k-labels-idx1-ubyte\.gz missing from/);
      assert.ok(err.message.includes(`put these files into ${dir}`), err.message);
      assert.match(err.message, /--data DIR/);
      assert.match(err.message, /COVSHIFT_DATA/);
      return true;
    });
    assert.deepEqual(urls, []);
  });

  it("lists every missing file of both splits at once, so one message says all there is to put in the folder", async () => {
    const dir = makeTempDir();
    const { fetchImpl } = offlineFetch();
    await assert.rejects(loadMnist(dir, "train", { download: false, fetchImpl }), (err: Error) => {
      assert.match(err.message, /train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz missing from .* \(and t10k-images-idx3-ubyte\.gz, t10k-labels-idx1-ubyte\.gz of the test split\)/);
      const listed = err.message.split("\n").filter((l) => /^ {6}\S+\.gz {2}\(md5/.test(l));
      assert.equal(listed.length, 4, err.message);
      return true;
    });
  });

  it("offline, tries every mirror, then says exactly which files to put in which folder", async () => {
    const dir = makeTempDir();
    const { fetchImpl, urls } = offlineFetch();
    await assert.rejects(loadMnist(dir, "test", { fetchImpl }), (err: Error) => {
      assert.match(err.message, /downloading failed/);
      assert.match(err.message, /ENOTFOUND/);
      assert.ok(err.message.includes(`put these files into ${dir}:`), err.message);
      assert.match(err.message, /t10k-images-idx3-ubyte\.gz {2}\(md5 9fb629c4189551a2d022fa330f9573f3/);
      assert.match(err.message, /t10k-labels-idx1-ubyte\.gz {2}\(md5 ec29112dd5afa0611ce80d1b7f02629c/);
      assert.match(err.message, /--data DIR/);
      assert.match(err.message, /COVSHIFT_DATA=DIR/);
      return true;
    });
    assert.deepEqual(urls, MNIST_MIRRORS.map((m) => `${m}t10k-images-idx3-ubyte.gz`));
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("rejects bytes with the wrong md5 from every mirror and leaves no file, not even a temporary one", async () => {
    const dir = makeTempDir();
    const { fetchImpl, urls } = fakeFetch(() => gzip(idxBytes(2049, [1], Uint8Array.from([3]))));
    await assert.rejects(
      loadMnist(dir, "test", { fetchImpl }),
      /served bytes with md5 [0-9a-f]{32}, expected 9fb629c4189551a2d022fa330f9573f3 \(wrong or damaged file\)/,
    );
    assert.equal(urls.length, MNIST_MIRRORS.length);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("falls back to the second mirror after an HTTP error, saves the verified files under their canonical names, and loads them", { skip: MNIST.skip }, async () => {
    const real = MNIST.dir;
    const dir = path.join(makeTempDir(), "not", "yet", "there");
    const { fetchImpl, urls } = fakeFetch((url) =>
      url.startsWith(MNIST_MIRRORS[0]) ? 404 : fs.readFileSync(path.join(real, path.basename(url))),
    );
    const got = await loadMnist(dir, "test", { fetchImpl, limit: 3 });
    assert.equal(got.count, 3);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]);
    const md5 = crypto.createHash("md5").update(fs.readFileSync(path.join(dir, "t10k-labels-idx1-ubyte.gz")));
    assert.equal(md5.digest("hex"), "ec29112dd5afa0611ce80d1b7f02629c");
    assert.equal(urls.length, 4);
    // Present files are used as they are: no second download.
    await loadMnist(dir, "test", { fetchImpl, limit: 1 });
    assert.equal(urls.length, 4);
  });
});

describeOrSkip("the real MNIST files in ../shared/data/mnist", { skip: MNIST.skip }, () => {
  it("the first training example is a 5, and limit gives 28 × 28 bytes per image with ink and background", async () => {
    const got = await loadMnist(MNIST.dir, "train", { download: false, limit: 10 });
    assert.equal(got.count, 10);
    assert.equal(got.labels.length, 10);
    assert.equal(got.images.length, 10 * 28 * 28);
    assert.deepEqual([...got.labels], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    const first = got.images.subarray(0, 784);
    assert.equal(Math.min(...first), 0);
    assert.equal(Math.max(...first), 255);
  });

  it("the unlimited test split has 10,000 images with the known digit frequencies", async () => {
    const got = await loadMnist(MNIST.dir, "test", { download: false });
    assert.equal(got.count, 10000);
    assert.equal(got.images.length, 10000 * 784);
    const freq = new Array(10).fill(0);
    for (const d of got.labels) freq[d]++;
    assert.deepEqual(freq, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  });
});

describe("mnistToFloat", () => {
  const pixels = Uint8Array.from([0, 51, 127, 128, 255]);

  it("scaled divides by 255 into [0, 1]", () => {
    assert.deepEqual([...mnistToFloat(pixels, "scaled")], [0, Math.fround(0.2), Math.fround(127 / 255), Math.fround(128 / 255), 1]);
  });

  it("binary maps pixels >= 128 to 1 and the rest to 0", () => {
    assert.deepEqual([...mnistToFloat(pixels, "binary")], [0, 0, 0, 1, 1]);
  });

  it("every byte value of every mode gives the bits of the per-pixel expression (the table lookup changes nothing); shared puts them in a SharedArrayBuffer", () => {
    const all = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256);
    const expected = {
      scaled: (v: number) => v / 255,
      binary: (v: number) => (v >= 128 ? 1 : 0),
      standardized: (v: number) => (v / 255 - 0.1307) / 0.3081,
    };
    for (const mode of ["scaled", "binary", "standardized"] as const) {
      for (const shared of [false, true]) {
        const out = mnistToFloat(all, mode, { shared });
        assert.equal(out.buffer instanceof SharedArrayBuffer, shared, `${mode}: shared ${shared}`);
        assert.deepEqual([...out], [...Float32Array.from(all, expected[mode])], `${mode}`);
      }
    }
    assert.throws(() => mnistToFloat(all, "raw" as never), /mnistToFloat: mode must be "scaled", "binary", "standardized"; got "raw"/);
  });
});

describe("resolveDataDir", () => {
  const home = "/home/ada";

  it("uses the --data flag over COVSHIFT_DATA: the folder itself, or its mnist/ sub-folder when there is one (the parent of mnist/ works)", () => {
    const env = { COVSHIFT_DATA: makeTempDir() };
    assert.equal(resolveDataDir("mnist", "/srv/digits", { env, homedir: home }), "/srv/digits");
    const parent = makeTempDir();
    fs.mkdirSync(path.join(parent, "mnist"));
    assert.equal(resolveDataDir("mnist", parent, { env, homedir: home }), path.join(parent, "mnist"));
    assert.equal(resolveDataDir("mnist", path.join(parent, "mnist"), { env, homedir: home }), path.join(parent, "mnist"));
    assert.equal(resolveDataDir("cifar10", parent, { env, homedir: home }), parent, "no cifar10/ inside: the folder itself");
  });

  it("uses COVSHIFT_DATA/<dataset> when that folder exists, else COVSHIFT_DATA itself", () => {
    const root = makeTempDir();
    fs.mkdirSync(path.join(root, "mnist"));
    const env = { COVSHIFT_DATA: root };
    assert.equal(resolveDataDir("mnist", undefined, { env, homedir: home }), path.join(root, "mnist"));
    assert.equal(resolveDataDir("cifar10", undefined, { env, homedir: home }), root);
  });

  it("falls back to $XDG_CACHE_HOME/covshift/<dataset>, ignoring a relative XDG_CACHE_HOME", () => {
    const linux = { platform: "linux", homedir: home };
    assert.equal(resolveDataDir("mnist", undefined, { ...linux, env: { XDG_CACHE_HOME: "/var/cache/ada" } }), "/var/cache/ada/covshift/mnist");
    assert.equal(resolveDataDir("mnist", undefined, { ...linux, env: { XDG_CACHE_HOME: "cache" } }), "/home/ada/.cache/covshift/mnist");
    assert.equal(resolveDataDir("cifar10", undefined, { ...linux, env: {} }), "/home/ada/.cache/covshift/cifar10");
  });

  it("on Windows uses %LOCALAPPDATA%\\covshift\\<dataset>", () => {
    const env = { LOCALAPPDATA: "C:\\Users\\ada\\AppData\\Local", COVSHIFT_DATA: "" };
    assert.equal(
      resolveDataDir("mnist", "", { env, platform: "win32", homedir: "C:\\Users\\ada" }),
      "C:\\Users\\ada\\AppData\\Local\\covshift\\mnist",
    );
  });
});
