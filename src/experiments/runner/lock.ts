/**
 * One run per output folder: `<out>/.covshift.lock` holds the process id,
 * host, command and start time of the run that owns the folder. It is taken
 * atomically (written complete beside, then hard-linked into place, which
 * fails if the lock exists), released on exit — normal, error or Ctrl-C —
 * and taken over when its process is gone (same host, no such pid).
 */
import { linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

export const LOCK_NAME = ".covshift.lock";

interface LockInfo {
  pid: number;
  host: string;
  command: string;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const info = JSON.parse(readFileSync(path, "utf8"));
    if (Number.isInteger(info?.pid) && typeof info.host === "string" && typeof info.since === "string") return info as LockInfo;
  } catch {
    /* unreadable: treated below */
  }
  return null;
}

/**
 * Take the lock of `outDir` (which must exist) for `command`. Refuses with
 * "in use by pid N since T" while another live process holds it; returns
 * the release function (idempotent; also run on process exit).
 */
export function acquireOutputLock(outDir: string, command: string): () => void {
  const path = join(outDir, LOCK_NAME);
  const me: LockInfo = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  const tmp = join(outDir, `.covshift.lock.${process.pid}.${randomBytes(4).toString("hex")}.part`);
  writeFileSync(tmp, JSON.stringify(me) + "\n");
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 3) throw err;
      }
      const other = readLock(path);
      if (other !== null && other.pid === process.pid && other.host === me.host) {
        throw new Error(`${command}: ${outDir} is already in use by this process (pid ${process.pid}, ${other.command} since ${other.since}); give each run its own --out`);
      }
      if (other !== null && (other.host !== me.host || alive(other.pid))) {
        throw new Error(
          `${command}: ${outDir} is in use by pid ${other.pid}${other.host !== me.host ? ` on ${other.host}` : ""} since ${other.since} (covshift ${other.command}). ` +
            `Wait for it to finish, stop it (Ctrl-C) and continue with --resume, or choose another --out.` +
            (other.host !== me.host ? ` If that process is gone, delete ${path}.` : ""),
        );
      }
      // Its process is gone (or the lock is unreadable, left half-written by a crash long ago): take it over.
      rmSync(path, { force: true });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off("exit", release);
    const now = readLock(path);
    if (now !== null && now.pid === me.pid && now.since === me.since) rmSync(path, { force: true });
  };
  process.on("exit", release);
  return release;
}
