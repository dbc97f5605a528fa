/**
 * The IDX file format (LeCun's MNIST distribution), parsed from bytes in
 * memory: no Node API, so the browser demo validates the files it fetches
 * with the same checks as the Node loaders (idx.ts reads them from disk).
 */

/**
 * The advice that ends every "this data file is damaged" error: the loaders
 * download missing files, so deleting a bad one is enough to get a good one.
 */
export const REFETCH_ADVICE = "re-download it or delete it so covshift fetches it again";

/**
 * An n-dimensional array of unsigned bytes read from an IDX file (the format
 * of LeCun's MNIST distribution): the header's magic number and dimensions,
 * and the data in row-major order.
 */
export interface IdxArray {
  /** The 32-bit magic number: 0x0000, then the element type (0x08), then the number of dimensions. */
  magic: number;
  /** Size of each dimension, outermost first (for MNIST images: count, rows, cols). */
  dims: number[];
  /** The elements, row-major; a view into the parsed bytes, not a copy. */
  data: Uint8Array;
}

/** Checks the caller wants made while parsing, so the error can say what was expected. */
export interface IdxExpectation {
  /** Reject any other magic number (e.g. 2051 for image files, 2049 for label files). */
  magic?: number;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: "unsigned bytes",
  0x09: "signed bytes",
  0x0b: "16-bit integers",
  0x0c: "32-bit integers",
  0x0d: "32-bit floats",
  0x0e: "64-bit floats",
};

/** True if `bytes` starts with the gzip magic bytes 1f 8b — the only reliable sign, since file names lie. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses an uncompressed IDX file of unsigned bytes, with any number of
 * dimensions. Checks the header (magic number, element type), and that
 * exactly as many data bytes follow as the dimensions promise — fewer means
 * the file was cut short, more means something else was appended; both
 * usually mean a broken download, and both are reported rather than
 * guessed around. `source` (normally the file's path) names the input in
 * error messages.
 */
export function parseIdx(input: Uint8Array, source: string, expect: IdxExpectation = {}): IdxArray {
  // A plain Uint8Array view, so slices handed out are never Node Buffers.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.length < 4) {
    throw new Error(
      `${source}: is ${bytes.length} bytes long, too short to hold even an IDX magic number; ` +
        `the file is truncated or empty; ${REFETCH_ADVICE}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (expect.magic !== undefined && magic !== expect.magic) {
    throw new Error(
      `${source}: expected IDX magic number ${describeMagic(expect.magic)}, but the file starts with ` +
        `${describeMagic(magic)}${htmlHint(bytes)}; it is the wrong file or damaged; ${REFETCH_ADVICE}`,
    );
  }
  const type = bytes[2];
  const ndims = bytes[3];
  if (bytes[0] !== 0 || bytes[1] !== 0 || TYPE_NAMES[type] === undefined || ndims === 0) {
    throw new Error(
      `${source}: does not start with an IDX header (magic number ${describeMagic(magic)})${htmlHint(bytes)}; ` +
        `${REFETCH_ADVICE}`,
    );
  }
  if (type !== 0x08) {
    throw new Error(
      `${source}: holds IDX ${TYPE_NAMES[type]}, but covshift reads only IDX files of unsigned bytes ` +
        `(type 0x08, as in MNIST); use a file in that format`,
    );
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new Error(
      `${source}: its magic number announces ${ndims} dimensions, a ${headerBytes}-byte header, but the ` +
        `file is only ${bytes.length} bytes long: it is truncated; ${REFETCH_ADVICE}`,
    );
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  // Doubles are exact up to 2^53, far beyond any size this could be compared with.
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerBytes;
  if (actual !== expected) {
    const shape = dims.join(" × ");
    const problem =
      actual < expected
        ? `only ${actual} follow: the file is truncated`
        : `${actual - expected} extra bytes follow them: something was appended to the file`;
    throw new Error(
      `${source}: its header promises ${shape} = ${expected} bytes of data, but ${problem}; ${REFETCH_ADVICE}`,
    );
  }
  return { magic, dims, data: bytes.subarray(headerBytes) };
}

export function describeMagic(magic: number): string {
  const hex = `0x${magic.toString(16).padStart(8, "0")}`;
  const type = (magic >>> 8) & 0xff;
  const ndims = magic & 0xff;
  if (magic >>> 16 !== 0 || TYPE_NAMES[type] === undefined || ndims === 0) return `${magic} (${hex})`;
  const kind = magic === 2051 ? ", the MNIST image format" : magic === 2049 ? ", the MNIST label format" : "";
  const plural = ndims === 1 ? "dimension" : "dimensions";
  return `${magic} (${hex}: ${TYPE_NAMES[type]} in ${ndims} ${plural}${kind})`;
}

/** A mirror's error page saved under the data file's name is a common way to get here. */
function htmlHint(bytes: Uint8Array): string {
  const head = String.fromCharCode(...bytes.subarray(0, 64)).trimStart().toLowerCase();
  return head.startsWith("<") ? " — it looks like a web page (an HTML or XML error page?), not data" : "";
}
