/**
 * The covshift half of `npm run bench`: the §4.1 MLP training step, GEMM at
 * the network's shapes, BatchNorm forward + backward, one convolution layer's
 * training step and one Figure 1 evaluation, on every backend configuration.
 *
 * The MLP, BN-op and conv measurements go through the public API (nn, ops,
 * optim) with the backend selected by name, exactly as a training run does;
 * the GEMM and BN-kernel rows call the backend's kernels directly, and the
 * "raw" rows call the SIMD kernels on operands already in wasm memory.
 */
import type { Backend } from "../src/backend/backend.js";
import { referenceBackend } from "../src/backend/reference/index.js";
import { availableParallelism } from "node:os";
import { initWasmBackendSync, wasmRelaxedSimdSupported, wasmSimdSupported, type WasmBackend } from "../src/backend/wasm/index.js";
import { startWasmThreads } from "../src/node/wasmThreads.js";
import { kernelsSimdBase64 } from "../src/backend/wasm/generated/kernels-simd.js";
import { defaultFigure1Config, type NetworkKind } from "../src/experiments/figure1/config.js";
import { buildFigure1Network } from "../src/experiments/figure1/network.js";
import { Figure1Trainer, type ImageSet } from "../src/experiments/figure1/trainer.js";
import { getBackend, nn, ops, optim, registerBackend, scope, setBackend, Tensor, ones, zeros } from "../src/index.js";
import { Generator } from "../src/tensor/random.js";
import {
  bnCases,
  bnKernelStep,
  gemmCases,
  gemmFlops,
  gemmStep,
  random,
  RawKernels,
  time,
  type BnCase,
  type Effort,
  type Timing,
} from "./measure.js";

// --- backend configurations -----------------------------------------------------

/** One way to run covshift: a backend (by build) at a thread count. */
export interface BackendConfig {
  /** "reference", "wasm-scalar", "wasm-simd" or "wasm-relaxed-simd", with "×N threads" when N > 1. */
  label: string;
  backend: "reference" | "wasm-scalar" | "wasm-simd" | "wasm-relaxed-simd";
  threads: number;
  kernels: Backend;
  /** Make this configuration the one the ops layer uses. */
  activate(): void;
}

/**
 * The thread counts a build is measured at: 1, and with a shared memory the
 * machine's cores (each count is its own backend instance, its team of
 * kernel threads started once).
 */
export function threadCounts(be: Backend): number[] {
  const cores = availableParallelism();
  return (be as Partial<WasmBackend>).sharedMemory === true && cores > 1 ? [1, cores] : [1];
}

/**
 * Every backend build this engine runs, at every thread count it supports.
 * `only` (names as in BackendConfig.backend) restricts the list.
 */
export async function backendConfigs(only?: readonly string[]): Promise<{ configs: BackendConfig[]; notes: string[] }> {
  const builds: [BackendConfig["backend"], () => Backend][] = [
    ["reference", () => referenceBackend],
    ["wasm-scalar", () => initWasmBackendSync({ simd: false })],
    ["wasm-simd", () => initWasmBackendSync({ simd: true, relaxed: false })],
    ["wasm-relaxed-simd", () => initWasmBackendSync({ relaxed: true })],
  ];
  const configs: BackendConfig[] = [];
  const notes: string[] = [];
  for (const [backend, load] of builds) {
    if (only !== undefined && !only.includes(backend)) continue;
    if (backend === "wasm-relaxed-simd" && !wasmRelaxedSimdSupported()) {
      notes.push("wasm-relaxed-simd: this engine has no WebAssembly relaxed SIMD; skipped");
      continue;
    }
    if (backend === "wasm-simd" && !wasmSimdSupported()) {
      notes.push("wasm-simd: this engine has no WebAssembly SIMD; skipped");
      continue;
    }
    let first: Backend;
    try {
      first = load();
    } catch (err) {
      notes.push(`${backend}: could not be loaded (${(err as Error).message}); skipped`);
      continue;
    }
    for (const threads of threadCounts(first)) {
      const kernels = threads === 1 ? first : load();
      if (threads > 1) await startWasmThreads(kernels as WasmBackend, threads);
      configs.push({
        label: threads === 1 ? backend : `${backend} ×${threads} threads`,
        backend,
        threads,
        kernels,
        activate() {
          // Every wasm build registers under the name "wasm": re-register the one wanted.
          if (kernels !== referenceBackend) registerBackend(kernels);
          setBackend(kernels.name);
        },
      });
    }
  }
  return { configs, notes };
}

// --- 1. the §4.1 MLP training step ------------------------------------------------

export interface MlpResult {
  config: string;
  backend: string;
  threads: number;
  network: NetworkKind;
  stepsPerSecond: number;
  medianStepsPerSecond: number;
  msPerStep: number;
}

const BATCH = defaultFigure1Config.batchSize;

/**
 * One SGD step of the §4.1 network exactly as figure1 builds it (784-100-100-100-10
 * sigmoid, N(0, 0.01²) weights; BN network: Linear without bias → BatchNorm1d →
 * Sigmoid), batch 60, lr 0.01, momentum 0.9: zeroGrad, forward, loss, backward, step,
 * inside scope() as Figure1Trainer runs it.
 */
export function mlpStep(network: NetworkKind, options: { plain?: boolean } = {}): () => void {
  const { model } = buildFigure1Network(network, defaultFigure1Config, new Generator(0));
  const opt = new optim.SGD(model.parameters(), { lr: defaultFigure1Config.lr, momentum: defaultFigure1Config.momentum });
  const lossFn = new nn.CrossEntropyLoss();
  const x = new Tensor(random(BATCH * 784, 11).map((v) => v + 0.5), [BATCH, 784]);
  const labels = Int32Array.from({ length: BATCH }, (_, i) => (i * 7) % 10);
  model.train();
  if (options.plain) {
    // As a user writes it (the default path's loop): no scope, gradients set to null.
    return () => {
      opt.zeroGrad();
      const loss = lossFn.forward(model.forward(x), labels);
      loss.backward();
      opt.step();
    };
  }
  // As figure1 trains: inside scope(), gradients zeroed in place, so a step reuses the buffers of the one before.
  return () =>
    scope(() => {
      opt.zeroGrad({ setToNone: false });
      const loss = lossFn.forward(model.forward(x), labels);
      loss.backward();
      opt.step();
    });
}

export function benchMlp(configs: BackendConfig[], effort: Effort, log: (s: string) => void): MlpResult[] {
  const out: MlpResult[] = [];
  for (const c of configs) {
    c.activate();
    for (const network of ["baseline", "batchnorm"] as const) {
      log(`mlp ${network} on ${c.label}`);
      const t = time(mlpStep(network), effort.fast);
      out.push({
        config: c.label,
        backend: c.backend,
        threads: c.threads,
        network,
        stepsPerSecond: 1 / t.best,
        medianStepsPerSecond: 1 / t.median,
        msPerStep: t.best * 1e3,
      });
    }
  }
  return out;
}

/**
 * One Figure 1 evaluation (all 10,000 test images in inference mode, with the
 * probe's percentiles) through Figure1Trainer.evaluate, on synthetic images.
 */
export function benchEvaluation(config: BackendConfig, effort: Effort, log: (s: string) => void) {
  config.activate();
  const images = (count: number, seed: number): ImageSet => ({
    images: random(count * 784, seed).map((v) => v + 0.5),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
    count,
  });
  const train = images(600, 21);
  const test = images(10_000, 22);
  const result: Record<NetworkKind, number> = { baseline: NaN, batchnorm: NaN };
  for (const network of ["baseline", "batchnorm"] as const) {
    log(`figure1 evaluation, ${network}, on ${config.label}`);
    const trainer = new Figure1Trainer(network, 0, defaultFigure1Config, train, test);
    for (let i = 0; i < 5; i++) trainer.trainStep(); // BN's running statistics move off their initial values
    const t = time(() => trainer.evaluate(), { rounds: effort.evalRounds, roundSeconds: 0, warmupMs: 0, warmupCalls: 1 });
    result[network] = t.best;
  }
  return { config: config.label, secondsPerEvaluation: result, images: test.count };
}

// --- 2. GEMM ------------------------------------------------------------------------

export interface GemmResult {
  case: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** GFLOP/s by configuration label; "wasm-simd raw" = the SIMD kernel on operands already in wasm memory. */
  gflops: Record<string, number>;
  medianGflops: Record<string, number>;
}

export function benchGemm(configs: BackendConfig[], raw: RawKernels | null, effort: Effort, log: (s: string) => void): GemmResult[] {
  return gemmCases.map((g) => {
    const r: GemmResult = { case: g.label, M: g.M, N: g.N, K: g.K, transA: g.transA, transB: g.transB, gflops: {}, medianGflops: {} };
    const record = (label: string, t: Timing) => {
      r.gflops[label] = gemmFlops(g) / t.best / 1e9;
      r.medianGflops[label] = gemmFlops(g) / t.median / 1e9;
    };
    for (const c of configs) {
      log(`gemm ${g.label} on ${c.label}`);
      record(c.label, time(gemmStep(c.kernels, g), effort.fast));
    }
    if (raw !== null) record(RAW, time(raw.gemmStep(g), effort.fast));
    return r;
  });
}

export const RAW = "wasm-simd raw";

export function rawSimdKernels(): RawKernels | null {
  return wasmSimdSupported() ? RawKernels.fromBase64(kernelsSimdBase64) : null;
}

// --- 3. BatchNorm forward + backward ----------------------------------------------------

/**
 * Bytes one BN forward + backward must move at the least: forward reads x and
 * writes y, backward reads x and dy and writes dx — 5 tensors of 4·N·C·H·W bytes.
 */
export const bnBytes = (s: BnCase) => 5 * 4 * s.N * s.C * s.S;
export const BN_GBS_DEFINITION =
  "BN GB/s = (x read + y written in forward + x, dy read + dx written in backward) = 5 × 4 bytes × N·C·H·W, per second";

export interface BnResult {
  case: string;
  shape: number[];
  bytesPerStep: number;
  /** ops.batchNormTrain forward + y.backward(dy) through autograd, by configuration. */
  opGBs: Record<string, number>;
  opMsPerStep: Record<string, number>;
  /** The four BN kernels of a step (moments, affine, grad sums, grad input), by configuration, plus "wasm-simd raw". */
  kernelGBs: Record<string, number>;
  kernelMsPerStep: Record<string, number>;
}

/** ops.batchNormTrain forward and its backward through autograd, with dx, dγ, dβ. */
export function bnOpStep(s: BnCase): () => void {
  const xs = inBackendMemory(random(s.N * s.C * s.S, 4));
  const dy = new Tensor(inBackendMemory(random(s.N * s.C * s.S, 5)), s.shape);
  const gamma = ones([s.C], { requiresGrad: true });
  const beta = zeros([s.C], { requiresGrad: true });
  // As a training step runs it: inside scope(), on an input where a step's activations live (the backend's
  // memory, when it has one). The input is a leaf made in the scope, so ∂x goes into a recycled buffer and
  // ends with the step, as PyTorch's x.grad = None lets its allocator reuse the memory.
  return () =>
    scope(() => {
      gamma.grad = beta.grad = null;
      const x = new Tensor(xs, s.shape, true);
      const { y } = ops.batchNormTrain(x, gamma, beta, 1e-5);
      y.backward(dy);
    });
}

/**
 * A copy of `values` where a training step's tensors live: the selected
 * backend's memory when it has an allocator (never released: this program
 * is short, and each backend instance has its own memory).
 */
function inBackendMemory(values: Float32Array): Float32Array {
  const s = getBackend().storage?.allocateFloat32(values.length) ?? new Float32Array(values.length);
  s.set(values);
  return s;
}

export function benchBatchNorm(configs: BackendConfig[], raw: RawKernels | null, effort: Effort, log: (s: string) => void): BnResult[] {
  return bnCases.map((s) => {
    const bytes = bnBytes(s);
    const r: BnResult = { case: s.label, shape: s.shape, bytesPerStep: bytes, opGBs: {}, opMsPerStep: {}, kernelGBs: {}, kernelMsPerStep: {} };
    for (const c of configs) {
      c.activate();
      log(`batchnorm ${s.label} op on ${c.label}`);
      const op = time(bnOpStep(s), effort.fast);
      r.opGBs[c.label] = bytes / op.best / 1e9;
      r.opMsPerStep[c.label] = op.best * 1e3;
      log(`batchnorm ${s.label} kernels on ${c.label}`);
      const k = time(bnKernelStep(c.kernels, s), effort.fast);
      r.kernelGBs[c.label] = bytes / k.best / 1e9;
      r.kernelMsPerStep[c.label] = k.best * 1e3;
    }
    if (raw !== null) {
      const k = time(raw.bnStep(s), effort.fast);
      r.kernelGBs[RAW] = bytes / k.best / 1e9;
      r.kernelMsPerStep[RAW] = k.best * 1e3;
    }
    return r;
  });
}

// --- 4. one convolution layer's training step -------------------------------------------

export const CONV_SHAPE = [64, 32, 16, 16] as const;
/** Multiply-adds ×2 of the forward, dW and dx GEMMs of a 3×3, 32 → 32 convolution over (64, 32, 16, 16). */
export const convFlops = 3 * 2 * 64 * 32 * 32 * 9 * 16 * 16;

/**
 * Conv2d(32 → 32, 3×3, pad 1, no bias: BN's β takes its place) → BatchNorm2d →
 * ReLU on (64, 32, 16, 16): forward, backward from a fixed upstream gradient
 * (dx included, as for a layer inside a network), SGD step with momentum.
 */
export function convStep(): () => void {
  const gen = new Generator(0);
  const model = new nn.Sequential(new nn.Conv2d(32, 32, 3, { padding: 1, bias: false, generator: gen }), new nn.BatchNorm2d(32), new nn.ReLU());
  const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  const n = CONV_SHAPE.reduce((a, b) => a * b, 1);
  const x = new Tensor(inBackendMemory(random(n, 31)), CONV_SHAPE, true);
  const dy = new Tensor(inBackendMemory(random(n, 32)), CONV_SHAPE);
  // As a training step runs: inside scope(), gradients zeroed in place (x's accumulates, see bnOpStep).
  return () =>
    scope(() => {
      opt.zeroGrad({ setToNone: false });
      model.forward(x).backward(dy);
      opt.step();
    });
}

export interface ConvResult {
  config: string;
  msPerStep: number;
  medianMsPerStep: number;
  gemmGflops: number;
}

export function benchConv(configs: BackendConfig[], effort: Effort, log: (s: string) => void): ConvResult[] {
  return configs.map((c) => {
    c.activate();
    log(`conv step on ${c.label}`);
    const t = time(convStep(), effort.slow);
    return { config: c.label, msPerStep: t.best * 1e3, medianMsPerStep: t.median * 1e3, gemmGflops: convFlops / t.best / 1e9 };
  });
}
