/**
 * What a user gets: run as its own Node process (no flags, no preload) by
 * `npm run bench`, before anything else, this program imports the package's
 * entry (dist/src/index.js, what `import "covshift"` loads) and times the
 * plain PyTorch-style loop — zeroGrad, forward, loss, backward, step, no
 * scope() — on the §4.1 MLP (with and without BN) and on the convolution
 * step, on whatever backend the import selected. The same MLP step inside
 * scope() is timed in alternating rounds with the plain one, so that their
 * ratio is measured under the same load. Prints JSON on stdout.
 *
 *   node dist/bench/defaultPath.js [--quick]
 *
 * With --serve it is instead the covshift side of the interleaved rounds
 * (bench/interleave.ts): a persistent driver answering the commands of
 * bench/driver.ts, with the same plain-loop steps ("mlp-bn", "mlp", "conv").
 *
 *   node dist/bench/defaultPath.js --serve
 */
// The Node entry, which `import "covshift"` resolves to in Node (package.json's "node" condition): the fast
// kernels and their threads, started in the background.
import { getBackend, nn, optim, scope, Tensor } from "../src/node/entry.js";
import { defaultWasmThreadsStart } from "../src/node/wasmThreads.js";
import { defaultFigure1Config, type NetworkKind } from "../src/experiments/figure1/config.js";
import { buildFigure1Network } from "../src/experiments/figure1/network.js";
import { Generator } from "../src/tensor/random.js";
import { readFileSync } from "node:fs";
import { serve } from "./driver.js";
import { alternate, efforts, random, time } from "./measure.js";

export interface DefaultPathResults {
  /** getBackend().name after `import "covshift"`. */
  backend: string;
  /** The kernel threads the entry started (getBackend().threads once they were up). */
  threads: number;
  mlp: { network: NetworkKind; stepsPerSecond: number; medianStepsPerSecond: number; msPerStep: number }[];
  /** The BN MLP step plain and inside scope(), in alternating rounds. */
  plainVsScoped: {
    plainStepsPerSecond: number;
    scopedStepsPerSecond: number;
    /** plain ÷ scoped steps/s by the wall clock. */
    ratio: number;
    plainCpuMsPerStep: number;
    scopedCpuMsPerStep: number;
    /** plain ÷ scoped steps per CPU second. */
    cpuRatio: number;
  };
  conv: { msPerStep: number; medianMsPerStep: number };
}

const BATCH = defaultFigure1Config.batchSize;

/** One plain training step of the §4.1 network, as a user writes it. */
function mlpStep(network: NetworkKind, scoped: boolean): () => void {
  const { model } = buildFigure1Network(network, defaultFigure1Config, new Generator(0));
  const opt = new optim.SGD(model.parameters(), { lr: defaultFigure1Config.lr, momentum: defaultFigure1Config.momentum });
  const lossFn = new nn.CrossEntropyLoss();
  const x = new Tensor(random(BATCH * 784, 11).map((v) => v + 0.5), [BATCH, 784]);
  const labels = Int32Array.from({ length: BATCH }, (_, i) => (i * 7) % 10);
  model.train();
  const step = () => {
    opt.zeroGrad();
    const loss = lossFn.forward(model.forward(x), labels);
    loss.backward();
    opt.step();
  };
  return scoped ? () => scope(step) : step;
}

/** The bench's convolution step (bench/covshift.ts convStep), written plainly: tensors on the JavaScript heap, no scope. */
function convStep(): () => void {
  const shape = [64, 32, 16, 16];
  const gen = new Generator(0);
  const model = new nn.Sequential(new nn.Conv2d(32, 32, 3, { padding: 1, bias: false, generator: gen }), new nn.BatchNorm2d(32), new nn.ReLU());
  const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const n = shape.reduce((a, b) => a * b, 1);
  const x = new Tensor(random(n, 31), shape, true);
  const dy = new Tensor(random(n, 32), shape);
  return () => {
    opt.zeroGrad();
    x.grad = null;
    model.forward(x).backward(dy);
    opt.step();
  };
}

function main(): void {
  const effort = efforts[process.argv.includes("--quick") ? "quick" : "full"];
  const mlp: DefaultPathResults["mlp"] = [];
  for (const network of ["baseline", "batchnorm"] as const) {
    const t = time(mlpStep(network, false), { ...effort.fast, warmupMs: Math.max(effort.fast.warmupMs ?? 0, 1000) });
    mlp.push({ network, stepsPerSecond: 1 / t.best, medianStepsPerSecond: 1 / t.median, msPerStep: t.best * 1e3 });
  }
  const alt = alternate([mlpStep("batchnorm", false), mlpStep("batchnorm", true)], effort.fast);
  const [plain, scoped] = alt.wall;
  // The conv step takes tens of ms: a second of warm-up (V8 tiers the kernels up in the background) and up to
  // 15 calls, since a best of 5 after 2 warm-up calls moved between 20 and 40 ms on the same build.
  const c = time(convStep(), { ...effort.slow, rounds: Math.max(effort.slow.rounds ?? 0, 15), warmupMs: Math.max(effort.slow.warmupMs ?? 0, 1000) });
  const out: DefaultPathResults = {
    backend: getBackend().name,
    threads,
    mlp,
    plainVsScoped: {
      plainStepsPerSecond: 1 / plain,
      scopedStepsPerSecond: 1 / scoped,
      ratio: scoped / plain,
      plainCpuMsPerStep: alt.cpu[0] * 1e3,
      scopedCpuMsPerStep: alt.cpu[1] * 1e3,
      cpuRatio: alt.cpu[1] / alt.cpu[0],
    },
    conv: { msPerStep: c.best * 1e3, medianMsPerStep: c.median * 1e3 },
  };
  console.log(JSON.stringify(out));
}

/** The plain-loop steps by the driver protocol's work names (bench/driver.ts). */
const SERVE_WORK: Record<string, () => () => void> = {
  "mlp-bn": () => mlpStep("batchnorm", false),
  mlp: () => mlpStep("baseline", false),
  conv: convStep,
};

// What the plain loop runs on: the threads the entry started in the background, once they are up.
const threads = (await defaultWasmThreadsStart()) ?? (getBackend() as { threads?: number }).threads ?? 1;

if (process.argv.includes("--serve")) {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  serve({
    hello: () => ({ side: "covshift", version: pkg.version, backend: getBackend().name, threads, node: process.version, work: Object.keys(SERVE_WORK) }),
    build: (work) => {
      const make = SERVE_WORK[work];
      if (make === undefined) throw new Error(`unknown work ${JSON.stringify(work)}; expected one of ${Object.keys(SERVE_WORK).join(", ")}`);
      return make();
    },
  });
} else main();
