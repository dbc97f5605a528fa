// `npm run bench` compares covshift with TensorFlow.js; TF.js (about 290 MB)
// is not a devDependency of covshift, so a plain `npm ci` stays lean. This
// script installs the bench's peers into bench/peers/node_modules on first
// use — `npm ci` of bench/peers/package-lock.json, from the npm registry
// (npm's cache first) — and does nothing once they are there. If the install
// fails (offline, no cache), the bench still runs and says TF.js was not
// measured. COVSHIFT_BENCH_PEERS=0 skips the install.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const peers = join(dirname(fileURLToPath(import.meta.url)), "..", "bench", "peers");
const marker = join(peers, "node_modules", "@tensorflow", "tfjs-backend-wasm", "package.json");

if (process.env.COVSHIFT_BENCH_PEERS === "0") {
  console.log("bench-peers: COVSHIFT_BENCH_PEERS=0, TensorFlow.js not installed");
} else if (!existsSync(marker)) {
  console.log("bench-peers: installing TensorFlow.js for the bench into bench/peers/node_modules (npm ci, once)…");
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["ci", "--prefix", peers, "--prefer-offline", "--no-audit", "--no-fund"], { stdio: "inherit" });
  if (r.status !== 0) {
    console.log(`bench-peers: the install failed (${r.error?.message ?? `exit ${r.status}`}); the bench runs without TensorFlow.js`);
  }
}
