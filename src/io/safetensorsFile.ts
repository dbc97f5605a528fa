/** safetensors files on disk (Node only): written atomically, read with errors that name the file. */
import { readFileSync } from "node:fs";
import type { StateDict } from "../nn/module.js";
import { readSafetensors, saveSafetensors, type SafetensorsContents } from "../interop/safetensors.js";
import { writeFileAtomic } from "./files.js";

/**
 * Write `stateDict` (and `metadata`) to `path` as safetensors: the file is
 * complete or absent, never half-written (see writeFileAtomic).
 */
export function saveSafetensorsFile(path: string, stateDict: StateDict, metadata?: Record<string, string>): void {
  writeFileAtomic(path, saveSafetensors(stateDict, metadata));
}

/** Read a safetensors file: its tensors and `__metadata__`. Every error names the file. */
export function loadSafetensorsFile(path: string): SafetensorsContents {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return readSafetensors(bytes);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
}
