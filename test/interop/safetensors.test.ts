/**
 * safetensors: covshift → bytes → covshift keeps every bit; the bytes follow
 * the format (little-endian length, padded JSON header, aligned and tiled
 * data, I64 counters); F16/BF16/integer dtypes read exactly; every kind of
 * malformed file gets an error that says what is wrong, and a model is never
 * half-loaded; the file helpers write atomically.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Generator, loadSafetensors, nn, noGrad, ops, optim, readSafetensors, saveSafetensors, tensor, Tensor } from "../../src/index.js";
import { loadSafetensorsFile, saveSafetensorsFile } from "../../src/io/safetensorsFile.js";
import { bytesOf, randn } from "../core/helpers.js";

const bnMlp = (seed: number, dtype: "float32" | "float64" = "float32") => {
  const g = new Generator(seed);
  return new nn.Sequential(
    new nn.Linear(6, 5, { bias: false, dtype, generator: g }),
    new nn.BatchNorm1d(5, { dtype }),
    new nn.Sigmoid(),
    new nn.Linear(5, 3, { dtype, generator: g }),
  );
};

/** Three SGD steps, so that weights, γ, β, the running statistics and the counter all move. */
function trainAFew(model: nn.Module, seed: number): void {
  const g = new Generator(seed);
  const dtype = model.parameters()[0].dtype;
  const sgd = new optim.SGD(model.parameters(), { lr: 0.2, momentum: 0.5 });
  for (let i = 0; i < 3; i++) {
    sgd.zeroGrad();
    ops.crossEntropy(model.forward(randn([8, 6], g, { dtype, scale: 2, shift: 0.5 })), [0, 1, 2, 0, 1, 2, 0, 1]).backward();
    sgd.step();
  }
}

/** A safetensors file from a raw header (object or exact text) and data bytes; `length` overrides the declared header length. */
function rawFile(header: object | string, data: Uint8Array = new Uint8Array(0), length?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(length ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32Bytes = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);

describe("safetensors round trip", () => {
  for (const dtype of ["float32", "float64"] as const) {
    it(`a trained ${dtype} BN network → bytes → a fresh network: every tensor keeps its dtype, shape and bits, and eval outputs are bit-identical`, () => {
      const src = bnMlp(1, dtype);
      trainAFew(src, 2);
      const bytes = saveSafetensors(src.stateDict(), { note: "anything", run: JSON.stringify({ seed: 1 }) });
      const { tensors, metadata } = readSafetensors(bytes);
      assert.deepEqual(metadata, { note: "anything", run: '{"seed":1}' });
      const expected = src.stateDict();
      assert.deepEqual(Object.keys(tensors).sort(), Object.keys(expected).sort());
      for (const [k, t] of Object.entries(expected)) {
        assert.equal(tensors[k].dtype, t.dtype, `${k} dtype`);
        assert.deepEqual(tensors[k].shape, t.shape, `${k} shape`);
        assert.ok(bytesOf(tensors[k]).equals(bytesOf(t)), `${k} bits`);
      }
      assert.equal(tensors["1.num_batches_tracked"].item(), 3);

      const dst = bnMlp(99, dtype);
      dst.loadStateDict(loadSafetensors(bytes));
      src.eval();
      dst.eval();
      const x = randn([4, 6], new Generator(5), { dtype });
      noGrad(() => assert.ok(bytesOf(dst.forward(x)).equals(bytesOf(src.forward(x))), "eval outputs differ"));
      assert.equal((dst.at(1) as nn.BatchNorm1d).numBatchesTracked, 3);
    });
  }

  it("special values (±0, ±∞, NaN, subnormals, extremes) and empty and 0-d tensors keep their bits", () => {
    const f32 = tensor([0, -0, Infinity, -Infinity, NaN, 1.4e-45, 3.4028234663852886e38, -1.1754942e-38], [2, 4]);
    const f64 = tensor([5e-324, -Number.MAX_VALUE, Math.PI], [3], { dtype: "float64" });
    const empty = new Tensor(new Float32Array(0), [0, 3]);
    const scalar = tensor(7.25, []);
    const back = loadSafetensors(saveSafetensors({ f32, f64, empty, scalar }));
    assert.ok(bytesOf(back.f32).equals(bytesOf(f32)));
    assert.ok(bytesOf(back.f64).equals(bytesOf(f64)));
    assert.deepEqual(back.empty.shape, [0, 3]);
    assert.deepEqual(back.scalar.shape, []);
    assert.equal(back.scalar.item(), 7.25);
  });

  it("reads from a Node Buffer that is a view into a larger pooled buffer, at an odd offset", () => {
    const bytes = saveSafetensors({ w: tensor([1, 2, 3], [3]) });
    const pool = Buffer.alloc(bytes.length + 3);
    pool.set(bytes, 3);
    const view = pool.subarray(3);
    assert.deepEqual([...loadSafetensors(view).w.data], [1, 2, 3]);
  });
});

describe("safetensors layout", () => {
  it("little-endian header length, JSON header padded with spaces to 8 bytes, 8-byte tensors first, each aligned, the data tiled exactly", () => {
    const model = bnMlp(3);
    const bytes = saveSafetensors(model.stateDict(), { a: "b" });
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const n = Number(view.getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.match(text, /^\{.*\} *$/);
    const header = JSON.parse(text);
    assert.deepEqual(header.__metadata__, { a: "b" });
    const bn = header["1.num_batches_tracked"];
    assert.deepEqual(bn, { dtype: "I64", shape: [], data_offsets: [0, 8] }, "the counter is PyTorch's int64, first");
    assert.equal(view.getBigInt64(8 + n, true), 0n);
    assert.deepEqual(header["0.weight"].shape, [5, 6]);
    assert.equal(header["0.weight"].dtype, "F32");
    const entries = Object.entries(header).filter(([k]) => k !== "__metadata__") as [string, { dtype: string; data_offsets: number[] }][];
    let total = 0;
    for (const [k, e] of entries) {
      const size = e.dtype === "F32" ? 4 : 8;
      assert.equal(e.data_offsets[0] % size, 0, `${k} is not aligned to its element size`);
      total += e.data_offsets[1] - e.data_offsets[0];
    }
    assert.equal(8 + n + total, bytes.length);
  });

  it("the same state dict gives the same bytes, whatever the order of its keys", () => {
    const sd = bnMlp(4).stateDict();
    const reversed = Object.fromEntries(Object.entries(sd).reverse());
    assert.deepEqual(saveSafetensors(reversed), saveSafetensors(sd));
  });

  it("refuses what it cannot write: a non-tensor value, a reserved name, a non-string metadata value, a fractional counter", () => {
    assert.throws(() => saveSafetensors({ w: [1, 2] as unknown as Tensor }), /'w' is an array, not a Tensor/);
    assert.throws(() => saveSafetensors({ __metadata__: tensor([1]) }), /reserved/);
    assert.throws(() => saveSafetensors({ w: tensor([1]) }, { n: 3 as unknown as string }), /metadata 'n' is number 3; the format stores strings only/);
    assert.throws(() => saveSafetensors({ "1.num_batches_tracked": tensor(2.5, [], { dtype: "float64" }) }), /integer counter .* holds 2\.5/);
  });
});

describe("safetensors dtypes written by others", () => {
  it("F16 (normal, subnormal, max, ±∞, NaN) and BF16 become float32; I64, I32, I16, I8, U8 and BOOL become exact float64", () => {
    const u16 = (values: number[]) => new Uint8Array(new Uint16Array(values).buffer);
    const parts: [string, string, number[], Uint8Array][] = [
      ["h", "F16", [7], u16([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00, 0x3555])],
      ["hn", "F16", [1], u16([0x7e00])],
      ["b", "BF16", [3], u16([0x3f80, 0xc0a0, 0x0001])],
      ["q", "I64", [2], new Uint8Array(new BigInt64Array([-(2n ** 53n) + 1n, 42n]).buffer)],
      ["i", "I32", [2], new Uint8Array(new Int32Array([-2147483648, 7]).buffer)],
      ["s", "I16", [1], new Uint8Array(new Int16Array([-300]).buffer)],
      ["c", "I8", [2], new Uint8Array(new Int8Array([-128, 127]).buffer)],
      ["u", "U8", [1], new Uint8Array([255])],
      ["z", "BOOL", [2], new Uint8Array([0, 1])],
    ];
    const header: Record<string, object> = {};
    let offset = 0;
    for (const [name, dtype, shape, data] of parts) {
      header[name] = { dtype, shape, data_offsets: [offset, offset + data.length] };
      offset += data.length;
    }
    const data = new Uint8Array(offset);
    offset = 0;
    for (const [, , , d] of parts) {
      data.set(d, offset);
      offset += d.length;
    }
    const t = loadSafetensors(rawFile(header, data));
    assert.equal(t.h.dtype, "float32");
    assert.deepEqual([...t.h.data], [1, -2, 65504, 2 ** -24, Infinity, -Infinity, Math.fround(0.333251953125)]);
    assert.ok(Number.isNaN(t.hn.data[0]));
    assert.equal(t.b.dtype, "float32");
    assert.deepEqual([...t.b.data], [1, -5, Math.fround(2 ** -133)]);
    assert.equal(t.q.dtype, "float64");
    assert.deepEqual([...t.q.data], [-(2 ** 53) + 1, 42]);
    assert.deepEqual([...t.i.data], [-2147483648, 7]);
    assert.deepEqual([...t.s.data], [-300]);
    assert.deepEqual([...t.c.data], [-128, 127]);
    assert.deepEqual([...t.u.data], [255]);
    assert.deepEqual([...t.z.data], [0, 1]);
  });
});

describe("safetensors: malformed files are refused with a clear error", () => {
  const good = saveSafetensors({ a: tensor([1, 2, 3, 4], [2, 2]), b: tensor([5, 6], [2]) });
  const headerLength = Number(new DataView(good.buffer).getBigUint64(0, true));
  const cases: [string, () => Uint8Array, RegExp][] = [
    ["empty", () => new Uint8Array(0), /0 bytes, fewer than the 8 of the header length/],
    ["shorter than the length field", () => good.subarray(0, 5), /5 bytes, fewer than the 8/],
    ["truncated inside the header", () => good.subarray(0, 8 + headerLength - 3), /header is said to be \d+ bytes long but the file ends after \d+ bytes; the file is truncated/],
    ["truncated inside the data", () => good.subarray(0, good.length - 1), /data_offsets \[\d+, \d+\] but the data section has \d+ bytes; the file is truncated/],
    ["a huge header length (not a safetensors file)", () => { const b = good.slice(); b.set([0xff, 0xff, 0xff, 0xff], 0); return b; }, /more than the format's limit/],
    ["a PNG", () => new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]), /more than the format's limit|truncated/],
    ["a header that is not JSON", () => rawFile("{not json}"), /the header is not valid JSON/],
    ["a header that is a JSON array", () => rawFile("[1, 2]"), /must be a JSON object starting with "\{"/],
    ["a header that is not UTF-8", () => { const b = rawFile('{"a":1}'); b[9] = 0xff; return b; }, /not UTF-8 text/],
    ["an entry without data_offsets", () => rawFile({ a: { dtype: "F32", shape: [1] } }, f32Bytes([1])), /'a' has data_offsets undefined; expected \[begin, end\]/],
    ["negative offsets", () => rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [-4, 0] } }, f32Bytes([1])), /data_offsets \[-4,0\]/],
    ["offsets past the end", () => rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, f32Bytes([1, 2])), /'a' has data_offsets \[4, 12\] but the data section has 8 bytes/],
    ["offsets that end before they begin", () => rawFile({ a: { dtype: "F32", shape: [0], data_offsets: [4, 0] } }, f32Bytes([1])), /end before they begin/],
    ["overlapping tensors", () => rawFile({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, f32Bytes([1, 2, 3])), /'b' \[4, 12\) overlaps 'a' \[0, 8\)/],
    ["a gap between tensors", () => rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, f32Bytes([1, 2, 3])), /bytes \[4, 8\) of the data section belong to no tensor/],
    ["trailing bytes", () => rawFile({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, f32Bytes([1, 2])), /cover 4 bytes of data but the file holds 8 .* trailing bytes/],
    ["an unknown dtype", () => rawFile({ a: { dtype: "F33", shape: [1], data_offsets: [0, 4] } }, f32Bytes([1])), /'a' has dtype "F33", which covshift does not know; it reads F64, F32/],
    ["a dtype covshift does not read", () => rawFile({ a: { dtype: "C64", shape: [1], data_offsets: [0, 8] } }, f32Bytes([1, 2])), /dtype "C64", which covshift does not read/],
    ["shape and byte count disagree", () => rawFile({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, f32Bytes([1, 2])), /'a' \(F32, shape \[3\]\) needs 12 bytes but its data_offsets \[0, 8\] hold 8/],
    ["a fractional shape", () => rawFile({ a: { dtype: "F32", shape: [1.5], data_offsets: [0, 4] } }, f32Bytes([1])), /shape \[1\.5\]; a shape is a list of non-negative integers/],
    ["duplicate keys", () => rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32Bytes([1, 2])), /names 'a' twice/],
    ["a metadata value that is not a string", () => rawFile({ __metadata__: { n: 1 } }), /"__metadata__" entry 'n' is number 1/],
    ["an I64 beyond 2^53", () => rawFile({ q: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(new BigInt64Array([2n ** 60n]).buffer)), /'q' \(I64\) holds 1152921504606846976 at index 0, beyond ±2\^53/],
  ];
  for (const [what, make, message] of cases) {
    it(`${what}`, () => {
      assert.throws(() => loadSafetensors(make()), (err: Error) => {
        assert.match(err.message, /^loadSafetensors: /);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it("a key nested inside an entry may repeat a top-level name (only top-level duplicates are ambiguous)", () => {
    const t = loadSafetensors(rawFile('{"__metadata__":{"a":"x"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32Bytes([9])));
    assert.deepEqual([...t.a.data], [9]);
  });

  it("a model is never half-loaded: a file truncated after its first tensors leaves every parameter and buffer as it was", () => {
    const src = bnMlp(1);
    trainAFew(src, 2);
    const bytes = saveSafetensors(src.stateDict());
    const dst = bnMlp(7);
    const before = dst.stateDict();
    assert.throws(() => dst.loadStateDict(loadSafetensors(bytes.subarray(0, bytes.length - 10))), /truncated/);
    for (const [k, t] of Object.entries(dst.stateDict())) assert.ok(bytesOf(t).equals(bytesOf(before[k])), `${k} changed`);
  });
});

describe("loading state dicts saved elsewhere", () => {
  it("a state dict without num_batches_tracked (PyTorch before 0.4.1) loads strictly, and the counter starts at 0", () => {
    const src = bnMlp(1);
    trainAFew(src, 2);
    const sd = src.stateDict();
    delete sd["1.num_batches_tracked"];
    const dst = bnMlp(1);
    trainAFew(dst, 3);
    const { missingKeys } = dst.loadStateDict(sd);
    assert.deepEqual(missingKeys, []);
    const bn = dst.at(1) as nn.BatchNorm1d;
    assert.equal(bn.numBatchesTracked, 0);
    assert.ok(bytesOf(bn.runningVar!).equals(bytesOf((src.at(1) as nn.BatchNorm1d).runningVar!)));
  });

  it("one error names every missing key, every unexpected key and every shape that differs, and nothing is written", () => {
    const dst = bnMlp(1);
    const before = dst.stateDict();
    const sd = bnMlp(2).stateDict();
    delete sd["1.running_var"];
    sd["9.weight"] = tensor([1]);
    sd["0.weight"] = tensor(new Array(30).fill(0), [6, 5]);
    sd["3.bias"] = tensor([1, 2], [2]);
    assert.throws(() => dst.loadStateDict(sd), (err: Error) => {
      assert.match(err.message, /nothing was loaded/);
      assert.match(err.message, /Missing keys: 1\.running_var\./);
      assert.match(err.message, /Unexpected keys: 9\.weight\./);
      assert.match(err.message, /'0\.weight' has shape \[6, 5\] but the model expects \[5, 6\]/);
      assert.match(err.message, /'3\.bias' has shape \[2\] but the model expects \[3\]/);
      return true;
    });
    for (const [k, t] of Object.entries(dst.stateDict())) assert.ok(bytesOf(t).equals(bytesOf(before[k])), `${k} changed`);
  });
});

describe("safetensors files (Node)", () => {
  it("saveSafetensorsFile writes the file whole, leaves no temporary file, and loadSafetensorsFile reads tensors and metadata back", () => {
    const dir = mkdtempSync(join(tmpdir(), "covshift-st-"));
    try {
      const path = join(dir, "sub", "model.safetensors");
      const sd = bnMlp(1).stateDict();
      saveSafetensorsFile(path, sd, { run: "x" });
      assert.deepEqual(readdirSync(join(dir, "sub")), ["model.safetensors"]);
      assert.deepEqual(new Uint8Array(readFileSync(path)), saveSafetensors(sd, { run: "x" }));
      const { tensors, metadata } = loadSafetensorsFile(path);
      assert.deepEqual(metadata, { run: "x" });
      assert.ok(bytesOf(tensors["0.weight"]).equals(bytesOf(sd["0.weight"])));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("errors name the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "covshift-st-"));
    try {
      const path = join(dir, "broken.safetensors");
      writeFileSync(path, new Uint8Array(3));
      assert.throws(() => loadSafetensorsFile(path), new RegExp(`${path.replace(/[.]/g, "\\.")}: loadSafetensors: .*3 bytes`));
      assert.throws(() => loadSafetensorsFile(join(dir, "absent.safetensors")), /cannot read .*absent\.safetensors/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
