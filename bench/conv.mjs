#!/usr/bin/env node
// Quick timing of the convolution and pooling layers (not a test, not the
// benchmark suite): one training step, forward + backward, of
//   Conv2d(32→32, 3×3, pad 1, no bias) + BatchNorm2d + ReLU on (64, 32, 16, 16),
//   MaxPool2d(3, stride 2, pad 1) on (64, 96, 28, 28),
//   the stem Conv2d(3→24, 3×3, pad 1) on (64, 3, 28, 28) (no input gradient),
//   AvgPool2d(3, stride 1, pad 1) on (64, 96, 28, 28),
// on the reference backend and on the wasm backend.
//
//   npm run build && node bench/conv.mjs [reps] [filter]
//   COVSHIFT_DIST=dist,/tmp/old/dist node bench/conv.mjs   (compare builds, e.g. before/after a change)
//   WASM_SIMD=0 ...   (the scalar build of the wasm kernels)   BACKENDS=wasm ...   (skip the slow reference)
//
// Every build and backend runs each case in turn, round after round, so a
// busy machine slows them alike; each figure is the best round (ms) after a
// warm-up of at least a second per case and backend (V8 first runs wasm on
// its baseline compiler and tiers up in the background).
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dists = (process.env.COVSHIFT_DIST ?? "dist").split(",").map((d) => resolve(d));
const reps = Number(process.argv[2] ?? 7);
const filter = process.argv[3] ?? "";
const backends = (process.env.BACKENDS ?? "reference,wasm").split(",");

const builds = [];
for (const dist of dists) {
  const lib = await import(pathToFileURL(`${dist}/src/index.js`).href);
  const wasm = await import(pathToFileURL(`${dist}/src/backend/wasm/index.js`).href);
  if (backends.includes("wasm")) wasm.initWasmBackendSync({ simd: process.env.WASM_SIMD !== "0" });
  builds.push({ dist, lib });
}

function random(n, seed) {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** One training step of `model` on a fixed input: forward, then backward from a fixed output gradient. */
function step(lib, model, shape, inputGrad) {
  const x = new lib.Tensor(random(shape.reduce((p, d) => p * d, 1), 1), shape, inputGrad);
  let g = null;
  return () => {
    for (const p of model.parameters()) p.grad = null;
    x.grad = null; // a fresh gradient each step, not accumulated over the rounds
    const y = model.forward(x);
    g ??= random(y.size, 2);
    y.backward(g);
  };
}

function forwardOnly(lib, model, shape) {
  const x = new lib.Tensor(random(shape.reduce((p, d) => p * d, 1), 1), shape, false);
  return () => lib.noGrad(() => model.forward(x));
}

const cases = [
  ["conv 32→32 3×3 + BN + ReLU, (64,32,16,16), fwd+bwd", ({ nn }, gen) =>
    [new nn.Sequential(new nn.Conv2d(32, 32, 3, { padding: 1, bias: false, generator: gen }), new nn.BatchNorm2d(32), new nn.ReLU()), [64, 32, 16, 16], true]],
  ["  conv 32→32 alone, fwd+bwd", ({ nn }, gen) => [new nn.Conv2d(32, 32, 3, { padding: 1, bias: false, generator: gen }), [64, 32, 16, 16], true]],
  ["  conv 32→32 alone, fwd", ({ nn }, gen) => [new nn.Conv2d(32, 32, 3, { padding: 1, bias: false, generator: gen }), [64, 32, 16, 16], null]],
  ["  BN + ReLU alone, fwd+bwd", ({ nn }) => [new nn.Sequential(new nn.BatchNorm2d(32), new nn.ReLU()), [64, 32, 16, 16], true]],
  ["maxpool 3/2 pad 1, (64,96,28,28), fwd+bwd", ({ nn }) => [new nn.MaxPool2d(3, { stride: 2, padding: 1 }), [64, 96, 28, 28], true]],
  ["  maxpool fwd", ({ nn }) => [new nn.MaxPool2d(3, { stride: 2, padding: 1 }), [64, 96, 28, 28], null]],
  ["stem conv 3→24 3×3 pad 1, (64,3,28,28), fwd+bwd (no dx)", ({ nn }, gen) => [new nn.Conv2d(3, 24, 3, { padding: 1, generator: gen }), [64, 3, 28, 28], false]],
  ["  stem conv fwd", ({ nn }, gen) => [new nn.Conv2d(3, 24, 3, { padding: 1, generator: gen }), [64, 3, 28, 28], null]],
  ["avgpool 3/1 pad 1, (64,96,28,28), fwd+bwd", ({ nn }) => [new nn.AvgPool2d(3, { stride: 1, padding: 1 }), [64, 96, 28, 28], true]],
];

const columns = builds.flatMap((b, i) => backends.map((backend) => ({ build: b, backend, label: `${dists.length > 1 ? `#${i} ` : ""}${backend}` })));
for (const [i, d] of dists.entries()) if (dists.length > 1) console.log(`#${i}: ${d}`);
console.log(`best of ${reps} rounds, ms`);
console.log(`${"case".padEnd(58)} ${columns.map((c) => c.label.padStart(13)).join(" ")}`);
for (const [label, make] of cases) {
  if (filter && !label.includes(filter)) continue;
  const runs = columns.map(({ build, backend }) => {
    const [model, shape, inputGrad] = make(build.lib, new build.lib.Generator(1));
    const fn = inputGrad === null ? forwardOnly(build.lib, model, shape) : step(build.lib, model, shape, inputGrad);
    return { fn, backend, lib: build.lib, best: Infinity };
  });
  for (const r of runs) {
    r.lib.setBackend(r.backend);
    const end = performance.now() + 1000;
    let n = 0;
    do r.fn(); while (++n < 2 || performance.now() < end);
  }
  for (let k = 0; k < reps; k++) {
    for (const r of runs) {
      r.lib.setBackend(r.backend);
      const t0 = performance.now();
      r.fn();
      r.best = Math.min(r.best, performance.now() - t0);
    }
  }
  console.log(`${label.padEnd(58)} ${runs.map((r) => r.best.toFixed(1).padStart(13)).join(" ")}`);
}
