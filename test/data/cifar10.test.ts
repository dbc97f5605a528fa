import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { CIFAR10_CLASSES, CIFAR10_URL, extractCifarArchive, loadCifar10 } from "../../src/data/cifar10.js";
import { resolveDataDir } from "../../src/data/datadir.js";
import { readTar } from "../../src/data/download.js";
import { cifarRecords, fakeFetch, gzip, makeTempDir, offlineFetch, removeTempDirs, tarBytes } from "./helpers.js";
import { realData } from "../realData.js";
import { describeOrSkip } from "../skip.js";

const CIFAR = realData("cifar10"); // "the real CIFAR-10 files" need ../shared/data/cifar10
const RECORD = 3073;

after(removeTempDirs);

/** Labels 0, 1, …, 9, 0, 1, … for `n` records. */
const cycling = (n: number) => Array.from({ length: n }, (_, i) => i % 10);

describe("loadCifar10 on files in the real record format", () => {
  it("reads test_batch_first1000.bin into CHW images and labels, byte for byte", async () => {
    const dir = makeTempDir();
    const records = cifarRecords(cycling(1000));
    fs.writeFileSync(path.join(dir, "test_batch_first1000.bin"), records);
    const got = await loadCifar10(dir, "test", { download: false });
    assert.equal(got.count, 1000);
    assert.deepEqual(got.labels, Uint8Array.from(cycling(1000)));
    assert.equal(got.images.length, 1000 * 3072);
    for (const i of [0, 1, 999]) {
      assert.deepEqual(got.images.subarray(i * 3072, (i + 1) * 3072), records.subarray(i * RECORD + 1, (i + 1) * RECORD));
    }
  });

  it("prefers the full test_batch.bin over the 1,000-record file when both are present", async () => {
    const dir = makeTempDir();
    fs.writeFileSync(path.join(dir, "test_batch_first1000.bin"), cifarRecords(cycling(1000)));
    const full = new Uint8Array(10000 * RECORD);
    full[0] = 7;
    fs.writeFileSync(path.join(dir, "test_batch.bin"), full);
    const got = await loadCifar10(dir, "test", { download: false, limit: 2 });
    assert.deepEqual(got.labels, Uint8Array.from([7, 0]));
  });

  it("rejects a file whose length is not a whole number of 3,073-byte records, naming it", async () => {
    const dir = makeTempDir();
    const file = path.join(dir, "test_batch_first1000.bin");
    fs.writeFileSync(file, cifarRecords(cycling(1000)).subarray(0, 1000 * RECORD - 5));
    await assert.rejects(loadCifar10(dir, "test", { download: false }), (err: Error) => {
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, /not a whole number of 3073-byte records .* 999 records and 3068 bytes more: the file is truncated/);
      return true;
    });
  });

  it("rejects a batch cut short at a record boundary, since the split depends on its 10,000 records", async () => {
    const dir = makeTempDir();
    const file = path.join(dir, "data_batch_5.bin");
    fs.writeFileSync(file, cifarRecords([1, 2, 3]));
    await assert.rejects(loadCifar10(dir, "validation", { download: false }), (err: Error) => {
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, /holds 3 records \(9219 bytes\), but this file has 10000 .*: the file is truncated/);
      return true;
    });
  });

  it("rejects a label outside 0–9, naming the file, the record and the value", async () => {
    const dir = makeTempDir();
    const file = path.join(dir, "test_batch_first1000.bin");
    const labels = cycling(1000);
    labels[7] = 10;
    fs.writeFileSync(file, cifarRecords(labels));
    await assert.rejects(loadCifar10(dir, "test", { download: false }), (err: Error) => {
      assert.ok(err.message.includes(file), err.message);
      assert.match(err.message, /record #7 \(byte 21511\) has label 10, but CIFAR-10 labels are 0–9/);
      return true;
    });
  });

  it("rejects a limit that is not a whole number", async () => {
    await assert.rejects(loadCifar10(makeTempDir(), "test", { limit: 1.5 }), /limit must be a whole number/);
  });
});

describe("obtaining missing CIFAR-10 files", () => {
  it("with download: false, names the missing file, the folder and the ways to supply it, without fetching", async () => {
    const dir = makeTempDir();
    const { fetchImpl, urls } = offlineFetch();
    await assert.rejects(loadCifar10(dir, "validation", { download: false, fetchImpl }), (err: Error) => {
      assert.ok(err.message.includes(`data_batch_5.bin missing from ${dir}`), err.message);
      assert.ok(err.message.includes(CIFAR10_URL), err.message);
      assert.match(err.message, /--data DIR/);
      assert.match(err.message, /COVSHIFT_DATA=DIR/);
      return true;
    });
    assert.deepEqual(urls, []);
  });

  it("offline, says which files to put in which folder, and leaves the folder empty", async () => {
    const dir = makeTempDir();
    const { fetchImpl, urls } = offlineFetch();
    await assert.rejects(loadCifar10(dir, "train", { fetchImpl }), (err: Error) => {
      assert.match(err.message, /data_batch_1\.bin, .*data_batch_5\.bin missing from/);
      assert.match(err.message, /downloading failed/);
      assert.ok(err.message.includes(`(md5 c32a1d4ab5d03f1284b67883e8d87530) and put it into ${dir}`), err.message);
      assert.ok(err.message.includes(`from its cifar-10-batches-bin folder into ${dir}`), err.message);
      assert.match(err.message, /--data DIR/);
      assert.match(err.message, /COVSHIFT_DATA=DIR/);
      return true;
    });
    assert.deepEqual(urls, [CIFAR10_URL]);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("rejects an archive with the wrong md5 and leaves no file behind", async () => {
    const dir = makeTempDir();
    const { fetchImpl } = fakeFetch(() => gzip(tarBytes([{ name: "data_batch_5.bin", data: new Uint8Array(10) }])));
    await assert.rejects(
      loadCifar10(dir, "validation", { fetchImpl }),
      /served bytes with md5 [0-9a-f]{32}, expected c32a1d4ab5d03f1284b67883e8d87530/,
    );
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("unpacks a cifar-10-binary.tar.gz the user put in the folder, and keeps the archive", async () => {
    const dir = makeTempDir();
    const full = new Uint8Array(10000 * RECORD);
    full[RECORD] = 4;
    const archive = gzip(
      tarBytes([
        { name: "cifar-10-batches-bin/" },
        { name: "cifar-10-batches-bin/batches.meta.txt", data: Buffer.from("airplane\n") },
        { name: "cifar-10-batches-bin/test_batch.bin", data: full },
      ]),
    );
    fs.writeFileSync(path.join(dir, "cifar-10-binary.tar.gz"), archive);
    const { fetchImpl, urls } = offlineFetch();
    const got = await loadCifar10(dir, "test", { fetchImpl, limit: 2 });
    assert.deepEqual(got.labels, Uint8Array.from([0, 4]));
    assert.deepEqual(urls, []);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["cifar-10-binary.tar.gz", "test_batch.bin"]);
  });

  it("extractCifarArchive writes only the batch files, with their exact bytes", async () => {
    const dir = makeTempDir();
    const batch = cifarRecords([3, 1, 4]);
    const file = path.join(dir, "a.tar.gz");
    fs.writeFileSync(
      file,
      gzip(
        tarBytes([
          { name: "cifar-10-batches-bin/readme.html", data: Buffer.from("<html></html>") },
          { name: "cifar-10-batches-bin/data_batch_2.bin", data: batch },
        ]),
      ),
    );
    assert.deepEqual(await extractCifarArchive(file, dir), ["data_batch_2.bin"]);
    assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, "data_batch_2.bin"))), batch);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["a.tar.gz", "data_batch_2.bin"]);
  });

  it("extractCifarArchive names the archive when it holds no binary batches (e.g. the Python version)", async () => {
    const dir = makeTempDir();
    const file = path.join(dir, "cifar-10-python.tar.gz");
    fs.writeFileSync(file, gzip(tarBytes([{ name: "cifar-10-batches-py/data_batch_1", data: new Uint8Array(9) }])));
    await assert.rejects(extractCifarArchive(file, dir), (err: Error) => {
      assert.ok(err.message.startsWith(file), err.message);
      assert.match(err.message, /holds none of the CIFAR-10 binary batches/);
      return true;
    });
  });
});

describe("readTar", () => {
  it("returns regular files with their contents and skips directories", () => {
    const entries = readTar(tarBytes([{ name: "d/" }, { name: "d/x.bin", data: Uint8Array.from([1, 2, 3]) }]), "t.tar");
    assert.deepEqual(
      entries.map((e) => [e.name, [...e.data]]),
      [["d/x.bin", [1, 2, 3]]],
    );
  });

  it("rejects a damaged header by its checksum and a member cut short, naming the archive", () => {
    const tar = tarBytes([{ name: "x.bin", data: new Uint8Array(600) }]);
    const damaged = tar.slice();
    damaged[10] ^= 1;
    assert.throws(() => readTar(damaged, "bad.tar"), /bad\.tar: the tar header at byte 0 has checksum \d+, but its bytes sum to \d+/);
    assert.throws(() => readTar(tar.subarray(0, 700), "short.tar"), /short\.tar: member x\.bin needs 600 bytes but the archive ends 412 bytes early/);
  });
});

describeOrSkip("the real CIFAR-10 files in ../shared/data/cifar10", { skip: CIFAR.skip }, () => {
  const firstByte = (name: string, record = 0) => {
    const fd = fs.openSync(path.join(CIFAR.dir, name), "r");
    try {
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, record * RECORD);
      return b[0];
    } finally {
      fs.closeSync(fd);
    }
  };

  it("the first training label is data_batch_1's first byte, 6 (frog), followed by its 3,072 pixel bytes", async () => {
    assert.equal(firstByte("data_batch_1.bin"), 6);
    const got = await loadCifar10(CIFAR.dir, "train", { download: false, limit: 1 });
    assert.equal(got.count, 1);
    assert.equal(got.labels[0], 6);
    assert.equal(CIFAR10_CLASSES[got.labels[0]], "frog");
    const fd = fs.openSync(path.join(CIFAR.dir, "data_batch_1.bin"), "r");
    const pixels = Buffer.alloc(3072);
    fs.readSync(fd, pixels, 0, 3072, 1);
    fs.closeSync(fd);
    assert.deepEqual(got.images, new Uint8Array(pixels));
  });

  it("a training limit past 10,000 continues into data_batch_2", async () => {
    const got = await loadCifar10(CIFAR.dir, "train", { download: false, limit: 10001 });
    assert.equal(got.count, 10001);
    assert.equal(got.labels[10000], firstByte("data_batch_2.bin"));
  });

  it("the full training split has 45,000 images and every class", async () => {
    const got = await loadCifar10(CIFAR.dir, "train", { download: false });
    assert.equal(got.count, 45000);
    assert.equal(got.images.length, 45000 * 3072);
    assert.equal(new Set(got.labels).size, 10);
    assert.equal(got.labels[44999], firstByte("data_batch_5.bin", 4999));
  });

  it("the validation split is the last 5,000 records of data_batch_5", async () => {
    const got = await loadCifar10(CIFAR.dir, "validation", { download: false });
    assert.equal(got.count, 5000);
    assert.equal(got.labels[0], firstByte("data_batch_5.bin", 5000));
    assert.equal(got.labels[4999], firstByte("data_batch_5.bin", 9999));
  });

  it("without test_batch.bin, the test split is the 1,000 records whose labels match the official ones", async () => {
    const got = await loadCifar10(CIFAR.dir, "test", { download: false });
    assert.equal(got.count, 1000);
    const official = fs.readFileSync(path.join(CIFAR.dir, "test_labels_all10000.u8"));
    assert.deepEqual(got.labels, new Uint8Array(official.subarray(0, 1000)));
  });
});

describe("resolveDataDir for CIFAR-10", () => {
  it("picks COVSHIFT_DATA/cifar10 when the shared folder has one", () => {
    const root = makeTempDir();
    fs.mkdirSync(path.join(root, "cifar10"));
    fs.mkdirSync(path.join(root, "mnist"));
    assert.equal(resolveDataDir("cifar10", undefined, { env: { COVSHIFT_DATA: root } }), path.join(root, "cifar10"));
  });
});
