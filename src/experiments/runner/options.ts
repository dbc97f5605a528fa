/**
 * The options every experiment command shares, checked before any work
 * starts: each message names the option, what it got and what it accepts.
 */
import { accessSync, constants, existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

export interface SharedRunOptions {
  outDir: string;
  resume?: boolean;
  overwrite?: boolean;
  /** Runs trained at once, each in its own worker thread. */
  jobs: number;
  /** Threads of each job's wasm kernels (1 by default). */
  threads?: number;
}

/** A whole number ≥ min, or an error naming the option. */
export function checkWholeNumber(command: string, flag: string, value: unknown, min: number, what = ""): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new Error(`${command}: ${flag} must be a whole number ≥ ${min}${what}; got ${JSON.stringify(value) ?? String(value)}`);
  }
}

export function checkSharedOptions(command: string, o: SharedRunOptions): void {
  checkWholeNumber(command, "--jobs", o.jobs, 1, " (runs trained at once)");
  if (o.threads !== undefined) checkWholeNumber(command, "--threads", o.threads, 1, " (threads of each run's kernels)");
  if (o.resume && o.overwrite) {
    throw new Error(
      `${command}: --resume and --overwrite contradict each other (--resume continues the run in --out, --overwrite discards it); give one of them`,
    );
  }
  checkOutDir(command, o.outDir);
}

/**
 * `--out` must be a directory, or a path where one can be made: an existing
 * file (or a file on the way) and a folder this process cannot write are
 * refused before any data is loaded. The (empty) folder is made here.
 */
export function checkOutDir(command: string, outDir: string): void {
  if (typeof outDir !== "string" || outDir === "") throw new Error(`${command}: --out must name a directory; got ${JSON.stringify(outDir)}`);
  let p = resolve(outDir);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  const st = statSync(p);
  if (!st.isDirectory()) {
    throw new Error(
      p === resolve(outDir)
        ? `${command}: --out ${outDir} is a file, not a directory; choose a directory (it is created when missing)`
        : `${command}: --out ${outDir} cannot be made: ${p} is a file; choose a directory`,
    );
  }
  try {
    accessSync(p, constants.W_OK | constants.X_OK);
  } catch {
    throw new Error(`${command}: --out ${outDir} cannot be written (${p} is not writable by this user); choose a directory you can write`);
  }
  // The permission bits are not the whole story (root, read-only mounts, /proc): make the folder now.
  try {
    // One level at a time from the nearest existing folder (a recursive mkdir under /proc never returns on some Node versions).
    const missing: string[] = [];
    for (let q = resolve(outDir); q !== p; q = dirname(q)) missing.unshift(q);
    for (const q of missing) mkdirSync(q);
    accessSync(outDir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new Error(`${command}: --out ${outDir} cannot be made or written (${(err as Error).message}); choose a directory you can write`);
  }
}

/** `--<split>-limit`: absent, or a whole number ≥ min. */
export function checkLimit(command: string, flag: string, value: number | undefined, min: number, why: string): void {
  if (value === undefined) return;
  checkWholeNumber(command, flag, value, min, why);
}
