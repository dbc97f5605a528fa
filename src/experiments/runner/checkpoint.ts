/**
 * Checkpoints that cannot lie (format version 1).
 *
 * A checkpoint is one safetensors file: every tensor (the model's state dict
 * under "model.<key>", the optimizer's buffers under "optimizer.<…>") as
 * binary — never as JSON numbers, so NaN cannot turn into null and back
 * into 0 — and, in the metadata, the run's scalar state as JSON plus:
 *
 *   format   "covshift-checkpoint"      version  "1"
 *   command  "figure1" | "table" | …    run      the run's name, e.g. "batchnorm-seed0"
 *   backend  the kernel build it trained on, e.g. "wasm (relaxed-simd)"
 *   sha256   the SHA-256 of the whole file with these 64 hex digits read as "0"s
 *
 * Files are written atomically (temp + fsync + rename, see writeFileAtomic).
 * On load the safetensors structure, the checksum, the format fields and —
 * by the experiment, with {@link CheckpointFields} — every field of the
 * state are checked; every error names the file and says how to start that
 * run again.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readSafetensors, saveSafetensors } from "../../interop/safetensors.js";
import { writeFileAtomic } from "../../io/files.js";
import { checkpointError, type CheckpointContents } from "./checkpointState.js";

export * from "./checkpointState.js";

export const CHECKPOINT_FORMAT = "covshift-checkpoint";
export const CHECKPOINT_VERSION = "1";
/**
 * The checksum covers the whole file with its own sha256 field read as 64 zeros:
 * written with zeros, hashed, then the digest put in their place (and zeroed
 * again in a copy to verify).
 */
const ZEROED_DIGEST = "0".repeat(64);

export interface CheckpointHeader {
  command: string;
  run: string;
  /** The kernel build, without the thread count (threads do not change results). */
  backend: string;
}

/** A backend description without its thread count: "wasm (simd, 2 threads)" → "wasm (simd)". */
export function backendBuild(description: string): string {
  return description.replace(/, \d+ threads?\)/, ")");
}

/** The checkpoint's bytes: safetensors with the header fields and checksum in its metadata. */
export function encodeCheckpoint(header: CheckpointHeader, contents: CheckpointContents): Uint8Array {
  const metadata = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    command: header.command,
    run: header.run,
    backend: header.backend,
    state: JSON.stringify(contents.state),
    sha256: ZEROED_DIGEST,
  };
  const bytes = saveSafetensors(contents.tensors, metadata);
  const at = checksumOffset(bytes, ZEROED_DIGEST);
  if (at < 0) throw new Error("encodeCheckpoint: the checksum's place was not found in the header (a bug)");
  const digest = createHash("sha256").update(bytes).digest("hex");
  bytes.set(Buffer.from(digest, "ascii"), at);
  return bytes;
}

/** Where the 64 hex digits of `"sha256":"<digits>"` begin in the header, or −1. */
function checksumOffset(bytes: Uint8Array, digits: string): number {
  if (bytes.length < 8) return -1;
  const headerEnd = Math.min(bytes.length, 8 + Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true)));
  const needle = Buffer.from(`"sha256":"${digits}"`, "ascii");
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, headerEnd).indexOf(needle, 8);
  return at < 0 ? -1 : at + needle.length - 65;
}

/**
 * Parse and verify checkpoint bytes (`path` names them in errors): a valid
 * safetensors file, format and version known, checksum matching, the
 * command and run expected (when given), the state a JSON object.
 */
export function decodeCheckpoint(
  bytes: Uint8Array,
  path: string,
  expect: { command?: string; run?: string } = {},
): CheckpointContents & CheckpointHeader {
  let read;
  try {
    read = readSafetensors(bytes);
  } catch (err) {
    throw checkpointError(path, `it is damaged (${(err as Error).message})`);
  }
  const m = read.metadata;
  if (m.format !== CHECKPOINT_FORMAT) {
    throw checkpointError(path, `it is not a covshift checkpoint (its metadata has format ${JSON.stringify(m.format ?? null)}, expected "${CHECKPOINT_FORMAT}")`);
  }
  if (m.version !== CHECKPOINT_VERSION) {
    throw checkpointError(path, `it has format version ${JSON.stringify(m.version ?? null)}; this covshift reads version ${CHECKPOINT_VERSION}`);
  }
  const digest = m.sha256;
  if (typeof digest !== "string" || !/^[0-9a-f]{64}$/.test(digest)) throw checkpointError(path, "its checksum (sha256) is missing or malformed");
  const at = checksumOffset(bytes, digest);
  if (at < 0) throw checkpointError(path, "its checksum (sha256) is not where the format puts it");
  const copy = new Uint8Array(bytes);
  copy.set(Buffer.from(ZEROED_DIGEST, "ascii"), at);
  const actual = createHash("sha256").update(copy).digest("hex");
  if (actual !== digest) throw checkpointError(path, `its contents do not match its checksum (sha256 ${actual}, recorded ${digest}): it was damaged after it was written`);
  for (const key of ["command", "run", "backend", "state"] as const) {
    if (typeof m[key] !== "string") throw checkpointError(path, `its metadata lacks "${key}"`);
  }
  if (expect.command !== undefined && m.command !== expect.command) {
    throw checkpointError(path, `it is a checkpoint of covshift ${m.command}, not ${expect.command}`);
  }
  if (expect.run !== undefined && m.run !== expect.run) throw checkpointError(path, `it is the checkpoint of run "${m.run}", not "${expect.run}"`);
  let state: unknown;
  try {
    state = JSON.parse(m.state);
  } catch (err) {
    throw checkpointError(path, `its state is not valid JSON (${(err as Error).message})`);
  }
  if (state === null || typeof state !== "object" || Array.isArray(state)) throw checkpointError(path, "its state is not a JSON object");
  return { command: m.command, run: m.run, backend: m.backend, tensors: read.tensors, state: state as Record<string, unknown> };
}

export function writeCheckpoint(path: string, header: CheckpointHeader, contents: CheckpointContents): void {
  writeFileAtomic(path, encodeCheckpoint(header, contents));
}

export function readCheckpoint(path: string, expect: { command?: string; run?: string } = {}): CheckpointContents & CheckpointHeader {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw checkpointError(path, `it cannot be read (${(err as Error).message})`);
  }
  return decodeCheckpoint(bytes, path, expect);
}

