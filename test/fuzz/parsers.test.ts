/**
 * Fuzzing of every parser of outside bytes (issue 15, part 6), with
 * fast-check: valid files of each format, then random truncations, bit
 * flips, overwritten bytes, appended bytes and header edits. Every input
 * must give a clean error (an Error — not a TypeError or RangeError — whose
 * message names the file) or a valid load; never a crash, hang or
 * out-of-memory.
 *
 *   npm test          a bounded run (COVSHIFT_FUZZ_RUNS, default 40 inputs per parser)
 *   npm run fuzz      a longer campaign (2,000 inputs per parser)
 *   COVSHIFT_FUZZ_SEED=<n> reproduces a run: every test logs its seed.
 */
import { after, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { parseIdx, readIdxFile } from "../../src/data/idx.js";
import { loadCifar10 } from "../../src/data/cifar10.js";
import { readSafetensors, saveSafetensors } from "../../src/interop/safetensors.js";
import { decodeCheckpoint, encodeCheckpoint } from "../../src/experiments/runner/checkpoint.js";
import { defaultFigure1Config, type Figure1Config } from "../../src/experiments/figure1/config.js";
import { Figure1Trainer, type ImageSet } from "../../src/experiments/figure1/trainer.js";
import { Generator, nn } from "../../src/index.js";
import { cifarRecords, gzip, idxBytes, makeTempDir, removeTempDirs } from "../data/helpers.js";

after(removeTempDirs);

const RUNS = Number(process.env.COVSHIFT_FUZZ_RUNS ?? 40);
const BASE_SEED = process.env.COVSHIFT_FUZZ_SEED !== undefined ? Number(process.env.COVSHIFT_FUZZ_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;

/** A damage to a file's bytes. */
type Mutation =
  | { kind: "truncate"; at: number }
  | { kind: "flip"; bits: [number, number][] }
  | { kind: "set"; bytes: [number, number][] }
  | { kind: "append"; extra: Uint8Array }
  | { kind: "header"; at: number; bytes: number[] };

/** `headerBytes`: how many leading bytes count as the header for header edits. */
const mutation = (headerBytes: number): fc.Arbitrary<Mutation> => {
  // Positions anywhere in the file (unbiased) as well as near its start (fast-check's small-value bias).
  const pos = fc.oneof(fc.nat(), fc.noBias(fc.nat()));
  return fc.oneof(
    fc.record({ kind: fc.constant("truncate" as const), at: pos }),
    fc.record({ kind: fc.constant("flip" as const), bits: fc.array(fc.tuple(pos, fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant("set" as const), bytes: fc.array(fc.tuple(pos, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant("append" as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ kind: fc.constant("header" as const), at: fc.integer({ min: 0, max: Math.max(0, headerBytes - 1) }), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }),
  );
};

function mutate(base: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case "truncate":
      return base.slice(0, m.at % base.length);
    case "append": {
      const out = new Uint8Array(base.length + m.extra.length);
      out.set(base);
      out.set(m.extra, base.length);
      return out;
    }
    case "flip": {
      const out = base.slice();
      for (const [pos, bit] of m.bits) out[pos % out.length] ^= 1 << bit;
      return out;
    }
    case "set": {
      const out = base.slice();
      for (const [pos, v] of m.bytes) out[pos % out.length] = v;
      return out;
    }
    case "header": {
      const out = base.slice();
      m.bytes.forEach((v, i) => {
        if (m.at + i < out.length) out[m.at + i] = v;
      });
      return out;
    }
  }
}

/** A clean refusal: a plain Error (not a TypeError, RangeError, …) whose message satisfies `names`. */
function assertCleanError(err: unknown, names: RegExp): void {
  assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`);
  assert.equal(err.constructor, Error, `${err.constructor.name}: ${err.message}`);
  assert.match(err.message, names);
}

/** Run a property, logging the seed (and the numbers for the campaign's record). */
async function campaign<T>(t: TestContext, name: string, arb: fc.Arbitrary<T>, check: (v: T) => Promise<"loaded" | "refused">, runs = RUNS): Promise<void> {
  const seed = (BASE_SEED + hash(name)) >>> 0;
  const tally = { loaded: 0, refused: 0 };
  const t0 = performance.now();
  t.diagnostic(`${name}: seed ${seed}, ${runs} inputs (reproduce: COVSHIFT_FUZZ_SEED=${BASE_SEED} COVSHIFT_FUZZ_RUNS=${runs})`);
  await fc.assert(
    fc.asyncProperty(arb, async (v) => {
      tally[await check(v)]++;
    }),
    { seed, numRuns: runs, endOnFailure: true },
  );
  const line = `${name}: ${runs} inputs, ${tally.loaded} loaded, ${tally.refused} refused cleanly, ${((performance.now() - t0) / 1000).toFixed(1)} s, seed ${seed}`;
  t.diagnostic(line);
  if (process.env.COVSHIFT_FUZZ_LOG) writeFileSync(process.env.COVSHIFT_FUZZ_LOG, line + "\n", { flag: "a" });
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

const refusedOrLoaded = async (load: () => unknown | Promise<unknown>, names: RegExp, valid: (v: any) => void): Promise<"loaded" | "refused"> => {
  let value: unknown;
  try {
    value = await load();
  } catch (err) {
    assertCleanError(err, names);
    return "refused";
  }
  valid(value);
  return "loaded";
};

describe("fuzzing the parsers of outside bytes", () => {
  const images = idxBytes(2051, [5, 28, 28], Uint8Array.from({ length: 5 * 784 }, (_, i) => (i * 7) & 255));

  it("IDX, raw: parseIdx", async (t) => {
    await campaign(t, "IDX raw", mutation(16), async (m) =>
      refusedOrLoaded(
        () => parseIdx(mutate(images, m), "fuzz.idx", { magic: 2051 }),
        /^fuzz\.idx: /,
        (v) => assert.equal(v.data.length, v.dims.reduce((a: number, b: number) => a * b, 1)),
      ),
    );
  });

  it("IDX, gzipped: readIdxFile (decompression included)", async (t) => {
    const dir = makeTempDir();
    const gz = gzip(images);
    let n = 0;
    await campaign(t, "IDX gz", mutation(10), async (m) => {
      const file = join(dir, `f${n++}.gz`);
      writeFileSync(file, mutate(gz, m));
      return refusedOrLoaded(
        () => readIdxFile(file, { magic: 2051 }),
        new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `),
        (v) => assert.equal(v.data.length, v.dims.reduce((a: number, b: number) => a * b, 1)),
      );
    });
  });

  it("CIFAR-10 records: loadCifar10 (test_batch_first1000.bin)", async (t) => {
    const records = cifarRecords(Array.from({ length: 1000 }, (_, i) => i % 10));
    let n = 0;
    await campaign(t, "CIFAR-10 records", mutation(3073), async (m) => {
      const dir = join(makeTempDir(), `c${n++}`);
      mkdirSync(dir);
      writeFileSync(join(dir, "test_batch_first1000.bin"), mutate(records, m));
      return refusedOrLoaded(
        () => loadCifar10(dir, "test", { download: false }),
        /test_batch_first1000\.bin/,
        (v) => {
          assert.equal(v.count, 1000);
          assert.ok(v.labels.every((l: number) => l < 10));
        },
      );
    }, Math.max(5, Math.ceil(RUNS / 4)));
  });

  it("safetensors: readSafetensors", async (t) => {
    const g = new Generator(3);
    const model = new nn.Sequential(new nn.Linear(32, 16, { generator: g }), new nn.BatchNorm1d(16));
    const bytes = saveSafetensors(model.stateDict(), { producer: "fuzz" });
    const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    await campaign(t, "safetensors", mutation(headerEnd), async (m) =>
      refusedOrLoaded(
        () => readSafetensors(mutate(bytes, m)),
        /^loadSafetensors: /,
        (v) => {
          for (const tensor of Object.values(v.tensors) as { size: number; data: ArrayLike<number> }[]) assert.equal(tensor.data.length, tensor.size);
        },
      ),
    );
  });

  describe("checkpoints", () => {
    const small: Figure1Config = { ...defaultFigure1Config, hidden: [8, 8], steps: 20, evalEvery: 5, seeds: 1, backend: "reference" };
    const set = (count: number, seed: number): ImageSet => {
      const g = new Generator(seed);
      return { images: Float32Array.from({ length: count * 784 }, () => g.nextUint32() / 2 ** 32), labels: Uint8Array.from({ length: count }, () => g.randint(10)), count };
    };
    const train = set(120, 1);
    const test = set(20, 2);
    const header = { command: "figure1", run: "batchnorm-seed0", backend: "reference" };
    const trainer = new Figure1Trainer("batchnorm", 0, small, train, test);
    while (trainer.step < 7) {
      trainer.trainStep();
      if (trainer.step % small.evalEvery === 0) trainer.record();
    }
    const contents = trainer.checkpoint();
    const bytes = encodeCheckpoint(header, contents);
    const PATH = "/out/checkpoints/batchnorm-seed0.safetensors";
    const restored = (decoded: ReturnType<typeof decodeCheckpoint>) => new Figure1Trainer("batchnorm", 0, small, train, test).restore(decoded, PATH);

    it("damaged bytes: decodeCheckpoint refuses every change (the checksum covers the whole file)", async (t) => {
      const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
      await campaign(t, "checkpoint bytes", mutation(headerEnd), async (m) => {
        const damaged = mutate(bytes, m);
        const outcome = await refusedOrLoaded(() => decodeCheckpoint(damaged, PATH), /^checkpoint \/out\/checkpoints\/batchnorm-seed0\.safetensors: .*Delete /, restored);
        if (outcome === "loaded") assert.deepEqual(damaged, bytes, "only the unchanged file loads");
        return outcome;
      });
    });

    it("edited state with a valid checksum (a lying writer): restore refuses it naming the field, or it is a valid state", async (t) => {
      const state = contents.state as Record<string, unknown>;
      const keys = Object.keys(state);
      const edit = fc.record({
        path: fc.oneof(fc.constantFrom(...keys.map((k) => [k])), fc.constantFrom(...Object.keys(state.result as object).map((k) => ["result", k]))),
        value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer(), fc.double(), fc.constant(null), fc.array(fc.double(), { maxLength: 4 })),
      });
      await campaign(t, "checkpoint state", edit, async ({ path, value }) => {
        const edited = structuredClone(state);
        let at: any = edited;
        for (const k of path.slice(0, -1)) at = at[k];
        at[path[path.length - 1]] = value;
        const decoded = decodeCheckpoint(encodeCheckpoint(header, { tensors: contents.tensors, state: edited }), PATH);
        return refusedOrLoaded(() => restored(decoded), /^checkpoint \/out\/checkpoints\/batchnorm-seed0\.safetensors: /, () => {});
      });
    });
  });
});
