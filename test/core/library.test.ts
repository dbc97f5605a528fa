/**
 * The conveniences PyTorch users reach for, against PyTorch's own numbers
 * and text (test/fixtures/library.json, written by
 * tools/torch/make_library_fixtures.py): Adam and AdamW over four training
 * steps of an MLP with BN, the learning-rate schedulers, softmax /
 * logSoftmax / argmax, `String(model)` against `repr(model)`, and
 * `summary()` against torchinfo's layout of the same numbers. Also the
 * DataLoader's batching contract.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { DataLoader, Generator, nn, noGrad, ops, optim, summary, tensor, Tensor } from "../../src/index.js";
import { assertAllClose, type Tolerance } from "../allclose.js";

interface Enc {
  shape: number[];
  data: number[];
}
type DType = "float32" | "float64";

const fixture = JSON.parse(
  fs.readFileSync(fileURLToPath(new URL("../../../test/fixtures/library.json", import.meta.url)), "utf8"),
) as {
  adam: {
    name: string;
    optimizer: "Adam" | "AdamW";
    options: { lr: number; betas: [number, number]; eps: number; weightDecay: number; amsgrad: boolean };
    initial: Record<string, Enc>;
    x: Enc;
    y: number[];
    steps: { loss: number; state: Record<string, Enc> }[];
  }[];
  schedulers: { name: "StepLR" | "ExponentialLR" | "CosineAnnealingLR"; options: any; lrs: number[] }[];
  ops: {
    x: Enc;
    g: Enc;
    softmax: Record<string, { y: Enc; dx: Enc }>;
    log_softmax: Record<string, { y: Enc; dx: Enc }>;
    ties: Enc;
    argmax: Record<string, Enc | number>;
  };
  models: { name: string; input: number[]; repr: string; summary: string; layers: { name: string; output_shape: number[]; params: number }[] }[];
};

/** float64 against float64 PyTorch: the same formulas, so agreement to rounding. */
const TOL64: Tolerance = { atol: 1e-12, rtol: 1e-10 };
/**
 * float32 against float64 PyTorch over four Adam steps: each step divides by
 * √v + ε, which magnifies float32 rounding of small gradients; 2e-4 relative
 * is still far below the size of one step (lr ≥ 0.01 on weights of order 0.1–1).
 */
const TOL32: Tolerance = { atol: 2e-5, rtol: 2e-4 };

function mlp(dtype: DType): nn.Sequential {
  return new nn.Sequential(new nn.Linear(6, 5, { dtype, bias: false }), new nn.BatchNorm1d(5, { dtype }), new nn.Sigmoid(), new nn.Linear(5, 3, { dtype }));
}

function stateFrom(enc: Record<string, Enc>, dtype: DType): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(enc).map(([k, v]) => [k, tensor(v.data, v.shape, { dtype })]));
}

describe("Adam and AdamW match torch.optim over four steps of an MLP with BN", () => {
  for (const c of fixture.adam) {
    for (const dtype of ["float64", "float32"] as const) {
      test(`${c.name} (${dtype})`, () => {
        const model = mlp(dtype);
        model.loadStateDict(stateFrom(c.initial, dtype));
        const Opt = c.optimizer === "Adam" ? optim.Adam : optim.AdamW;
        const opt = new Opt(model.parameters(), c.options);
        const lossFn = new nn.CrossEntropyLoss();
        const x = tensor(c.x.data, c.x.shape, { dtype });
        const tol = dtype === "float64" ? TOL64 : TOL32;
        c.steps.forEach((expected, i) => {
          opt.zeroGrad();
          const loss = lossFn.forward(model.forward(x), c.y);
          loss.backward();
          opt.step();
          assertAllClose(loss.item(), expected.loss, tol, `${c.name} step ${i + 1} loss`);
          const state = model.stateDict();
          for (const [key, value] of Object.entries(expected.state)) {
            assertAllClose(state[key].data, value.data, tol, `${c.name} step ${i + 1} ${key}`);
          }
        });
      });
    }
  }

  test("a checkpoint (stateDict → JSON → loadStateDict) continues to the same bits", () => {
    const c = fixture.adam.find((a) => a.options.amsgrad)!;
    const run = (resumeAt: number | null) => {
      const model = mlp("float64");
      model.loadStateDict(stateFrom(c.initial, "float64"));
      let opt = new optim.Adam(model.parameters(), c.options);
      const x = tensor(c.x.data, c.x.shape, { dtype: "float64" });
      for (let i = 0; i < 4; i++) {
        if (i === resumeAt) {
          const saved = JSON.parse(JSON.stringify(opt.stateDict()));
          opt = new optim.Adam(model.parameters(), c.options);
          opt.loadStateDict(saved);
        }
        opt.zeroGrad();
        new nn.CrossEntropyLoss().forward(model.forward(x), c.y).backward();
        opt.step();
      }
      return model.stateDict()["3.weight"].data;
    };
    assert.deepEqual([...run(2)], [...run(null)]);
  });

  test("bad settings and a diverged gradient are refused before anything changes", () => {
    const p = tensor([1, 2], [2], { requiresGrad: true });
    assert.throws(() => new optim.Adam([p], { lr: -1 }), /lr must be a finite number ≥ 0; got -1/);
    assert.throws(() => new optim.Adam([p], { betas: [0.9, 1] }), /betas\[1\] must be in \[0, 1\)/);
    assert.throws(() => new optim.AdamW([p], { weightDecay: NaN }), /weightDecay must be a finite number ≥ 0/);
    const opt = new optim.Adam([p], { lr: 0.1 });
    p.grad = tensor([0.5, NaN], [2]);
    assert.throws(() => opt.step(), /parameter 0 .* holds NaN at index 1: the run has diverged\. No parameter was changed/);
    assert.deepEqual([...p.data], [1, 2]);
  });
});

describe("learning-rate schedulers match torch.optim.lr_scheduler", () => {
  for (const s of fixture.schedulers) {
    test(`${s.name} ${JSON.stringify(s.options)}: 25 steps`, () => {
      const opt = new optim.SGD([tensor([0], [1], { requiresGrad: true })], { lr: s.lrs[0] });
      const Scheduler = optim[s.name];
      const sched = new Scheduler(opt, s.options);
      const got = [sched.getLastLr()];
      for (let i = 0; i < s.lrs.length - 1; i++) {
        sched.step();
        got.push(opt.lr);
      }
      // The same recursive formulas in double precision: equal up to a last-bit difference of cos().
      assertAllClose(got, s.lrs, { atol: 1e-17, rtol: 1e-14 }, s.name);
    });
  }

  test("schedulers drive Adam too, and resume from their state", () => {
    const opt = new optim.Adam([tensor([0], [1], { requiresGrad: true })], { lr: 0.1 });
    const sched = new optim.StepLR(opt, { stepSize: 2, gamma: 0.5 });
    for (let i = 0; i < 3; i++) sched.step();
    assert.equal(opt.lr, 0.05);
    const opt2 = new optim.Adam([tensor([0], [1], { requiresGrad: true })], { lr: 0.1 });
    const sched2 = new optim.StepLR(opt2, { stepSize: 2, gamma: 0.5 });
    sched2.loadStateDict(JSON.parse(JSON.stringify(sched.stateDict())));
    sched.step();
    sched2.step();
    assert.equal(opt2.lr, opt.lr);
    assert.equal(opt.lr, 0.025);
    assert.throws(() => new optim.StepLR(opt, { stepSize: 0 }), /stepSize must be a whole number ≥ 1; got 0/);
  });
});

describe("softmax, logSoftmax and argmax match torch", () => {
  const o = fixture.ops;
  for (const dtype of ["float64", "float32"] as const) {
    const tol = dtype === "float64" ? TOL64 : { atol: 1e-6, rtol: 1e-5 };
    for (const [name, fn] of [["softmax", ops.softmax], ["log_softmax", ops.logSoftmax]] as const) {
      for (const [dim, expected] of Object.entries(o[name])) {
        test(`${name} along dim ${dim} (${dtype}): values and gradient, with a logit of 40`, () => {
          const x = tensor(o.x.data, o.x.shape, { dtype, requiresGrad: true });
          const y = fn(x, Number(dim));
          y.backward(tensor(o.g.data, o.g.shape, { dtype }));
          assertAllClose(y.data, expected.y.data, tol, `${name} y`);
          assertAllClose(x.grad!.data, expected.dx.data, tol, `${name} dx`);
        });
      }
    }
  }

  test("argmax picks the first maximum along a dim, with keepDim, and over everything", () => {
    const ties = tensor(o.ties.data, o.ties.shape);
    for (const [key, expected] of Object.entries(o.argmax)) {
      if (key === "flat") {
        assert.equal(ops.argmax(ties).item(), expected);
        continue;
      }
      if (key === "x_2") {
        const e = expected as Enc;
        const got = ops.argmax(tensor(o.x.data, o.x.shape), 2);
        assert.deepEqual([...got.shape], e.shape);
        assert.deepEqual([...got.data], e.data);
        continue;
      }
      const e = expected as Enc;
      const got = ops.argmax(ties, Number(key.split("_")[0]), key.endsWith("keepdim"));
      assert.deepEqual([...got.shape], e.shape, key);
      assert.deepEqual([...got.data], e.data, key);
    }
    assert.throws(() => ops.softmax(ties, 2), /dim 2 is out of range for shape \[3, 4\] \(valid: -2 … 1\)/);
  });
});

/** The three fixture models, built the same way in covshift. */
function buildModel(name: string): nn.Module {
  switch (name) {
    case "mlp_bn":
      return new nn.Sequential(new nn.Linear(784, 100, { bias: false }), new nn.BatchNorm1d(100), new nn.Sigmoid(), new nn.Linear(100, 10));
    case "cnn":
      return new nn.Sequential(
        new nn.Conv2d(3, 8, 3, { padding: 1, bias: false }),
        new nn.BatchNorm2d(8, { eps: 1e-3, momentum: null }),
        new nn.ReLU(),
        new nn.MaxPool2d(2),
        new nn.Conv2d(8, 4, 1, { stride: 2 }),
        new nn.AvgPool2d(3, { stride: 1, padding: 1 }),
        new nn.LocalResponseNorm(5),
        new nn.Dropout(0.4),
        new nn.AdaptiveAvgPool2d(1),
        new nn.Flatten(),
        new nn.Linear(4, 10),
      );
    case "nested_frozen": {
      const first = new nn.Linear(20, 16);
      const model = new nn.Sequential(
        new nn.Sequential(first, new nn.BatchNorm1d(16, { affine: false }), new nn.Tanh()),
        new nn.Sequential(new nn.Linear(16, 8), new nn.Sequential(new nn.BatchNorm1d(8, { trackRunningStats: false }), new nn.ReLU())),
        new nn.Linear(8, 3),
      );
      first.weight.requiresGrad = false;
      first.bias!.requiresGrad = false;
      return model;
    }
    default:
      throw new Error(`no model ${name}`);
  }
}

describe("String(model) and summary(model, shape) read like PyTorch's repr and torchinfo", () => {
  for (const m of fixture.models) {
    test(`${m.name}: String(model) equals repr(model)`, () => {
      assert.equal(String(buildModel(m.name)), m.repr);
    });
    test(`${m.name}: summary equals torchinfo's layout of PyTorch's shapes and counts`, () => {
      const model = buildModel(m.name);
      model.train();
      const before = model.stateDict();
      assert.equal(summary(model, m.input), m.summary);
      // summary() runs the model in eval mode without gradients and leaves it as it was.
      assert.equal(model.training, true);
      for (const [k, v] of Object.entries(model.stateDict())) assert.deepEqual([...v.data], [...before[k].data], k);
    });
  }

  test("a wrong input shape gets a message that says what to pass", () => {
    assert.throws(() => summary(buildModel("mlp_bn"), [1, 10]), /could not run on an input of shape \[1, 10\].*Pass the shape the model's first layer expects/s);
    assert.throws(() => summary(buildModel("mlp_bn"), [] as number[]), /inputShape must be the sample input's shape, batch first/);
  });
});

describe("DataLoader", () => {
  const N = 10;
  const images = Float32Array.from({ length: N * 4 }, (_, i) => i);
  const labels = Uint8Array.from({ length: N }, (_, i) => i % 3);
  const dataset = { images, labels, shape: [N, 1, 2, 2] };

  test("in order: every example once per epoch, the short last batch kept, shapes [B, ...example]", () => {
    const loader = new DataLoader(dataset, { batchSize: 4 });
    const batches = [...loader];
    assert.equal(loader.length, 3);
    assert.deepEqual(batches.map((b) => b.x.shape), [[4, 1, 2, 2], [4, 1, 2, 2], [2, 1, 2, 2]]);
    assert.deepEqual([...batches[2].indices], [8, 9]);
    assert.deepEqual([...batches[2].x.data], [32, 33, 34, 35, 36, 37, 38, 39]);
    assert.deepEqual([...batches[1].y], [1, 2, 0, 1]);
  });

  test("shuffle with a seeded generator: a new permutation each epoch, the same on every run; dropLast drops the tail", () => {
    const epochs = (seed: number) => {
      const loader = new DataLoader(dataset, { batchSize: 3, shuffle: true, dropLast: true, generator: new Generator(seed) });
      return [0, 1].map(() => [...loader].map((b) => [...b.indices]));
    };
    const [e0, e1] = epochs(7);
    assert.deepEqual(epochs(7), [e0, e1], "same seed, same batches");
    assert.equal(e0.length, 3, "⌊10 / 3⌋ batches with dropLast");
    assert.notDeepEqual(e0, e1, "each epoch reshuffles");
    const seen = e0.flat();
    assert.equal(new Set(seen).size, 9, "no example twice within an epoch");
    // The order is generator.permutation(N), as the figure1 trainer draws its epochs.
    assert.deepEqual(seen, [...new Generator(7).permutation(N).subarray(0, 9)]);
  });

  test("fillBatch copies the chosen examples into caller-owned arrays (figure1's allocation-free batches), as batch() would", () => {
    const loader = new DataLoader(dataset, { batchSize: 2 });
    const x = new Float32Array(8);
    const y = new Int32Array(2);
    loader.fillBatch([9, 2], x, y);
    const made = loader.batch([9, 2]);
    assert.deepEqual([...x], [...made.x.data]);
    assert.deepEqual([...y], [...made.y]);
    assert.throws(() => loader.fillBatch([0, 1, 2], x, y), /3 examples need 12 values in x and 3 in y; got 8 and 2/);
  });

  test("the transform hook sees and replaces every batch", () => {
    const loader = new DataLoader(dataset, {
      batchSize: 5,
      transform: (b) => ({ ...b, x: noGrad(() => ops.mul(b.x, tensor([2], [1]))) }),
    });
    const [first] = loader;
    assert.equal(first.x.data[1], 2);
  });

  test("inconsistent data sets and options are refused with what was expected", () => {
    assert.throws(() => new DataLoader({ images, labels, shape: [N, 3] }), /shape \[10, 3\] needs 30 values in images, but it holds 40/);
    assert.throws(() => new DataLoader({ images, labels: labels.subarray(1), shape: [N, 4] }), /10 examples need 10 labels; got 9/);
    assert.throws(() => new DataLoader(dataset, { batchSize: 0 }), /batchSize must be a whole number ≥ 1; got 0/);
    assert.throws(() => new DataLoader([] as never), /the data set must be \{ images: Float32Array, labels, shape/);
  });
});
