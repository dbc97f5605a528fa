/**
 * A module Web Worker that trains one network of Figure 1 — the baseline or
 * the BN one — with figure1's own trainer (src/experiments/figure1/trainer.ts)
 * on the wasm backend, and reports every evaluation to the page. Both workers
 * get the same settings and seed, so the two networks start from the same
 * weights (up to BN's extra layers) and see the same batches in the same order.
 *
 * Training runs in slices of ~50 ms between which the worker yields to its
 * event loop, so "pause", "speed" and "population" messages are served while
 * it trains.
 */
import { exportOnnx, nn, noGrad, saveSafetensors, scope, setBackend, Tensor } from "../src/index.js";
import { initWasmBackend } from "../src/backend/wasm/index.js";
import { defaultFigure1Config, type Figure1Config } from "../src/experiments/figure1/config.js";
import { Figure1Trainer, type ImageSet } from "../src/experiments/figure1/trainer.js";
import { HISTOGRAM_IMAGES, type BnLayerState, type DemoSettings, type Evaluation, type FromWorker, type NetworkKind, type ToWorker } from "./protocol.js";

const INPUT = 784;
const SLICE_MS = 50;

const scopeOfWorker = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  addEventListener(type: "message", listener: (event: MessageEvent<ToWorker>) => void): void;
};
const post = (message: FromWorker, transfer: Transferable[] = []) => scopeOfWorker.postMessage(message, transfer);

let network: NetworkKind = "baseline";
let train: ImageSet | null = null;
let test: ImageSet | null = null;
let trainer: Figure1Trainer | null = null;
let settings: DemoSettings | null = null;
let running = false;
let stepsPerSecond: number | null = null;
/** Training stops at this step (settings.steps; the stop can move without a restart). */
let stopAt = 0;
/** Bumped whenever a loop must end (pause, reset): a loop that sees another value stops. */
let generation = 0;

/** figure1's configuration with the page's settings in it. */
function figure1Config(s: DemoSettings): Figure1Config {
  return {
    ...defaultFigure1Config,
    steps: Number.MAX_SAFE_INTEGER, // the worker stops at stopAt, which can move
    batchSize: s.batchSize,
    evalEvery: s.evalEvery,
    seeds: 1,
    lr: s.lr * s.lrMultiplier,
    initStd: s.initStd,
    activation: s.activation,
    bnMomentum: s.bnMomentum,
    backend: "wasm",
  };
}

async function loadBackend(): Promise<string> {
  try {
    const wasm = await initWasmBackend();
    setBackend("wasm");
    return `wasm (${wasm.variant}, ${wasm.sharedMemory ? "shared memory" : "private memory: the page is not cross-origin isolated"})`;
  } catch (err) {
    // Engines without WebAssembly still train, on the plain TypeScript kernels.
    setBackend("reference");
    return `reference (wasm unavailable: ${(err as Error).message})`;
  }
}

function fresh(s: DemoSettings): void {
  generation++;
  running = false;
  settings = s;
  stopAt = s.steps;
  trainer = new Figure1Trainer(network, s.seed, figure1Config(s), train!, test!);
  evaluateAndPost();
  post({ type: "progress", network, step: 0, running: false });
}

/** The index of each layer whose output feeds a hidden nonlinearity. */
function preActivationLayers(model: nn.Sequential): number[] {
  const found: number[] = [];
  for (let l = 1; l < model.length; l++) {
    const m = model.at(l);
    if (m instanceof nn.Sigmoid || m instanceof nn.ReLU) found.push(l - 1);
  }
  return found;
}

/** Inputs of every hidden nonlinearity over the first HISTOGRAM_IMAGES test images, in inference mode. */
function preActivations(model: nn.Sequential): Float32Array[] {
  const layers = preActivationLayers(model);
  const rows = Math.min(HISTOGRAM_IMAGES, test!.count);
  const out: Float32Array[] = [];
  const wasTraining = model.training;
  model.eval();
  noGrad(() =>
    scope(() => {
      let h = new Tensor(test!.images.subarray(0, rows * INPUT), [rows, INPUT]);
      for (let l = 0; l < model.length; l++) {
        h = model.at(l).forward(h);
        // A copy: inside scope() the activation's storage is recycled afterwards.
        if (layers.includes(l)) out.push(Float32Array.from(h.data as Float32Array));
      }
    }),
  );
  model.train(wasTraining);
  return out;
}

function bnState(model: nn.Sequential): BnLayerState[] {
  const layers: BnLayerState[] = [];
  for (const m of model.modules()) {
    if (!(m instanceof nn.BatchNormBase)) continue;
    layers.push({
      layer: layers.length + 1,
      runningMean: Array.from(m.runningMean!.data, Number),
      runningVar: Array.from(m.runningVar!.data, Number),
      gamma: Array.from(m.weight!.data, Number),
      beta: Array.from(m.bias!.data, Number),
    });
  }
  return layers;
}

function evaluateAndPost(): void {
  const t = trainer!;
  t.record();
  const r = t.result;
  const i = r.steps.length - 1;
  const evaluation: Evaluation = {
    step: r.steps[i],
    accuracy: r.testAccuracy[i],
    loss: r.trainLoss[i],
    p15: r.sigmoidInput.p15[i],
    p50: r.sigmoidInput.p50[i],
    p85: r.sigmoidInput.p85[i],
    bn: bnState(t.model),
    preActivations: preActivations(t.model),
  };
  post({ type: "eval", network, evaluation }, evaluation.preActivations.map((a) => a.buffer));
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

async function loop(): Promise<void> {
  const mine = ++generation;
  running = true;
  let windowStart = performance.now();
  let windowSteps = 0;
  let pace = stepsPerSecond;
  const t = trainer!;
  const evalEvery = settings!.evalEvery;
  while (generation === mine && t.step < stopAt) {
    if (pace !== stepsPerSecond) {
      pace = stepsPerSecond;
      windowStart = performance.now();
      windowSteps = 0;
    }
    const sliceEnd = performance.now() + SLICE_MS;
    while (t.step < stopAt && performance.now() < sliceEnd) {
      if (pace !== null && windowSteps >= ((performance.now() - windowStart) / 1000) * pace) break;
      try {
        t.trainStep();
      } catch (err) {
        const message = (err as Error).message;
        running = false;
        generation++;
        if (/diverged|non-?finite|NaN/i.test(message)) post({ type: "diverged", network, step: t.step, message });
        else post({ type: "error", network, message });
        post({ type: "progress", network, step: t.step, running: false });
        return;
      }
      windowSteps++;
      if (t.step % evalEvery === 0 || t.step === stopAt) evaluateAndPost();
    }
    post({ type: "progress", network, step: t.step, running: t.step < stopAt });
    // Yield so that pause/speed messages get through; at a set pace, wait for the next step's time.
    const wait = pace === null ? 0 : Math.max(0, windowStart + ((windowSteps + 1) / pace) * 1000 - performance.now());
    await sleep(Math.min(wait, 250));
  }
  if (generation === mine) {
    running = false;
    post({ type: "progress", network, step: t.step, running: false });
  }
}

/**
 * The trained network as the files `covshift figure1` writes to --out/models:
 * the state dict under PyTorch's keys as safetensors, and the network in
 * inference mode as ONNX (opset 17, dynamic batch), both with the page's
 * settings and the step in their metadata.
 */
function exportFiles(): FromWorker {
  const t = trainer!;
  const description = `covshift demo: the §4.1 MNIST network ${network === "batchnorm" ? "with" : "without"} BN after ${t.step} steps`;
  const metadata = {
    producer: "covshift demo",
    description,
    network,
    step: String(t.step),
    input_shape: JSON.stringify([1, INPUT]),
    settings: JSON.stringify(settings),
  };
  const safetensors = saveSafetensors(t.model.stateDict(), metadata);
  const onnx = exportOnnx(t.model, { inputShape: [1, INPUT], opset: 17, metadata, docString: description });
  return { type: "export", network, step: t.step, safetensors, onnx };
}

scopeOfWorker.addEventListener("message", async (event) => {
  const m = event.data;
  try {
    switch (m.type) {
      case "init": {
        network = m.network;
        train = m.train;
        test = m.test;
        const backend = await loadBackend();
        fresh(m.settings);
        post({ type: "ready", network, backend });
        break;
      }
      case "reset":
        fresh(m.settings);
        break;
      case "run":
        stepsPerSecond = m.stepsPerSecond;
        if (!running && trainer !== null && trainer.step < stopAt) void loop();
        break;
      case "speed":
        stepsPerSecond = m.stepsPerSecond;
        break;
      case "stopAt":
        stopAt = m.steps;
        break;
      case "pause":
        generation++;
        running = false;
        post({ type: "progress", network, step: trainer?.step ?? 0, running: false });
        break;
      case "population": {
        const t = trainer!;
        const runningAccuracy = t.evaluate().accuracy;
        const populationAccuracy = t.populationAccuracy();
        post({ type: "population", network, step: t.step, runningAccuracy, populationAccuracy });
        break;
      }
      case "export": {
        const files = exportFiles() as Extract<FromWorker, { type: "export" }>;
        post(files, [files.safetensors.buffer, files.onnx.buffer]);
        break;
      }
    }
  } catch (err) {
    post({ type: "error", network, message: (err as Error).message });
  }
});
