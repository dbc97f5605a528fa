/**
 * Fuzzing of every parser of outside bytes (issue 15, part 6), with
 * fast-check: valid files of each format — IDX, CIFAR-10 records,
 * safetensors, and the checkpoints of figure1, table and jacobian — then
 * random truncations, bit flips, overwritten bytes, appended bytes, header
 * edits and (checkpoints) edits of the JSON state behind a valid checksum. Every input
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
import type { CheckpointContents } from "../../src/experiments/runner/checkpointState.js";
import { defaultFigure1Config, type Figure1Config } from "../../src/experiments/figure1/config.js";
import { Figure1Trainer, type ImageSet } from "../../src/experiments/figure1/trainer.js";
import { defaultTableConfig, deriveRow, type TableConfig } from "../../src/experiments/table/rows.js";
import { TableTrainer, type TableData } from "../../src/experiments/table/trainer.js";
import { defaultJacobianConfig, type JacobianConfig } from "../../src/experiments/jacobian/config.js";
import { JacobianTrainer } from "../../src/experiments/jacobian/trainer.js";
import { channelStats } from "../../src/data/augment.js";
import type { CifarSplit } from "../../src/data/cifar10.js";
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
    // Synthetic data: the checkpoint states are those of real runs, on random images.
    const mnistLike = (count: number, seed: number): ImageSet => {
      const g = new Generator(seed);
      return { images: Float32Array.from({ length: count * 784 }, () => g.nextUint32() / 2 ** 32), labels: Uint8Array.from({ length: count }, () => g.randint(10)), count };
    };
    const cifarLike = (count: number, seed: number): CifarSplit => {
      const g = new Generator(seed);
      return { images: Uint8Array.from({ length: count * 3072 }, () => g.randint(256)), labels: Uint8Array.from({ length: count }, () => g.randint(10)), count };
    };
    const train = mnistLike(120, 1);
    const test = mnistLike(20, 2);

    const small: Figure1Config = { ...defaultFigure1Config, hidden: [8, 8], steps: 20, evalEvery: 5, seeds: 1, backend: "reference" };
    const figure1 = new Figure1Trainer("batchnorm", 0, small, train, test);
    advance(figure1, 7, small.evalEvery);
    checkpointCampaigns("figure1", "batchnorm-seed0", figure1.checkpoint(), (c, path) => new Figure1Trainer("batchnorm", 0, small, train, test).restore(c, path));

    const tableConfig: TableConfig = { ...defaultTableConfig, width: 1 / 32, batchSize: 8, crop: 20, steps: 8, evalEvery: 3, lrDecayEvery: 4, backend: "reference" };
    const cifarTrain = cifarLike(32, 3);
    const tableData: TableData = { train: cifarTrain, validation: cifarLike(10, 4), test: cifarLike(6, 5), stats: channelStats(cifarTrain.images, cifarTrain.count) };
    const row = deriveRow("bn-x5", tableConfig);
    const table = new TableTrainer(row, tableConfig, tableData);
    advance(table, 5, tableConfig.evalEvery);
    checkpointCampaigns("table", "bn-x5", table.checkpoint(), (c, path) => new TableTrainer(row, tableConfig, tableData).restore(c, path));

    const jacobianConfig: JacobianConfig = { ...defaultJacobianConfig, steps: 12, every: 4, images: 2, hidden: [8, 8, 8], backend: "reference" };
    const jacobian = new JacobianTrainer("batchnorm", jacobianConfig, train, test);
    advance(jacobian, 9, jacobianConfig.every);
    checkpointCampaigns("jacobian", "batchnorm", jacobian.checkpoint(), (c, path) => new JacobianTrainer("batchnorm", jacobianConfig, train, test).restore(c, path));
  });
});

/** Train to `until` steps, evaluating every `every` as the runner does. */
function advance(t: { step: number; trainStep(): number; record(): unknown }, until: number, every: number): void {
  while (t.step < until) {
    t.trainStep();
    if (t.step % every === 0) t.record();
  }
}

/**
 * Every path into a checkpoint's JSON state (object keys and the first
 * array entries, to `depth` levels): where a lying writer could edit.
 */
function statePaths(value: unknown, depth = 5, prefix: (string | number)[] = []): (string | number)[][] {
  if (depth === 0 || value === null || typeof value !== "object") return [];
  const keys: (string | number)[] = Array.isArray(value) ? [0, 1, value.length - 1].filter((i, k, a) => i >= 0 && i < value.length && a.indexOf(i) === k) : Object.keys(value);
  const out: (string | number)[][] = [];
  for (const k of keys) {
    const p = [...prefix, k];
    out.push(p, ...statePaths((value as any)[k], depth - 1, p));
  }
  return out;
}

/**
 * The two campaigns of one command's checkpoints: damaged bytes (the
 * checksum must refuse every change) and edits of the JSON state behind a
 * valid checksum — a value replaced by any JSON value, number, NaN-as-null
 * or array, or a key deleted — which `restore` must refuse with a clean
 * Error naming the file, or accept as a valid state.
 */
function checkpointCampaigns(command: string, run: string, contents: CheckpointContents, restore: (c: CheckpointContents, path: string) => void): void {
  const header = { command, run, backend: "reference" };
  const bytes = encodeCheckpoint(header, contents);
  const PATH = `/out/checkpoints/${run}.safetensors`;
  const names = new RegExp(`^checkpoint ${PATH.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `);

  it(`${command} checkpoint, damaged bytes: decodeCheckpoint refuses every change (the checksum covers the whole file)`, async (t) => {
    const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    await campaign(t, `${command} checkpoint bytes`, mutation(headerEnd), async (m) => {
      const damaged = mutate(bytes, m);
      const outcome = await refusedOrLoaded(() => decodeCheckpoint(damaged, PATH, { command, run }), new RegExp(names.source + ".*Delete "), (c) => restore(c, PATH));
      if (outcome === "loaded") assert.deepEqual(damaged, bytes, "only the unchanged file loads");
      return outcome;
    });
  });

  it(`${command} checkpoint, edited state with a valid checksum (a lying writer): restore refuses it naming the file, or it is a valid state`, async (t) => {
    const state = contents.state as Record<string, unknown>;
    const paths = statePaths(state);
    const edit = fc.record({
      path: fc.constantFrom(...paths),
      op: fc.constantFrom("set" as const, "set" as const, "set" as const, "delete" as const),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.integer(), fc.double(), fc.constant(null), fc.array(fc.double(), { maxLength: 4 }), fc.constant(1e300), fc.constant(-1)),
    });
    await campaign(t, `${command} checkpoint state`, edit, async ({ path, op, value }) => {
      const edited = structuredClone(state);
      let at: any = edited;
      for (const k of path.slice(0, -1)) at = at[k];
      const last = path[path.length - 1];
      if (op === "delete" && !Array.isArray(at)) delete at[last];
      else at[last] = value;
      const decoded = decodeCheckpoint(encodeCheckpoint(header, { tensors: contents.tensors, state: edited }), PATH);
      return refusedOrLoaded(() => restore(decoded, PATH), names, () => {});
    });
  });
}
