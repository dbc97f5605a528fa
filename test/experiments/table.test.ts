import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nn, noGrad, Tensor } from "../../src/index.js";
import { BatchSampler } from "../../src/data/batches.js";
import {
  buildInception,
  DEFAULT_WIDTH,
  FIGURE5_MODULES,
  parameterCount,
  scaled,
  STEM_CHANNELS,
  moduleOutChannels,
} from "../../src/experiments/table/inception.js";
import { firstStepReaching, summarizeTable, type TableRowSummary } from "../../src/experiments/table/report.js";
import {
  defaultTableConfig,
  deriveRow,
  learningRate,
  mergeConfigFile,
  parseRows,
  ROW_IDS,
  type RowId,
  type TableConfig,
} from "../../src/experiments/table/rows.js";
import { runTable } from "../../src/experiments/table/run.js";
import { RowDivergedError, TableTrainer, type TableData, type TableRowResult } from "../../src/experiments/table/trainer.js";
import { decodeCheckpoint, encodeCheckpoint } from "../../src/experiments/runner/checkpoint.js";
import { assertAllClose } from "../allclose.js";
import { realData } from "../realData.js";
import { syntheticTableData } from "./helpers.js";

const CIFAR = realData("cifar10"); // the stop/resume and command tests need ../shared/data/cifar10

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "covshift-table-"));
}

/** Parameters of the network by hand: conv weights in·out·k² plus, per unit, a bias (no BN) or γ and β (BN); then the linear layer. */
function expectedParameters(width: number, bn: boolean): number {
  const s = (c: number) => scaled(c, width);
  const unit = (i: number, o: number, k: number) => i * o * k * k + (bn ? 2 * o : o);
  let c = s(STEM_CHANNELS);
  let n = unit(3, c, 3);
  for (const m of FIGURE5_MODULES) {
    if (m.kind === "inception") {
      n += unit(c, s(m.b1), 1) + unit(c, s(m.b3Reduce), 1) + unit(s(m.b3Reduce), s(m.b3), 3);
      n += unit(c, s(m.d3Reduce), 1) + unit(s(m.d3Reduce), s(m.d3), 3) + unit(s(m.d3), s(m.d3), 3) + unit(c, s(m.poolProj), 1);
    } else {
      n += unit(c, s(m.b3Reduce), 1) + unit(s(m.b3Reduce), s(m.b3), 3);
      n += unit(c, s(m.d3Reduce), 1) + unit(s(m.d3Reduce), s(m.d3), 3) + unit(s(m.d3), s(m.d3), 3);
    }
    c = moduleOutChannels(m, c, width);
  }
  return n + c * 10 + 10;
}

describe("table: the Inception network", () => {
  it("maps (N, 3, 28, 28) crops to (N, 10) logits, through 14×14, 7×7 and 4×4 stages (stem stride 2) or 28×28, 14×14 and 7×7 (stride 1)", () => {
    for (const [bn, stemStride] of [[false, 2], [true, 1]] as const) {
      const model = buildInception({ width: 1 / 32, bn, lrn: !bn, dropout: bn ? 0 : 0.4, stemStride });
      const x = new Tensor(Float32Array.from({ length: 2 * 3 * 28 * 28 }, (_, i) => Math.sin(i)), [2, 3, 28, 28]);
      const sizes: number[] = [];
      noGrad(() => {
        let h = x;
        for (const layer of model) {
          h = layer.forward(h);
          if (layer instanceof nn.Concat) sizes.push(h.shape[2]);
        }
        assert.deepEqual(h.shape, [2, 10]);
      });
      const [s3, s4, s5] = stemStride === 1 ? [28, 14, 7] : [14, 7, 4];
      assert.deepEqual(sizes, [s3, s3, s4, s4, s4, s4, s4, s5, s5, s5], "spatial size after each of the ten modules");
    }
  });

  it("parameter count at the default width (1/16): 41,726 with BN and 41,108 without, as counted by hand from Figure 5's channels", () => {
    assert.equal(DEFAULT_WIDTH, 1 / 16);
    const withBn = parameterCount(buildInception({ bn: true }));
    const without = parameterCount(buildInception({ bn: false }));
    assert.equal(withBn, expectedParameters(DEFAULT_WIDTH, true));
    assert.equal(without, expectedParameters(DEFAULT_WIDTH, false));
    // The numbers documented in inception.ts.
    assert.equal(withBn, 41_726);
    assert.equal(without, 41_108);
    assert.equal(parameterCount(buildInception({ width: 1 / 8, bn: true })), expectedParameters(1 / 8, true));
  });

  it("with BN, a BatchNorm2d over the conv's channels comes before every nonlinearity and no convolution has a bias; without BN, none and all", () => {
    for (const activation of ["relu", "sigmoid"] as const) {
      const Act = activation === "relu" ? nn.ReLU : nn.Sigmoid;
      for (const bn of [true, false]) {
        const model = buildInception({ width: 1 / 16, bn, activation });
        let nonlinearities = 0;
        let convs = 0;
        for (const m of model.modules()) {
          if (m instanceof nn.Conv2d) {
            convs++;
            assert.equal(m.bias === null, bn, `conv '${m.path}' has ${m.bias === null ? "no " : ""}bias`);
          }
          if (m instanceof nn.ReLU || m instanceof nn.Sigmoid) assert.ok(m instanceof Act, `only ${activation}`);
          if (!(m instanceof nn.Sequential)) continue;
          const layers = [...m];
          layers.forEach((layer, i) => {
            if (!(layer instanceof Act)) return;
            nonlinearities++;
            if (bn) {
              const before = layers[i - 1];
              const conv = layers[i - 2];
              assert.ok(before instanceof nn.BatchNorm2d, `${layer.path}: BN right before the nonlinearity`);
              assert.ok(conv instanceof nn.Conv2d && before.numFeatures === conv.outChannels, `${layer.path}: BN over the conv's feature maps`);
            } else {
              assert.ok(layers[i - 1] instanceof nn.Conv2d, `${layer.path}: conv right before the nonlinearity`);
            }
          });
        }
        assert.equal(nonlinearities, convs, "one nonlinearity per convolution");
        assert.equal([...model.modules()].filter((m) => m instanceof nn.BatchNorm2d).length, bn ? convs : 0);
        assert.equal(convs, 1 + 8 * 7 + 2 * 5, "stem + 7 convolutions per module + 5 per downsampling module");
      }
    }
  });
});

describe("table: the rows", () => {
  const c = defaultTableConfig;
  const row = (id: RowId, config: TableConfig = c) => deriveRow(id, config).settings;

  it("Inception is the base: lr 0.01, Dropout 0.4, LRN, L2 5e-4, fixed shards without within-shard shuffling, full distortions, ReLU, no BN", () => {
    assert.deepEqual(row("inception"), {
      bn: false, activation: "relu", lrn: true, dropout: 0.4, lr: 0.01, momentum: 0.9, weightDecay: 5e-4,
      lrDecay: 0.94, lrDecayEvery: 1406, distortion: 1, shuffle: "fixed",
    });
    assert.deepEqual(row("bn-baseline"), { ...row("inception"), bn: true }, "BN-Baseline = Inception + BN");
    assert.deepEqual(row("inception-sigmoid"), { ...row("inception"), activation: "sigmoid" }, "Inception-Sigmoid = Inception with sigmoid");
  });

  it("BN-x5 applies all seven changes of §4.2.1 to BN-Baseline (lr ×5, no Dropout, L2 ÷ 5, decay 6× faster, no LRN, within-shard shuffling, strength 0.25); BN-x30 has lr ×30; BN-x5-Sigmoid has sigmoid", () => {
    const base = row("bn-baseline");
    const x5 = row("bn-x5");
    assert.deepEqual(x5, {
      ...base,
      lr: 0.05,
      dropout: 0,
      weightDecay: 1e-4,
      lrDecayEvery: 234, // ⌊1406 / 6⌉
      lrn: false,
      shuffle: "shard",
      distortion: 0.25,
    });
    assert.equal(x5.lr, 5 * base.lr);
    assert.equal(x5.weightDecay, base.weightDecay / 5);
    assert.deepEqual(row("bn-x30"), { ...x5, lr: 30 * base.lr });
    assert.deepEqual(row("bn-x5-sigmoid"), { ...x5, activation: "sigmoid" });
    // Derived from the base knobs, not fixed numbers:
    const other = { ...c, lr: 0.002, weightDecay: 1e-3, lrDecayEvery: 600, accelerated: { ...c.accelerated, distortion: 0.5 } };
    assert.equal(row("bn-x30", other).lr, 0.06);
    assert.equal(row("bn-x5", other).weightDecay, 2e-4);
    assert.equal(row("bn-x5", other).lrDecayEvery, 100);
    assert.equal(row("bn-x5", other).distortion, 0.5);
    assert.equal(deriveRow("bn-x5", c).differences.length, 8, "BN and the seven changes are listed");
  });

  it("§4.2.1 item 6 read right: the rows without §4.2.1 repeat the same batches every epoch, the accelerated rows reshuffle within fixed shards (batch composition over 4 epochs of a 45,000-image split)", () => {
    const shardSize = 16 * c.batchSize; // the pipeline's default
    for (const id of ROW_IDS) {
      const mode = row(id).shuffle;
      const sampler = new BatchSampler({ count: 45_000, batchSize: c.batchSize, mode, shardSize, seed: 1 });
      const epochs = [0, 1, 2, 3].map(() => Array.from({ length: sampler.batchesPerEpoch }, () => Array.from(sampler.next())));
      /** Each epoch's batches as sets of members, order-free. */
      const memberships = epochs.map((e) => new Set(e.map((b) => [...b].sort((x, y) => x - y).join(","))));
      if (["inception", "bn-baseline", "inception-sigmoid"].includes(id)) {
        assert.equal(mode, "fixed", id);
        for (const e of epochs.slice(1)) assert.deepEqual(e, epochs[0], `${id}: the same batches in the same order every epoch`);
      } else {
        assert.equal(mode, "shard", id);
        const shardOf = sampler.shardOf();
        for (const e of epochs) for (const b of e) assert.ok(b.every((i) => shardOf[i] === shardOf[b[0]]), `${id}: a batch never leaves its shard`);
        // Within-shard shuffling: hardly any batch of one epoch recurs in the next (a repeat has probability ≈ 0).
        for (let k = 1; k < epochs.length; k++) {
          const repeats = [...memberships[k]].filter((b) => memberships[k - 1].has(b)).length;
          assert.equal(repeats, 0, `${id}: epoch ${k} repeats ${repeats} batches of epoch ${k - 1}`);
        }
      }
    }
  });

  it("LRN follows the stem and Dropout precedes the classifier exactly in the rows that keep them", () => {
    for (const id of ROW_IDS) {
      const s = row(id);
      const model = buildInception({ width: 1 / 32, bn: s.bn, activation: s.activation, lrn: s.lrn, dropout: s.dropout });
      const layers = [...model];
      const hasLrn = layers[1] instanceof nn.LocalResponseNorm;
      assert.equal(hasLrn, ["inception", "bn-baseline", "inception-sigmoid"].includes(id), `${id}: LRN`);
      assert.equal([...model.modules()].filter((m) => m instanceof nn.LocalResponseNorm).length, hasLrn ? 1 : 0);
      const dropout = layers.at(-2);
      assert.equal(dropout instanceof nn.Dropout, s.dropout > 0, `${id}: Dropout`);
      if (dropout instanceof nn.Dropout) assert.equal(dropout.p, 0.4);
    }
  });

  it("per-row overrides from a config file apply last, and are listed among the differences", () => {
    const config = { ...c, overrides: { "bn-x30": { lr: 0.2 } } };
    assert.equal(row("bn-x30", config).lr, 0.2);
    assert.equal(row("bn-x5", config).lr, 0.05);
    assert.match(deriveRow("bn-x30", config).differences.at(-1)!, /config file: lr 0.2/);
  });

  it("the learning rate decays stepwise: lr0 · 0.94^⌊step / interval⌋", () => {
    const s = row("inception");
    assert.equal(learningRate(s, 0), 0.01);
    assert.equal(learningRate(s, 1405), 0.01);
    assert.equal(learningRate(s, 1406), 0.01 * 0.94);
    assert.equal(learningRate(s, 2 * 1406 + 5), 0.01 * 0.94 ** 2);
    const x5 = row("bn-x5");
    assert.equal(learningRate(x5, 233), 0.05);
    assert.equal(learningRate(x5, 234), 0.05 * 0.94);
    assertAllClose(learningRate(x5, 1406), 0.05 * 0.94 ** 6, { atol: 1e-15, rtol: 0 }, "6 decays where Inception has 1");
  });

  it("--rows and config files are checked: unknown rows and settings are errors that list the valid ones", () => {
    assert.deepEqual(parseRows("bn-x5, inception"), ["inception", "bn-x5"]);
    assert.throws(() => parseRows("BN-x5"), /unknown row "BN-x5"; choose from inception, bn-baseline/);
    assert.throws(() => parseRows("bn-x5,bn-x5"), /listed twice/);
    const merged = mergeConfigFile(c, { steps: 30, accelerated: { distortion: 0 }, rows: ["bn-x5"] }, "f.json");
    assert.equal(merged.steps, 30);
    assert.equal(merged.accelerated.distortion, 0);
    assert.equal(merged.accelerated.decaySpeedup, 6);
    assert.deepEqual(merged.rows, ["bn-x5"]);
    assert.throws(() => mergeConfigFile(c, { stepz: 3 }, "f.json"), /f\.json: unknown setting "stepz"; the settings are steps/);
    assert.throws(() => mergeConfigFile(c, { steps: "3" }, "f.json"), /"steps" must be a number/);
  });
});

describe("table: results", () => {
  const curve = (id: RowId, acc: number[]): TableRowResult => ({
    ...deriveRow(id, defaultTableConfig),
    steps: acc.map((_, i) => 100 * (i + 1)),
    validationAccuracy: acc,
    trainLoss: acc.map(() => 1),
    learningRate: acc.map(() => 0.01),
    testAccuracy: 0.5,
    backend: "reference",
    trainSeconds: 10,
    wallSeconds: 12,
  });
  const config = { ...defaultTableConfig, rows: [...ROW_IDS], limits: {} };

  it("stepsToInceptionMax is the first evaluated step at which a row reaches Inception's maximum (null if never)", () => {
    const rows = [
      curve("inception", [0.2, 0.4, 0.35, 0.5, 0.5]),
      curve("bn-x5", [0.3, 0.5, 0.6, 0.55, 0.7]),
      curve("bn-x30", [0.1, 0.2, 0.49, 0.499999, 0.51]),
      curve("inception-sigmoid", [0.1, 0.1, 0.1, 0.1, 0.1]),
    ];
    const t = summarizeTable(config, rows, 60);
    assert.equal(t.inceptionMax, 0.5);
    const by = (id: RowId) => t.rows.find((r) => r.id === id)!;
    assert.equal(by("inception").stepsToInceptionMax, 400, "Inception itself: where it first reaches its max");
    assert.equal(by("inception").maxAccuracy, 0.5);
    assert.equal(by("inception").stepOfMax, 400);
    assert.equal(by("bn-x5").stepsToInceptionMax, 200);
    assert.equal(by("bn-x5").maxAccuracy, 0.7);
    assert.equal(by("bn-x30").stepsToInceptionMax, 500, "just below the max does not count");
    assert.equal(by("inception-sigmoid").stepsToInceptionMax, null);
    assert.equal(by("bn-x5").stepsPerSecond, 50);
    assert.equal(t.notes.length, 1);
    assert.match(t.notes[0], /^Inception-Sigmoid stayed at chance level/);
    assert.equal(firstStepReaching([], [], 0.1), null);
  });

  it("without the Inception row, stepsToInceptionMax is null for every row, with a note saying why", () => {
    const t = summarizeTable({ ...config, rows: ["bn-x5"] }, [curve("bn-x5", [0.3, 0.6])], 10);
    assert.equal(t.inceptionMax, null);
    assert.equal(t.rows[0].stepsToInceptionMax, null);
    assert.equal(t.rows[0].maxAccuracy, 0.6);
    assert.match(t.notes[0], /Inception row was not among --rows/);
  });
});

describe("table: training", () => {
  // Small crops keep this quick; the crop size plays no part in what is tested.
  const tiny: TableConfig = { ...defaultTableConfig, width: 1 / 32, batchSize: 8, crop: 20, steps: 8, evalEvery: 3, lrDecayEvery: 4, backend: "reference" };

  function train(trainer: TableTrainer, until: number): void {
    while (trainer.step < until && !trainer.done) {
      trainer.trainStep();
      if (trainer.step % tiny.evalEvery === 0 || trainer.done) trainer.record();
    }
  }

  it("a checkpoint taken mid-run and restored (through the checkpoint format's bytes) continues to the bit-identical result", () => {
    const data = syntheticTableData();
    // Inception: Dropout, LRN, fixed shards, distortions. BN-x5: BN, within-shard shuffling, lr decay every ⌊4/6⌉ = 1 step.
    for (const id of ["inception", "bn-x5"] as const) {
      const row = deriveRow(id, tiny);
      const whole = new TableTrainer(row, tiny, data);
      train(whole, tiny.steps);
      whole.finish();
      const first = new TableTrainer(row, tiny, data);
      // 32 images / 8 = 4 batches per epoch: stopping at 5 resumes inside the second epoch, between evaluations.
      train(first, 5);
      const saved = decodeCheckpoint(encodeCheckpoint({ command: "table", run: "x", backend: "reference" }, first.checkpoint()), "(in memory)");
      const second = new TableTrainer(row, tiny, data);
      second.restore(saved);
      train(second, tiny.steps);
      second.finish();
      assert.deepEqual(second.result, whole.result, `${id}: measurements`);
      assert.equal(whole.result.steps.join(), "3,6,8");
      const a = whole.model.stateDict();
      const b = second.model.stateDict();
      for (const k of Object.keys(a)) assert.deepEqual(Array.from(b[k].data), Array.from(a[k].data), `${id}: ${k}`);
    }
  });

  it("a diverging row stops with an error that names it and suggests a lower learning rate", () => {
    const config = { ...tiny, overrides: { "inception-sigmoid": { lr: 1e12 }, inception: { lr: 1e12 } } };
    for (const id of ["inception", "inception-sigmoid"] as const) {
      const trainer = new TableTrainer(deriveRow(id, config), config, syntheticTableData());
      assert.throws(
        () => {
          for (let i = 0; i < 10; i++) trainer.trainStep();
        },
        (err: Error) => {
          assert.ok(err instanceof RowDivergedError, `${id}: ${err.message}`);
          assert.match(err.message, new RegExp(`^${deriveRow(id, config).name}: the run diverged at step \\d+ .*Lower its initial learning rate \\(1000000000000\\)`));
          return true;
        },
      );
    }
  });
});

describe("table: stop and resume", () => {
  it("runTable stopped by its stop flag and resumed gives exactly the uninterrupted rows; a row whose settings changed starts again", { skip: CIFAR.skip }, async () => {
    const whole = tempDir();
    const parted = tempDir();
    try {
      const config: TableConfig = { ...defaultTableConfig, width: 1 / 32, batchSize: 16, crop: 20, steps: 16, evalEvery: 2, lrDecayEvery: 5 };
      const common = { config, rows: ["inception", "bn-x5"] as RowId[], dataDir: CIFAR.dir, jobs: 2, limits: { train: 64, validation: 16, test: 16 } };
      const full = await runTable({ ...common, outDir: whole });
      assert.equal(full.status, "complete");
      const stopFlag = new SharedArrayBuffer(4);
      const stopped = await runTable({
        ...common,
        outDir: parted,
        stopFlag,
        onEvent: (e) => {
          if (e.message.type === "eval") Atomics.store(new Int32Array(stopFlag), 0, 1);
        },
      });
      assert.equal(stopped.status, "interrupted");
      assert.ok(existsSync(join(parted, "checkpoints", "bn-x5.safetensors")), "checkpoints were written");
      await assert.rejects(runTable({ ...common, outDir: parted }), /--resume/);
      await assert.rejects(runTable({ ...common, config: { ...config, steps: 20 }, outDir: parted, resume: true }), /other settings.*steps/);
      const events: string[] = [];
      const resumed = await runTable({ ...common, outDir: parted, resume: true, onEvent: (e) => events.push(`${e.row} ${e.message.type}`) });
      assert.equal(resumed.status, "complete");
      if (full.status !== "complete" || resumed.status !== "complete") return;
      // Everything but the clock.
      const strip = (rows: TableRowSummary[]) => rows.map(({ wallSeconds: _w, trainSeconds: _t, stepsPerSecond: _s, ...rest }) => rest);
      assert.deepEqual(strip(resumed.result.rows), strip(full.result.rows));
      assert.ok(!events.includes("bn-x5 restarted"));

      // A lower learning rate for one row (as after a divergence): that row alone starts again.
      const lower = { ...config, overrides: { "bn-x5": { lr: 0.01 } } };
      const again = await runTable({ ...common, config: lower, outDir: parted, resume: true, onEvent: (e) => events.push(`${e.row} ${e.message.type}`) });
      assert.ok(events.includes("bn-x5 restarted") && events.includes("inception skipped"), events.join(", "));
      if (again.status === "complete") assert.equal(again.result.rows[1].settings.lr, 0.01);
    } finally {
      rmSync(whole, { recursive: true, force: true });
      rmSync(parted, { recursive: true, force: true });
    }
  });
});

describe("table: the command", () => {
  it("covshift table on a few real CIFAR-10 images writes table.json (the contract), table.md and figure2", { skip: CIFAR.skip }, () => {
    const out = tempDir();
    try {
      const stdout = execFileSync(
        process.execPath,
        ["bin/covshift.js", "table", "--data", CIFAR.dir, "--train-limit", "256", "--val-limit", "128", "--test-limit", "64",
          "--steps", "4", "--eval-every", "2", "--width", "small", "--rows", "inception,bn-x5",
          "--ensemble", "2", "--ensemble-row", "bn-x5", "--out", out],
        { encoding: "utf8", env: { ...process.env, CI: "1" }, stdio: ["ignore", "pipe", "pipe"] },
      );
      assert.match(stdout, /Inception table/);
      const t = JSON.parse(readFileSync(join(out, "table.json"), "utf8"));
      assert.equal(t.config.steps, 4);
      assert.equal(t.config.width, 1 / 16);
      assert.equal(t.config.batchSize, 64);
      assert.deepEqual(t.config.rows, ["inception", "bn-x5"]);
      assert.deepEqual(t.rows.map((r: { name: string }) => r.name), ["Inception", "BN-x5"]);
      for (const r of t.rows) {
        assert.deepEqual(r.steps, [2, 4]);
        assert.equal(r.validationAccuracy.length, 2);
        for (const v of [...r.validationAccuracy, r.testAccuracy]) assert.ok(v >= 0 && v <= 1, `${r.name}: accuracy ${v}`);
        assert.equal(r.maxAccuracy, Math.max(...r.validationAccuracy));
        // The JSON carries the definition (the first evaluated step reaching Inception's maximum; null if none), which the summary tests check on curves.
        assert.equal(r.stepsToInceptionMax, firstStepReaching(r.steps, r.validationAccuracy, t.rows[0].maxAccuracy), `${r.name}: stepsToInceptionMax`);
        assert.equal(typeof r.settings.lr, "number");
      }
      assert.equal(t.rows[0].stepsToInceptionMax, t.rows[0].steps[t.rows[0].validationAccuracy.indexOf(t.rows[0].maxAccuracy)]);
      assert.equal(t.rows[1].settings.lr, 5 * t.rows[0].settings.lr);
      const md = readFileSync(join(out, "table.md"), "utf8");
      assert.match(md, /\| Network \| Steps to Inception's max/);
      assert.match(md, /BN-x5\*\*: BN before every nonlinearity.*learning rate × 5/);
      for (const f of ["figure2.svg", "figure2.png"]) assert.ok(existsSync(join(out, f)), `${f} written`);
      // The ensemble (§4.2.3): BN-x5 seed 0 is the table's own row, seed 1 a member trained for it.
      const e = t.ensemble;
      assert.equal(e.size, 2);
      assert.equal(e.row, "bn-x5");
      assert.deepEqual(e.members.map((m: { seed: number }) => m.seed), [0, 1]);
      assert.equal(e.members[0].testAccuracy, t.rows[1].testAccuracy, "member 0's outputs are the BN-x5 row's");
      assert.equal(e.members[0].validationAccuracy, t.rows[1].validationAccuracy.at(-1));
      for (const v of [e.validationAccuracy, e.testAccuracy, e.members[1].testAccuracy]) assert.ok(v >= 0 && v <= 1);
      assert.ok(existsSync(join(out, "rows", "bn-x5-seed1.outputs.json")));
      assert.match(md, /\| Ensemble of 2 BN-x5 \| — \|/);
      assert.match(md, /## Ensemble \(§4\.2\.3\)/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("a config file sets options and the command line overrides it", { skip: CIFAR.skip }, () => {
    const dir = tempDir();
    const run = (args: string[]) =>
      spawnSync(process.execPath, ["bin/covshift.js", "table", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
    try {
      const cfg = join(dir, "table.json");
      const file = { steps: 2, evalEvery: 2, width: 1 / 32, rows: ["bn-x30"], overrides: { "bn-x30": { lr: 0.123 } }, limits: { train: 64, validation: 16, test: 32 } };
      writeFileSync(cfg, JSON.stringify(file));
      const out = join(dir, "out");
      const ok = run(["--config", cfg, "--steps", "1", "--eval-every", "1", "--test-limit", "16", "--data", CIFAR.dir, "--out", out]);
      assert.equal(ok.status, 0, ok.stderr);
      const t = JSON.parse(readFileSync(join(out, "table.json"), "utf8"));
      assert.equal(t.config.steps, 1, "--steps overrides the file");
      assert.equal(t.config.width, 1 / 32, "the file's width is kept");
      assert.deepEqual(t.config.limits, { train: 64, validation: 16, test: 16 }, "the file's limits, --test-limit overriding one");
      assert.deepEqual(t.rows.map((r: { name: string }) => r.name), ["BN-x30"]);
      assert.equal(t.rows[0].settings.lr, 0.123);
      assert.equal(t.rows[0].stepsToInceptionMax, null);
      assert.match(readFileSync(join(out, "table.md"), "utf8"), /Inception row was not among --rows/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("bad input (an unknown row, an unknown setting in a config file, missing data) gives a clear message and exit code 1", () => {
    const dir = tempDir();
    const run = (args: string[]) =>
      spawnSync(process.execPath, ["bin/covshift.js", "table", ...args], { encoding: "utf8", env: { ...process.env, CI: "1" } });
    try {
      const cfg = join(dir, "table.json");
      const r1 = run(["--rows", "bn-x5,resnet", "--out", join(dir, "o1")]);
      assert.equal(r1.status, 1);
      assert.match(r1.stderr, /unknown row "resnet"/);
      writeFileSync(cfg, JSON.stringify({ learningRate: 0.1 }));
      const r2 = run(["--config", cfg, "--data", dir, "--no-download", "--out", join(dir, "o2")]); // refused before the (missing) data is read
      assert.equal(r2.status, 1);
      assert.match(r2.stderr, /unknown setting "learningRate"/);
      const r3 = run(["--data", dir, "--no-download", "--steps", "1", "--eval-every", "1", "--out", join(dir, "o3")]);
      assert.equal(r3.status, 1);
      assert.match(r3.stderr, /data_batch_1\.bin/);
      for (const r of [r1, r2, r3]) assert.doesNotMatch(r.stderr, /    at /, "no stack trace");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
