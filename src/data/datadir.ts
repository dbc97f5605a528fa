import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

/** The data sets covshift knows how to find, load and download. */
export type DatasetName = "mnist" | "cifar10";

/**
 * What {@link resolveDataDir} looks at besides its arguments. Tests pass
 * their own; everyone else gets the running process's environment.
 */
export interface DataDirContext {
  /** Environment variables; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** Operating system, as `process.platform` spells it; defaults to `process.platform`. */
  platform?: string;
  /** The user's home directory; defaults to `os.homedir()`. */
  homedir?: string;
}

/**
 * The folder a data set's files are read from (and downloaded into).
 *
 * The first rule that applies wins:
 *
 * 1. `flag` — the CLI's `--data DIR`, the loaders' `data` option —
 *    resolved against the current directory: `DIR/<dataset>` (`mnist` or
 *    `cifar10`) if that sub-folder exists, otherwise `DIR` itself. So both
 *    `--data ../shared/data` (the parent of `mnist/` and `cifar10/`) and
 *    `--data ../shared/data/mnist` find the MNIST files.
 * 2. The `COVSHIFT_DATA` environment variable, by the same rule:
 *    `$COVSHIFT_DATA/<dataset>` if that sub-folder exists, otherwise
 *    `$COVSHIFT_DATA` itself. One variable serves both a tree like
 *    `data/mnist`, `data/cifar10` and a folder holding one data set's files
 *    directly.
 * 3. A per-user cache: `%LOCALAPPDATA%\covshift\<dataset>` on Windows
 *    (`~\AppData\Local\...` if the variable is unset), elsewhere
 *    `$XDG_CACHE_HOME/covshift/<dataset>`, or `~/.cache/covshift/<dataset>`
 *    when `XDG_CACHE_HOME` is unset or not an absolute path (the XDG spec
 *    says relative values are to be ignored).
 *
 * Empty strings count as unset. The folder is not created here; the
 * loaders create it only when they have something to download into it.
 */
export function resolveDataDir(dataset: DatasetName, flag?: string, context: DataDirContext = {}): string {
  const env = context.env ?? process.env;
  const platform = context.platform ?? process.platform;
  const home = context.homedir ?? os.homedir();

  if (flag !== undefined && flag !== "") return datasetFolder(flag, dataset);
  const shared = env.COVSHIFT_DATA;
  if (shared !== undefined && shared !== "") return datasetFolder(shared, dataset);

  if (platform === "win32") {
    // Built with path.win32 so the answer is a Windows path even when the
    // rule is exercised from another OS.
    const local = env.LOCALAPPDATA;
    const base = local !== undefined && local !== "" ? local : path.win32.join(home, "AppData", "Local");
    return path.win32.join(base, "covshift", dataset);
  }
  const xdg = env.XDG_CACHE_HOME;
  const cache = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(home, ".cache");
  return path.join(cache, "covshift", dataset);
}

export { REFETCH_ADVICE } from "./idxFormat.js";

/**
 * The closing lines of every "data is missing" error: the two ways to point
 * covshift at a folder that already holds the files.
 */
export function dataDirHelp(dataset: DatasetName): string {
  return (
    `  - or point covshift at a folder that already holds them: pass --data DIR on the command line ` +
    `(or { data: DIR } to the loaders of covshift/data), or set the environment variable COVSHIFT_DATA=DIR ` +
    `(covshift then reads DIR/${dataset} if that folder exists, else DIR itself).`
  );
}

/** `dir/<dataset>` if that folder exists, else `dir` (resolved against the current directory). */
function datasetFolder(dir: string, dataset: DatasetName): string {
  const root = path.resolve(dir);
  const sub = path.join(root, dataset);
  return isDirectory(sub) ? sub : root;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
