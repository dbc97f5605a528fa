/**
 * safetensors, both ways: the format PyTorch (`safetensors.torch`), JAX and
 * Hugging Face use for weights. Plain bytes in and out, no Node API, so it
 * works in browsers too.
 *
 * Layout (the format's specification):
 *   bytes 0..8        N, the header's length, an unsigned 64-bit little-endian integer
 *   bytes 8..8+N      the header: a UTF-8 JSON object, possibly padded with trailing spaces,
 *                     { "name": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, …,
 *                       "__metadata__": { "key": "string value", … } }
 *   bytes 8+N..       the data: every tensor's elements, row-major, little-endian, at
 *                     [begin, end) relative to the start of the data; together the tensors
 *                     cover the data exactly, without gaps or overlaps.
 *
 * Writing pads the header with spaces so that the data starts on an 8-byte
 * boundary and puts the 8-byte tensors (F64, I64) first, so every tensor is
 * aligned to its element size, as the reference writer does.
 */
import { Tensor } from "../tensor/tensor.js";
import type { StateDict } from "../nn/module.js";

/** The dtypes this module reads; it writes F32, F64 and I64. */
export type SafetensorsDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

const BYTES_PER_ELEMENT: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** dtypes of the format that exist but that covshift does not read (each named in the error). */
const KNOWN_UNSUPPORTED = ["U64", "U32", "U16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "I4", "U4"];

/** The reference implementation refuses headers above 100 MB; so does this one (a corrupt length would otherwise ask for gigabytes). */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = "__metadata__";

/** The state-dict keys PyTorch keeps as int64 (BN's batch counter); covshift holds them as 0-d float64. */
function isIntegerBuffer(key: string): boolean {
  return key === "num_batches_tracked" || key.endsWith(".num_batches_tracked");
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Serialize a state dict (e.g. `model.stateDict()`) to safetensors bytes.
 * float32 tensors are written as F32, float64 as F64, except PyTorch's
 * integer buffers (`…num_batches_tracked`), written as I64 so that
 * `torch.nn.Module.load_state_dict(strict=True)` takes them as the int64 it
 * keeps. `metadata` goes into `__metadata__` (string values only, as the
 * format requires). The bytes are the same for the same input, always.
 */
export function saveSafetensors(stateDict: StateDict, metadata?: Record<string, string>): Uint8Array {
  if (stateDict === null || typeof stateDict !== "object") {
    throw new Error(`saveSafetensors: expected a state dict (an object of name → Tensor, e.g. model.stateDict()); got ${describeValue(stateDict)}`);
  }
  const entries: { key: string; t: Tensor; dtype: "F64" | "F32" | "I64" }[] = [];
  for (const [key, t] of Object.entries(stateDict)) {
    if (!(t instanceof Tensor)) {
      throw new Error(`saveSafetensors: '${key}' is ${describeValue(t)}, not a Tensor; a state dict maps names to tensors`);
    }
    if (key === "" || key === METADATA_KEY) {
      throw new Error(`saveSafetensors: '${key}' cannot name a tensor (the empty name and "${METADATA_KEY}" are reserved); rename it`);
    }
    let dtype: "F64" | "F32" | "I64" = t.dtype === "float64" ? "F64" : "F32";
    if (isIntegerBuffer(key)) {
      const data = t.data;
      for (let i = 0; i < data.length; i++) {
        if (!Number.isSafeInteger(data[i])) {
          throw new Error(`saveSafetensors: '${key}' is an integer counter (int64 in PyTorch) but holds ${data[i]} at index ${i}; it must hold whole numbers up to 2^53`);
        }
      }
      dtype = "I64";
    }
    entries.push({ key, t, dtype });
  }
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
      throw new Error(`saveSafetensors: metadata must be an object of string values; got ${describeValue(metadata)}`);
    }
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new Error(`saveSafetensors: metadata '${k}' is ${describeValue(v)}; the format stores strings only (JSON.stringify it)`);
      }
    }
  }
  // 8-byte elements first, then by name: every tensor starts on a multiple of its element size.
  entries.sort((a, b) => BYTES_PER_ELEMENT[b.dtype] - BYTES_PER_ELEMENT[a.dtype] || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header[METADATA_KEY] = { ...metadata };
  let offset = 0;
  for (const { key, t, dtype } of entries) {
    const bytes = t.size * BYTES_PER_ELEMENT[dtype];
    header[key] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength); // spaces, as the specification allows
  const dataStart = 8 + headerLength;
  for (const { key, t, dtype } of entries) {
    const begin = dataStart + (header[key] as { data_offsets: number[] }).data_offsets[0];
    writeElements(view, out, begin, t.data, dtype);
  }
  return out;
}

function writeElements(view: DataView, out: Uint8Array, begin: number, data: ArrayLike<number>, dtype: "F64" | "F32" | "I64"): void {
  if (dtype === "I64") {
    for (let i = 0; i < data.length; i++) view.setBigInt64(begin + 8 * i, BigInt(data[i]), true);
  } else if (littleEndianHost) {
    // (a typed array of the element type is written as it is: no copy of every value first)
    const same = dtype === "F64" ? data instanceof Float64Array : data instanceof Float32Array;
    const typed = same ? (data as Float32Array | Float64Array) : dtype === "F64" ? Float64Array.from(data) : Float32Array.from(data);
    out.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), begin);
  } else if (dtype === "F64") {
    for (let i = 0; i < data.length; i++) view.setFloat64(begin + 8 * i, data[i], true);
  } else {
    for (let i = 0; i < data.length; i++) view.setFloat32(begin + 4 * i, data[i], true);
  }
}

/** What a safetensors file holds: its tensors, by name in file order, and its `__metadata__`. */
export interface SafetensorsContents {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/**
 * Parse safetensors bytes into tensors: F64 and the integer dtypes (I64,
 * I32, I16, I8, U8, BOOL; exact, up to ±2^53) become float64, F32, F16 and
 * BF16 become float32. Everything is checked before any tensor is made, and
 * a malformed file gets an error that names what is wrong — so a model is
 * never half-loaded from it.
 */
export function readSafetensors(bytes: Uint8Array): SafetensorsContents {
  if (!(bytes instanceof Uint8Array)) {
    throw new Error(`loadSafetensors: expected the file's bytes as a Uint8Array (or a Node Buffer); got ${describeValue(bytes)}`);
  }
  const fail = (what: string): never => {
    throw new Error(`loadSafetensors: not a valid safetensors file: ${what}`);
  };
  if (bytes.length < 8) fail(`it has ${bytes.length} bytes, fewer than the 8 of the header length; the file is truncated or empty`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    fail(`the first 8 bytes give a header of ${declared} bytes, more than the format's limit of ${MAX_HEADER_BYTES}; this is not a safetensors file, or its start is damaged`);
  }
  const headerLength = Number(declared);
  if (8 + headerLength > bytes.length) {
    fail(`the header is said to be ${headerLength} bytes long but the file ends after ${bytes.length - 8} bytes; the file is truncated`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return fail(`the ${headerLength}-byte header is not UTF-8 text`);
  }
  if (!text.startsWith("{")) fail(`the header must be a JSON object starting with "{"; it starts with ${JSON.stringify(text.slice(0, 20))}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail(`the header is not valid JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) fail("the header is not a JSON object");
  const duplicate = firstDuplicateTopLevelKey(text);
  if (duplicate !== null) fail(`the header names '${duplicate}' twice; which one is meant is ambiguous`);

  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const specs: { name: string; dtype: SafetensorsDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) fail(`"${METADATA_KEY}" must be an object of strings`);
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`"${METADATA_KEY}" entry '${k}' is ${describeValue(v)}; the format allows strings only`);
        metadata[k] = v as string;
      }
      continue;
    }
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) fail(`the entry of '${name}' is not an object with dtype, shape and data_offsets`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== "string") fail(`'${name}' has no dtype string`);
    if (!(dtype as string in BYTES_PER_ELEMENT)) {
      const known = KNOWN_UNSUPPORTED.includes(dtype as string);
      fail(
        `'${name}' has dtype ${JSON.stringify(dtype)}, which covshift ${known ? "does not read" : "does not know"}; ` +
          `it reads ${Object.keys(BYTES_PER_ELEMENT).join(", ")} (convert the tensor before saving, e.g. tensor.float() in PyTorch)`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`'${name}' has shape ${JSON.stringify(shape)}; a shape is a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`'${name}' has data_offsets ${JSON.stringify(offsets)}; expected [begin, end], two non-negative integers`);
    }
    const [begin, end] = offsets as number[];
    if (begin > end) fail(`'${name}' has data_offsets [${begin}, ${end}], which end before they begin`);
    if (end > dataLength) {
      fail(`'${name}' has data_offsets [${begin}, ${end}] but the data section has ${dataLength} bytes; the file is truncated or the offsets are out of range`);
    }
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = count * BYTES_PER_ELEMENT[dtype as SafetensorsDType];
    if (end - begin !== expected) {
      fail(
        `'${name}' (${dtype}, shape [${(shape as number[]).join(", ")}]) needs ${expected} bytes but its data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    specs.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end });
  }
  // The tensors must tile the data section: sorted by offset, each starts where the one before ended.
  const byOffset = [...specs].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const s of byOffset) {
    if (s.begin < covered) {
      const other = byOffset[byOffset.indexOf(s) - 1];
      fail(`'${s.name}' [${s.begin}, ${s.end}) overlaps '${other.name}' [${other.begin}, ${other.end}) in the data section`);
    }
    if (s.begin > covered) fail(`bytes [${covered}, ${s.begin}) of the data section belong to no tensor (a gap before '${s.name}')`);
    covered = s.end;
  }
  if (covered !== dataLength) fail(`the tensors cover ${covered} bytes of data but the file holds ${dataLength} after the header; it has trailing bytes`);

  const tensors: Record<string, Tensor> = {};
  for (const s of specs) {
    const values = decode(bytes, view, dataStart + s.begin, dataStart + s.end, s.dtype, s.name);
    tensors[s.name] = new Tensor(values, s.shape);
  }
  return { tensors, metadata };
}

/** The tensors of a safetensors file (see readSafetensors), ready for `model.loadStateDict`. */
export function loadSafetensors(bytes: Uint8Array): Record<string, Tensor> {
  return readSafetensors(bytes).tensors;
}

/** Elements at bytes [from, to) of the file, as the tensor storage covshift uses for that dtype. */
function decode(bytes: Uint8Array, view: DataView, from: number, to: number, dtype: SafetensorsDType, name: string): Float32Array | Float64Array {
  const n = (to - from) / BYTES_PER_ELEMENT[dtype];
  switch (dtype) {
    case "F32":
      if (littleEndianHost) return new Float32Array(copyOut(bytes, from, to));
      return Float32Array.from({ length: n }, (_, i) => view.getFloat32(from + 4 * i, true));
    case "F64":
      if (littleEndianHost) return new Float64Array(copyOut(bytes, from, to));
      return Float64Array.from({ length: n }, (_, i) => view.getFloat64(from + 8 * i, true));
    case "F16": {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(from + 2 * i, true));
      return out;
    }
    case "BF16": {
      // bfloat16 is the upper half of a float32: shift its bits into place.
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = view.getUint16(from + 2 * i, true) << 16;
      return new Float32Array(bits.buffer);
    }
    case "I64": {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(from + 8 * i, true);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw new Error(`loadSafetensors: '${name}' (I64) holds ${v} at index ${i}, beyond ±2^53, which a float64 tensor cannot hold exactly; nothing was loaded`);
        }
        out[i] = Number(v);
      }
      return out;
    }
    case "I32":
      return Float64Array.from({ length: n }, (_, i) => view.getInt32(from + 4 * i, true));
    case "I16":
      return Float64Array.from({ length: n }, (_, i) => view.getInt16(from + 2 * i, true));
    case "I8":
      return Float64Array.from({ length: n }, (_, i) => view.getInt8(from + i));
    case "U8":
      return Float64Array.from({ length: n }, (_, i) => view.getUint8(from + i));
    case "BOOL":
      return Float64Array.from({ length: n }, (_, i) => (view.getUint8(from + i) === 0 ? 0 : 1));
  }
}

/** Bytes [from, to) in a fresh ArrayBuffer: aligned for any typed array, and never the shared pool behind a Node Buffer. */
function copyOut(bytes: Uint8Array, from: number, to: number): ArrayBuffer {
  const out = new Uint8Array(to - from);
  out.set(bytes.subarray(from, to));
  return out.buffer;
}

/** IEEE 754 binary16 → number: sign, 5-bit exponent (bias 15), 10-bit fraction; subnormals, infinities and NaN included. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // subnormal: 0.f × 2^−14
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * The first key that appears twice at the top level of a JSON object (JSON.parse
 * silently keeps the last one). `text` is known to be valid JSON.
 */
function firstDuplicateTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = depth === 1;
    } else if (c === "}" || c === "]") {
      depth--;
    } else if (c === "," && depth === 1) {
      expectKey = true;
    }
  }
  return null;
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return `a Uint8Array of ${v.length} bytes`;
  if (typeof v === "object") return `an object (${(v as object).constructor?.name ?? "Object"})`;
  return `${typeof v} ${JSON.stringify(v)}`;
}
