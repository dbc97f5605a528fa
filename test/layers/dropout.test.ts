/**
 * Dropout: the identity in eval mode; in training, inverted dropout that
 * zeros about p of the entries, scales the rest by 1/(1 − p), preserves the
 * expectation, and draws its mask reproducibly from a seeded Generator.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Generator, manualSeed, nn, ops, ones } from "../../src/index.js";
import { assertAllClose } from "../allclose.js";
import { gradcheck, randn } from "../core/helpers.js";

const gen = new Generator(77);

describe("Dropout", () => {
  it("eval mode is the identity: the very input comes back", () => {
    const d = new nn.Dropout(0.5).eval();
    const x = randn([4, 3, 2, 2], gen);
    assert.equal(d.forward(x), x);
    assert.equal(ops.dropout(x, 0.9, { training: false }), x);
  });
  it("p = 0 in training is the identity too, and draws nothing from the generator", () => {
    const g = new Generator(5);
    const x = randn([10], gen);
    assert.equal(new nn.Dropout(0, { generator: g }).forward(x), x);
    assert.deepEqual(g.getState(), new Generator(5).getState());
  });
  for (const p of [0.1, 0.5, 0.8]) {
    it(`training with p = ${p} on 200000 ones: zeros a fraction p (±4 standard errors), keeps the rest as exactly 1/(1 − p), mean stays 1 (±4 s.e.)`, () => {
      const n = 200_000;
      const y = new nn.Dropout(p, { generator: new Generator(123) }).forward(ones([n], { dtype: "float64" }));
      const scale = 1 / (1 - p);
      let zeros = 0;
      let sum = 0;
      for (const v of y.data) {
        if (v === 0) zeros++;
        else assert.equal(v, scale);
        sum += v;
      }
      // a Bernoulli(p) fraction over n has standard error sqrt(p(1−p)/n)
      const seFraction = Math.sqrt((p * (1 - p)) / n);
      assertAllClose(zeros / n, p, { atol: 4 * seFraction, rtol: 0 }, `zero fraction vs p = ${p} (4 standard errors)`);
      // each output is 0 or 1/(1−p): mean 1, variance p/(1−p)
      const seMean = Math.sqrt(p / (1 - p) / n);
      assertAllClose(sum / n, 1, { atol: 4 * seMean, rtol: 0 }, "mean output vs 1 (4 standard errors)");
    });
  }
  it("the same seed gives the same mask; another seed another mask", () => {
    const x = randn([3, 4, 5, 7], gen);
    const a = new nn.Dropout(0.5, { generator: new Generator(1) }).forward(x);
    const b = new nn.Dropout(0.5, { generator: new Generator(1) }).forward(x);
    const c = new nn.Dropout(0.5, { generator: new Generator(2) }).forward(x);
    assert.deepEqual([...a.data], [...b.data]);
    assert.notDeepEqual([...a.data], [...c.data]);
  });
  it("without a generator it draws from the global one: manualSeed makes it reproducible", () => {
    const d = new nn.Dropout(0.3);
    const x = randn([100], gen);
    manualSeed(31);
    const a = d.forward(x);
    manualSeed(31);
    const b = d.forward(x);
    assert.deepEqual([...a.data], [...b.data]);
  });
  it("consecutive calls draw fresh masks", () => {
    const d = new nn.Dropout(0.5, { generator: new Generator(4) });
    const x = ones([1000]);
    assert.notDeepEqual([...d.forward(x).data], [...d.forward(x).data]);
  });
  it("the gradient is the same mask and scale: ∂ℓ/∂x = g·mask/(1 − p)", () => {
    const x = randn([50], gen, { requiresGrad: true });
    const y = ops.dropout(x, 0.4, { generator: new Generator(8) });
    const g = Float64Array.from({ length: 50 }, (_, i) => i + 1);
    y.backward(g);
    for (let i = 0; i < 50; i++) assert.equal(x.grad!.data[i], y.data[i] === 0 ? 0 : g[i] / 0.6);
  });
  it("gradcheck with a fixed mask (a fresh Generator(3) per call; atol 1e-7, rtol 1e-5)", () => {
    gradcheck(([x]) => ops.dropout(x, 0.3, { generator: new Generator(3) }), [randn([2, 3, 5, 7], gen, { requiresGrad: true })]);
  });
  it("p outside [0, 1) is refused with the reason", () => {
    for (const p of [-0.1, 1, 1.5, NaN]) {
      assert.throws(() => new nn.Dropout(p), /p must be in \[0, 1\)/);
      assert.throws(() => ops.dropout(ones([2]), p), /p must be in \[0, 1\)/);
    }
  });
});
