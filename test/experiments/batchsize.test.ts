/**
 * covshift batchsize: ghost BN's virtual batch rule, an end-to-end run on a
 * slice of MNIST through the CLI (every row, the table, the JSON, the
 * picture) and its errors.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ghostSize } from "../../src/experiments/batchsize/run.js";
import { realData } from "../realData.js";

const MNIST = realData("mnist"); // the end-to-end run needs ../shared/data/mnist
const NO_DATA = ["--data", join(tmpdir(), "covshift-no-data"), "--no-download"]; // options are refused before data is read
const run = (args: string[]) => spawnSync(process.execPath, ["bin/covshift.js", "batchsize", ...args], { encoding: "utf8" });

describe("covshift batchsize", () => {
  it("ghost BN's virtual batch is the largest divisor of the batch not above the cap", () => {
    assert.deepEqual([2, 4, 8, 16, 32, 60].map((b) => ghostSize(b, 16)), [2, 4, 8, 16, 16, 15]);
    assert.equal(ghostSize(7, 4), 7); // a prime above the cap: no divisor to use, the whole batch
  });

  it("runs end to end on a slice of MNIST: every row, the table, batchsize.json and the picture", { skip: MNIST.skip }, () => {
    const out = mkdtempSync(join(tmpdir(), "covshift-batchsize-"));
    try {
      const r = run(["--data", MNIST.dir, "--steps", "6", "--batch-sizes", "4,6", "--workers", "2", "--train-limit", "600", "--test-limit", "200",
        "--population-batches", "2", "--ghost-batch-size", "2", "--out", out]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /\| Batch Renorm \|/);
      const result = JSON.parse(readFileSync(join(out, "batchsize.json"), "utf8"));
      const kinds = result.runs.map((x: { variant: string; batchSize: number }) => `${x.variant}@${x.batchSize}`);
      assert.deepEqual(kinds, ["bn@4", "bn-population@4", "ghost@4", "renorm@4", "bn@6", "bn-population@6", "ghost@6", "renorm@6", "syncbn-workers@30", "bn-workers@30"]);
      assert.equal(result.examples, 360);
      assert.equal(result.runs[0].steps, 90);
      assert.equal(result.runs[2].virtualBatchSize, 2);
      for (const x of result.runs) assert.ok(x.testAccuracy >= 0 && x.testAccuracy <= 1);
      for (const f of ["summary.md", "batchsize.svg", "batchsize.png"]) assert.ok(existsSync(join(out, f)), f);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("bad options give a clear message and exit code 1", () => {
    const out = join(tmpdir(), "covshift-batchsize-never");
    const r1 = run([...NO_DATA, "--batch-sizes", "1,4", "--out", out]);
    assert.equal(r1.status, 1);
    assert.match(r1.stderr, /every batch size must be at least 2/);
    assert.match(run([...NO_DATA, "--workers", "7", "--out", out]).stderr, /--workers 7 does not split the batch of 60/);
    assert.match(run([...NO_DATA, "--workers", "0", "--out", out]).stderr, /--workers values must be integers ≥ 1; got 0/);
    assert.match(run([...NO_DATA, "--variants", "bn,magic", "--out", out]).stderr, /unknown variant "magic"/);
    assert.match(run([...NO_DATA, "--batch-sizes", "a", "--out", out]).stderr, /--batch-sizes must be a comma-separated list of integers/);
  });
});
