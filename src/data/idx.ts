import * as fs from "node:fs";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { isGzip, parseIdx, REFETCH_ADVICE, type IdxArray, type IdxExpectation } from "./idxFormat.js";

export { isGzip, parseIdx, type IdxArray, type IdxExpectation } from "./idxFormat.js";

const gunzip = promisify(zlib.gunzip);

/**
 * Reads and parses an IDX file, gzipped or not. Compression is detected by
 * the gzip magic bytes, not by the name, because mirrors and browsers
 * unpack or rename files without changing one to match the other.
 */
export async function readIdxFile(file: string, expect: IdxExpectation = {}): Promise<IdxArray> {
  let bytes: Uint8Array = await fs.promises.readFile(file);
  if (isGzip(bytes)) {
    try {
      bytes = await gunzip(bytes);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(
        `${file}: is gzip-compressed (starts with 1f 8b) but does not decompress (${why}): ` +
          `it is truncated or damaged; ${REFETCH_ADVICE}`,
        { cause: err },
      );
    }
  }
  return parseIdx(bytes, file, expect);
}
