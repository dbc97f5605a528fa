/**
 * The package as a user gets it: `npm pack` of this repository (without
 * lifecycle scripts — `npm test` has built dist/ already), installed into
 * an empty folder's node_modules. The library has no dependencies, so the
 * install reads the tarball alone (--offline: no registry).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** A new temp folder (the caller removes it) with covshift installed from its packed tarball. */
export function installPackedCovshift(prefix: string): string {
  const root = resolve(".");
  const dir = mkdtempSync(join(tmpdir(), prefix));
  execFileSync("npm", ["pack", "--ignore-scripts", "--pack-destination", dir], { cwd: root, stdio: "ignore" });
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "npm pack wrote no tarball");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "covshift-user", version: "1.0.0", private: true }));
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", `./${tarball}`], { cwd: dir, stdio: "ignore" });
  return dir;
}
