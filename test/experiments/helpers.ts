/**
 * What the experiment commands' tests share: small synthetic data sets in
 * the real formats (so the runner's behaviour is tested without
 * ../shared/data), temporary folders, the CLI run as a user runs it, and the
 * checks every command on the experiment runner must pass — bad options
 * refused naming the option, a stopped run resumed to the identical result,
 * a second run on a live run's --out refused by the lock.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { channelStats } from "../../src/data/augment.js";
import type { CifarSplit } from "../../src/data/cifar10.js";
import { LOCK_NAME } from "../../src/experiments/runner/lock.js";
import type { ExperimentOutcome, JobEvent } from "../../src/experiments/runner/runner.js";
import type { TableData } from "../../src/experiments/table/trainer.js";
import { Generator } from "../../src/tensor/random.js";
import { fakeMnistImages, gzip, idxBytes } from "../data/helpers.js";

/** A fresh temporary folder (the caller removes it). */
export const tempDir = (prefix = "covshift-test-") => mkdtempSync(join(tmpdir(), prefix));

/** Run `fn` with `count` fresh temporary folders, removed afterwards whatever happens. */
export async function withTempDirs<T>(count: number, fn: (...dirs: string[]) => Promise<T> | T): Promise<T> {
  const dirs = Array.from({ length: count }, () => tempDir());
  try {
    return await fn(...dirs);
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** A tiny MNIST folder (gzipped IDX files of synthetic images, labels (7i) mod 10): the runner's tests need no real data. */
export function fakeMnistDir(train: number, test: number): string {
  const dir = tempDir("covshift-fake-mnist-");
  const labels = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) % 10);
  for (const [split, n] of [["train", train], ["t10k", test]] as const) {
    writeFileSync(join(dir, `${split}-images-idx3-ubyte.gz`), gzip(idxBytes(2051, [n, 28, 28], fakeMnistImages(n))));
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte.gz`), gzip(idxBytes(2049, [n], labels(n))));
  }
  return dir;
}

/** `count` random 32×32 colour images with random labels. */
export function randomCifarSplit(count: number, seed: number): CifarSplit {
  const g = new Generator(seed);
  const images = new Uint8Array(count * 3 * 32 * 32);
  for (let i = 0; i < images.length; i++) images[i] = g.randint(256);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) labels[i] = g.randint(10);
  return { images, labels, count };
}

/** 32 random training images (4 batches of 8), 10 validation and 6 test images. */
export function syntheticTableData(): TableData {
  const train = randomCifarSplit(32, 1);
  return { train, validation: randomCifarSplit(10, 2), test: randomCifarSplit(6, 3), stats: channelStats(train.images, train.count) };
}

/** `covshift <args>` as a user runs it (CI=1: plain progress lines). */
export function covshift(args: readonly string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, ["bin/covshift.js", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
}

/**
 * Each `[args, message]` case of `covshift <command> <base> <args>` exits
 * with 1 and a message matching `message`, without a stack trace (and,
 * with `noData`, before the data was looked at).
 */
export function assertRefused(command: string, base: readonly string[], cases: readonly (readonly [readonly string[], RegExp])[], options: { noData?: RegExp } = {}): void {
  for (const [args, message] of cases) {
    const what = `${command} ${args.join(" ")}`;
    const r = covshift([command, ...base, ...args]);
    assert.equal(r.status, 1, `${what}: ${r.stderr}`);
    assert.match(r.stderr, message, what);
    assert.doesNotMatch(r.stderr, /    at /, `${what}: no stack trace`);
    if (options.noData) assert.doesNotMatch(r.stderr, options.noData, `${what}: refused before the data was looked at`);
  }
}

/**
 * Run an experiment whole, and again stopped (its stop flag set at the first
 * event `stopAt` accepts) then resumed; `between(parted)` may check the
 * stopped folder (and must leave it as it found it). Returns both complete
 * results for the caller to compare.
 */
export async function wholeAndResumed<R, E>(
  run: (o: { outDir: string; resume?: boolean; stopFlag?: SharedArrayBuffer; onEvent?: (e: E) => void }) => Promise<ExperimentOutcome<R>>,
  stopAt: (e: E) => boolean,
  between: (parted: string) => Promise<void> | void = () => {},
): Promise<{ whole: R; resumed: R }> {
  return withTempDirs(2, async (whole, parted) => {
    const full = await run({ outDir: whole });
    assert.equal(full.status, "complete");
    const stopFlag = new SharedArrayBuffer(4);
    const stopped = await run({ outDir: parted, stopFlag, onEvent: (e) => stopAt(e) && Atomics.store(new Int32Array(stopFlag), 0, 1) });
    assert.equal(stopped.status, "interrupted");
    assert.ok(!existsSync(join(parted, LOCK_NAME)), "the lock is released after a stop");
    await between(parted);
    const resumed = await run({ outDir: parted, resume: true });
    assert.equal(resumed.status, "complete");
    if (full.status !== "complete" || resumed.status !== "complete") throw new Error("unreachable");
    return { whole: full.result, resumed: resumed.result };
  });
}

/** A job event that is an evaluation at step ≥ `step`. */
export const evalAtLeast = (step: number) => (m: JobEvent) => m.type === "eval" && m.step >= step;

/**
 * `covshift <args>` (which must run long: its --out is `outDir`) takes the
 * lock; a second run on the same --out — as given, with --resume, with
 * --overwrite, with --overwrite and other settings — is refused with "in use
 * by pid N since T"; Ctrl-C then stops the first, which releases the lock.
 */
export async function assertSecondRunRefused(args: readonly string[], outDir: string, otherSetting: readonly string[]): Promise<void> {
  const first = spawn(process.execPath, ["bin/covshift.js", ...args], { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, CI: "1" } });
  let stderr = "";
  first.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => first.once("exit", r));
  try {
    // Wait until the first run holds the lock (it loads the data first: slow on a loaded machine).
    for (let i = 0; i < 2400 && !existsSync(join(outDir, LOCK_NAME)) && first.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(join(outDir, LOCK_NAME)), `the first run took the lock (its stderr: ${stderr})`);
    for (const extra of [[], ["--resume"], ["--overwrite"], ["--overwrite", ...otherSetting]]) {
      const second = covshift([...args, ...extra]);
      assert.equal(second.status, 1, `${extra.join(" ")}: ${second.stderr}`);
      assert.match(second.stderr, new RegExp(`is in use by pid ${first.pid} since \\d{4}-\\d\\d-\\d\\dT`), extra.join(" "));
    }
  } finally {
    first.kill("SIGINT");
    await exited;
  }
  assert.ok(!existsSync(join(outDir, LOCK_NAME)), "Ctrl-C released the lock");
}
