/**
 * The experiment runner (issue 15): checkpoints that cannot lie, one run
 * per output folder, options checked up front, stray temporary files
 * removed, and resume refused when it could not give the identical result.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Tensor } from "../../src/index.js";
import { defaultFigure1Config, type Figure1Config } from "../../src/experiments/figure1/config.js";
import { runFigure1 } from "../../src/experiments/figure1/run.js";
import { Figure1Trainer, type ImageSet } from "../../src/experiments/figure1/trainer.js";
import {
  backendBuild,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpoint,
  writeCheckpoint,
  type CheckpointContents,
} from "../../src/experiments/runner/checkpoint.js";
import { acquireOutputLock, LOCK_NAME } from "../../src/experiments/runner/lock.js";
import { removeStrayTempFiles } from "../../src/experiments/runner/runner.js";
import { assertSecondRunRefused, fakeMnistDir } from "./helpers.js";

const small: Figure1Config = { ...defaultFigure1Config, steps: 40, evalEvery: 10, seeds: 1, populationBatches: 5, backend: "reference" };
const limits = { train: 600, test: 200 };
const tempDir = () => mkdtempSync(join(tmpdir(), "covshift-runner-"));

/** 240 random "images" (no real data needed to test checkpoints). */
function syntheticImages(count: number, seed: number): ImageSet {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return {
    images: Float32Array.from({ length: count * 784 }, next),
    labels: Uint8Array.from({ length: count }, () => Math.floor(next() * 10)),
    count,
  };
}
const train = syntheticImages(240, 1);
const test = syntheticImages(50, 2);
const header = { command: "figure1", run: "batchnorm-seed0", backend: "reference" };

/** A batchnorm trainer stopped at step 23 (two evaluations behind it), and its checkpoint. */
function stoppedAt23(): { trainer: Figure1Trainer; checkpoint: CheckpointContents } {
  const trainer = new Figure1Trainer("batchnorm", 0, small, train, test);
  while (trainer.step < 23) {
    trainer.trainStep();
    if (trainer.step % small.evalEvery === 0) trainer.record();
  }
  return { trainer, checkpoint: trainer.checkpoint() };
}

/** Encode (a valid checksum: the tampering is in the content), decode, restore into a fresh trainer. */
function restoreTampered(edit: (c: CheckpointContents) => void): void {
  const { checkpoint } = stoppedAt23();
  edit(checkpoint);
  const decoded = decodeCheckpoint(encodeCheckpoint(header, checkpoint), "/out/checkpoints/batchnorm-seed0.safetensors");
  new Figure1Trainer("batchnorm", 0, small, train, test).restore(decoded, "/out/checkpoints/batchnorm-seed0.safetensors");
}

describe("checkpoints: the format", () => {
  it("round-trips tensors bit for bit (NaN stays NaN, not null → 0) and the state as JSON", () => {
    const tensors = { "model.w": new Tensor(Float32Array.from([1.5, NaN, -0, 3e-40]), [2, 2]), "model.n": new Tensor(Float64Array.from([7]), []) };
    const bytes = encodeCheckpoint(header, { tensors, state: { step: 3, nested: { a: [1, 2] } } });
    const back = decodeCheckpoint(bytes, "x.safetensors");
    assert.deepEqual(Buffer.from(back.tensors["model.w"].data.buffer), Buffer.from(tensors["model.w"].data.buffer));
    assert.deepEqual(back.tensors["model.w"].shape, [2, 2]);
    assert.deepEqual(back.state, { step: 3, nested: { a: [1, 2] } });
    assert.equal(back.backend, "reference");
    assert.deepEqual(encodeCheckpoint(header, { tensors, state: { step: 3, nested: { a: [1, 2] } } }), bytes, "the same bytes for the same contents");
  });

  it("a flipped bit anywhere (header, padding, data) is caught by the checksum, naming the file and how to start again", () => {
    const { checkpoint } = stoppedAt23();
    const bytes = encodeCheckpoint(header, checkpoint);
    for (const at of [9, 200, bytes.length >> 1, bytes.length - 1]) {
      const bad = new Uint8Array(bytes);
      bad[at] ^= 0x10;
      assert.throws(
        () => decodeCheckpoint(bad, "/o/checkpoints/b.safetensors"),
        /^Error: checkpoint \/o\/checkpoints\/b\.safetensors: .*(checksum|damaged|not a covshift checkpoint|format version).*Delete \/o\/checkpoints\/b\.safetensors to start that run again .*--overwrite/,
        `byte ${at}`,
      );
    }
    assert.throws(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 7), "c.safetensors"), /checkpoint c\.safetensors: it is damaged \(loadSafetensors: .*truncated/);
  });

  it("refuses another command's or run's checkpoint and an unknown version", () => {
    const bytes = encodeCheckpoint(header, { tensors: {}, state: {} });
    assert.throws(() => decodeCheckpoint(bytes, "f", { command: "table" }), /it is a checkpoint of covshift figure1, not table/);
    assert.throws(() => decodeCheckpoint(bytes, "f", { run: "baseline-seed0" }), /it is the checkpoint of run "batchnorm-seed0", not "baseline-seed0"/);
    const v2 = Buffer.from(bytes).toString("latin1").replace('"version":"1"', '"version":"2"');
    assert.throws(() => decodeCheckpoint(Buffer.from(v2, "latin1"), "f"), /format version "2"; this covshift reads version 1/);
  });

  it("backendBuild leaves out the thread count, which does not change results", () => {
    assert.equal(backendBuild("wasm (relaxed-simd, 2 threads)"), "wasm (relaxed-simd)");
    assert.equal(backendBuild("wasm (simd)"), "wasm (simd)");
    assert.equal(backendBuild("reference"), "reference");
  });
});

describe("checkpoints: every field is checked on load", () => {
  const file = /checkpoint \/out\/checkpoints\/batchnorm-seed0\.safetensors: /;
  const expectRefused = (edit: (c: CheckpointContents) => void, what: RegExp) =>
    assert.throws(() => restoreTampered(edit), (err: Error) => {
      assert.match(err.message, what);
      return true;
    });

  it("a valid checkpoint restores (and continues to the same bits: see figure1.test.ts)", () => {
    restoreTampered(() => {});
  });

  it("NaN in the model is refused naming the key (it was saved as null and read back as 0 before)", () => {
    expectRefused((c) => (c.tensors["model.0.weight"].data[5] = NaN), /loadStateDict: '0\.weight' holds a non-finite value \(NaN\) at index 5/);
  });

  it("NaN or a huge value in a momentum buffer is refused naming the buffer (not blamed on the learning rate later)", () => {
    expectRefused((c) => (c.tensors["optimizer.velocity.0"].data[0] = NaN), /'velocity\[0\]' \(momentum buffer 0\) holds NaN/);
    expectRefused((c) => (c.tensors["optimizer.velocity.2"].data[1] = 1e300), /'velocity\[2\]' \(momentum buffer 2\) holds Infinity/);
  });

  it("step beyond --steps, a negative step and a cursor beyond the data are refused", () => {
    expectRefused((c) => (c.state.step = 5000), new RegExp(file.source + '"step" must be a whole number in \\[0, 40\\]; it is 5000'));
    expectRefused((c) => (c.state.step = -10), /"step" must be a whole number in \[0, 40\]; it is -10/);
    expectRefused((c) => (c.state.cursor = 1e9), /"cursor" must be a whole number in \[0, 240\]; it is 1000000000/);
    expectRefused((c) => (c.state.step = 40), /"step" is 40, the last step/);
  });

  it("measurements must match the step count and be finite numbers", () => {
    expectRefused((c) => (c.state.result as any).testAccuracy.push(0.5), /"result\.testAccuracy" must hold 2 values \(one per evaluation so far\); it holds 3/);
    expectRefused((c) => ((c.state.result as any).trainLoss[1] = null), /"result\.trainLoss\[1\]" must be a finite number in \[0, Infinity\]; it is null/);
    expectRefused((c) => ((c.state.result as any).steps[0] = 7), /"result\.steps\[0\]" is 7; evaluations happen every 10 steps/);
    expectRefused((c) => (c.state.lossSum = null), /"lossSum" must be a finite number; it is null/);
  });

  it("a missing key is named (not 'Cannot read properties of undefined')", () => {
    expectRefused((c) => delete c.state.optimizerSteps, /"optimizerSteps" is missing/);
    expectRefused((c) => delete c.tensors["optimizer.velocity.1"], /"optimizer\.velocity\.1" \(the momentum buffer of parameter 1\) is missing/);
    expectRefused((c) => delete c.tensors["model.1.running_var"], /Missing keys: 1\.running_var/);
    expectRefused((c) => (c.tensors["optimizer.velocity.99"] = new Tensor(new Float32Array(1), [1])), /"optimizer\.velocity\.99" is a tensor this run does not have/);
    expectRefused((c) => (c.state.dataGenerator = [1, 2, 3]), /"dataGenerator" must be a generator state/);
  });

  it("a negative running variance is refused", () => {
    expectRefused((c) => (c.tensors["model.1.running_var"].data[0] = -1), /'1\.running_var' holds -1 at index 0, but it cannot be negative/);
  });

  it("the checkpoint of another run is refused", () => {
    expectRefused((c) => (c.state.seed = 4), /"network" and "seed" say batchnorm seed 4, but this run is batchnorm seed 0/);
  });
});

describe("one run per output folder", () => {
  it("a second lock on a folder in use by a live process is refused with 'in use by pid N since T'; released, it can be taken", () => {
    const dir = tempDir();
    try {
      const other = { pid: process.ppid, host: hostname(), command: "figure1", since: "2026-01-01T00:00:00.000Z" };
      writeFileSync(join(dir, LOCK_NAME), JSON.stringify(other));
      assert.throws(() => acquireOutputLock(dir, "table"), new RegExp(`table: ${dir} is in use by pid ${process.ppid} since 2026-01-01T00:00:00\\.000Z \\(covshift figure1\\)`));
      rmSync(join(dir, LOCK_NAME));
      const release = acquireOutputLock(dir, "figure1");
      const info = JSON.parse(readFileSync(join(dir, LOCK_NAME), "utf8"));
      assert.equal(info.pid, process.pid);
      assert.equal(info.host, hostname());
      assert.throws(() => acquireOutputLock(dir, "figure1"), /already in use by this process/);
      release();
      assert.ok(!existsSync(join(dir, LOCK_NAME)), "released");
      release(); // twice is harmless
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the lock of a process that is gone is taken over", () => {
    const dir = tempDir();
    try {
      const gone = spawnSync(process.execPath, ["-e", "0"]).pid!;
      writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pid: gone, host: hostname(), command: "figure1", since: "2026-01-01T00:00:00.000Z" }));
      const release = acquireOutputLock(dir, "figure1");
      assert.equal(JSON.parse(readFileSync(join(dir, LOCK_NAME), "utf8")).pid, process.pid);
      release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a lock left half-written is taken over; a lock of another host is refused with how to clear it", () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, LOCK_NAME), "{\"pid\": 12");
      acquireOutputLock(dir, "figure1")();
      writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ pid: 1, host: "elsewhere", command: "table", since: "T0" }));
      assert.throws(() => acquireOutputLock(dir, "figure1"), /in use by pid 1 on elsewhere since T0 .*If that process is gone, delete/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the lock goes when the process exits, even by an uncaught error", () => {
    const dir = tempDir();
    try {
      const script = `import("${resolve("dist/src/experiments/runner/lock.js")}").then((m) => { m.acquireOutputLock(${JSON.stringify(dir)}, "figure1"); throw new Error("boom"); });`;
      const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /boom/);
      assert.ok(!existsSync(join(dir, LOCK_NAME)), "released on exit");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("stray temporary files", () => {
  it("temporary files of atomic writes killed mid-way are removed (the folder and its subfolders), nothing else", () => {
    const dir = tempDir();
    try {
      mkdirSync(join(dir, "checkpoints"));
      const stray = [join(dir, ".figure1.json.123.ab12cd34.part"), join(dir, "checkpoints", ".batchnorm-seed0.safetensors.99.0011aabb.part")];
      for (const p of stray) writeFileSync(p, "half");
      writeFileSync(join(dir, "checkpoints", "keep.safetensors"), "x");
      writeFileSync(join(dir, "notes.part"), "not ours: no leading dot");
      assert.deepEqual(removeStrayTempFiles(dir).sort(), stray.sort());
      assert.ok(existsSync(join(dir, "checkpoints", "keep.safetensors")) && existsSync(join(dir, "notes.part")));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("options are checked before any work starts", () => {
  const run = (patch: Partial<Parameters<typeof runFigure1>[0]>, config: Partial<Figure1Config> = {}) =>
    runFigure1({ config: { ...small, ...config }, dataDir: "/nonexistent/mnist", outDir: join(tmpdir(), "covshift-never-written"), jobs: 1, download: false, ...patch });

  it("figure1: each bad option is named with what it got and what it accepts (before the data is even read)", async () => {
    await assert.rejects(run({ limits: { train: 30 } }), /figure1: --train-limit must be a whole number ≥ 60 \(at least one batch of --batch-size 60\); got 30/);
    await assert.rejects(run({ limits: { test: 0 } }), /figure1: --test-limit must be a whole number ≥ 1; got 0/);
    await assert.rejects(run({}, { evalEvery: 50, steps: 40 }), /figure1: --eval-every \(50\) must be at most --steps \(40\)/);
    await assert.rejects(run({ jobs: 0 }), /figure1: --jobs must be a whole number ≥ 1 \(runs trained at once\); got 0/);
    await assert.rejects(run({ threads: -3 }), /figure1: --threads must be a whole number ≥ 1 .*; got -3/);
    await assert.rejects(run({ resume: true, overwrite: true }), /figure1: --resume and --overwrite contradict each other/);
  });

  it("--out that is a file, lies under a file, or cannot be written is refused", async () => {
    const dir = tempDir();
    try {
      const file = join(dir, "a-file");
      writeFileSync(file, "x");
      await assert.rejects(run({ outDir: file }), /figure1: --out .*a-file is a file, not a directory/);
      await assert.rejects(run({ outDir: join(file, "sub") }), /figure1: --out .*a-file\/sub cannot be made: .*a-file is a file/);
      // A folder this user cannot write: a read-only one for a user, /sys for root (whom permission bits do not stop).
      if (process.getuid?.() !== 0) {
        const locked = join(dir, "locked");
        mkdirSync(locked);
        chmodSync(locked, 0o500);
        await assert.rejects(run({ outDir: join(locked, "out") }), /figure1: --out .*locked\/out cannot be written/);
        chmodSync(locked, 0o700);
      } else {
        await assert.rejects(run({ outDir: "/sys/covshift-out" }), /figure1: --out \/sys\/covshift-out cannot be made or written \(EPERM[^)]*\); choose a directory you can write/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("runs on synthetic MNIST files (no real data needed)", () => {
  let mnist = "";
  before(() => (mnist = fakeMnistDir(600, 200)));
  after(() => rmSync(mnist, { recursive: true, force: true }));

  it("a damaged or tampered checkpoint stops --resume with an error naming the file; an old JSON checkpoint too; stray temp files are removed; another backend is refused", async () => {
    const out = tempDir();
    try {
      const stopFlag = new SharedArrayBuffer(4);
      const stopped = await runFigure1({
        config: small, dataDir: mnist, outDir: out, jobs: 1, limits, stopFlag,
        onEvent: (e) => e.message.type === "eval" && Atomics.store(new Int32Array(stopFlag), 0, 1),
      });
      assert.equal(stopped.status, "interrupted");
      assert.ok(!existsSync(join(out, LOCK_NAME)), "the lock is released after a stop");
      // The heavier BN run starts first (JobPlan.weight): with --jobs 1 it is the one stopped mid-run.
      assert.ok(!existsSync(join(out, "checkpoints", "baseline-seed0.safetensors")), "the baseline run had not started");
      const path = join(out, "checkpoints", "batchnorm-seed0.safetensors");
      const good = readFileSync(path);
      // NaN written into the model (with a valid checksum): refused, naming the file and the key
      const c = readCheckpoint(path);
      c.tensors["model.0.weight"].data[0] = NaN;
      writeCheckpoint(path, c, c);
      const stray = join(out, "checkpoints", ".batchnorm-seed0.safetensors.1.deadbeef.part");
      writeFileSync(stray, "half a checkpoint");
      const resume = (config = small) => runFigure1({ config, dataDir: mnist, outDir: out, jobs: 1, limits, resume: true });
      await assert.rejects(resume(), (err: Error) => {
        assert.match(err.message, /^batchnorm seed 0: checkpoint .*batchnorm-seed0\.safetensors: it does not fit this run: loadStateDict: '0\.weight' holds a non-finite value \(NaN\).*Delete .*batchnorm-seed0\.safetensors to start that run again/);
        return true;
      });
      assert.ok(!existsSync(stray), "the stray temporary file was removed");
      assert.ok(!existsSync(join(out, LOCK_NAME)), "the lock is released after an error");
      // one bit flipped on disk
      const flipped = Buffer.from(good);
      flipped[flipped.length - 3] ^= 1;
      writeFileSync(path, flipped);
      await assert.rejects(resume(), /checkpoint .*batchnorm-seed0\.safetensors: its contents do not match its checksum/);
      // resume with another --backend than the run was made with: refused by the settings…
      writeFileSync(path, good);
      await assert.rejects(resume({ ...small, backend: "wasm" }), /figure1 --resume: .* holds a run made with other settings \(backend: "reference" then, "wasm" now\)/);
      // …and a checkpoint made on another kernel build (--backend auto resolving elsewhere, another machine) by the checkpoint's own record
      const other = readCheckpoint(path);
      writeCheckpoint(path, { ...other, backend: "wasm (relaxed-simd)" }, other);
      await assert.rejects(
        resume(),
        /checkpoint .*batchnorm-seed0\.safetensors: it was made on backend wasm \(relaxed-simd\), this run would continue on reference, and the result would no longer be identical.*Resume with the backend that made it/,
      );
      writeFileSync(path, good);
      // an old-format checkpoint
      writeFileSync(join(out, "checkpoints", "baseline-seed0.json"), "{}");
      await assert.rejects(resume(), /checkpoint .*baseline-seed0\.json: it is of an older covshift/);
      rmSync(join(out, "checkpoints", "baseline-seed0.json"));
      const resumed = await resume();
      assert.equal(resumed.status, "complete");
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("jobs start heaviest first; a checkpoint is written at an evaluation only checkpointSeconds after the last one (0: at every evaluation)", async () => {
    for (const checkpointSeconds of [0, 3600]) {
      const out = tempDir();
      try {
        const started: string[] = [];
        // The worker writes its step-10 checkpoint (if any) before it posts the step-20 evaluation.
        const seenAtStep20 = new Map<string, boolean>();
        const done = await runFigure1({
          config: small, dataDir: mnist, outDir: out, jobs: 1, limits, checkpointSeconds,
          onEvent: (e) => {
            const name = `${e.network}-seed${e.seed}`;
            if (e.message.type === "started") started.push(name);
            if (e.message.type === "eval" && e.message.step === 20) seenAtStep20.set(name, existsSync(join(out, "checkpoints", `${name}.safetensors`)));
          },
        });
        assert.equal(done.status, "complete");
        assert.deepEqual(started, ["batchnorm-seed0", "baseline-seed0"], "the BN run (weight 1.1) starts before the baseline (1)");
        assert.deepEqual([...seenAtStep20.values()], [checkpointSeconds === 0, checkpointSeconds === 0], `checkpointSeconds ${checkpointSeconds}`);
        assert.ok(!existsSync(join(out, "checkpoints", "batchnorm-seed0.safetensors")), "a finished run's checkpoint is removed");
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    }
  });

  it("a second covshift figure1 on an --out in use is refused with 'in use by pid N since T', with and without --resume/--overwrite", async () => {
    const out = tempDir();
    try {
      const args = ["figure1", "--data", mnist, "--no-download", "--steps", "100000", "--eval-every", "200", "--seeds", "1", "--jobs", "1",
        "--train-limit", "600", "--test-limit", "100", "--population-batches", "2", "--backend", "reference", "--out", out];
      await assertSecondRunRefused(args, out, ["--lr", "0.05"]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
