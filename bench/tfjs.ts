/**
 * TensorFlow.js on the same work as covshift's MLP row: the §4.1 network
 * (784-100-100-100-10 sigmoid, N(0, 0.01²) weights, batch 60), with and
 * without BN, one SGD step with momentum 0.9 (lr 0.01) per call, on the
 * `wasm` and `cpu` backends. BN is tf.layers.batchNormalization with Keras
 * momentum 0.9 (≙ 0.1 as the weight of the new batch) and epsilon 1e-5.
 *
 * The packages live in bench/peers (installed there by `npm run bench` on
 * first use, see scripts/bench-peers.mjs), not in covshift's devDependencies;
 * without them the benchmark says so and runs on. The wasm binaries are read
 * from the package's dist directory as a file path, so nothing is downloaded.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { time, type Effort } from "./measure.js";

export interface TfjsMlpResult {
  backend: string;
  threads: number;
  network: "baseline" | "batchnorm";
  stepsPerSecond: number;
  medianStepsPerSecond: number;
  msPerStep: number;
}

export interface TfjsResults {
  available: boolean;
  /** Why TF.js was not measured, or a backend was skipped. */
  notes: string[];
  version?: string;
  mlp: TfjsMlpResult[];
}

/** The TF.js packages from bench/peers, with the wasm backend pointed at its own binaries; or why they could not be loaded. */
export function loadTfjs(): { tf: Tf; wasm: Tf } | { unavailable: string } {
  // Untyped: the packages are not installed when covshift is built.
  // From bench/peers (dist/bench/tfjs.js → ../../bench/peers).
  const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bench", "peers", "package.json"));
  try {
    const tf = require("@tensorflow/tfjs");
    const wasm = require("@tensorflow/tfjs-backend-wasm");
    // Nothing may be fetched: point the wasm backend at the binaries in its own package.
    wasm.setWasmPaths(join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm")), "/"));
    return { tf, wasm };
  } catch (err) {
    return {
      unavailable: `@tensorflow/tfjs and @tensorflow/tfjs-backend-wasm could not be loaded from bench/peers (${firstLine(err)}); \`npm run bench\` installs them there`,
    };
  }
}

/** The TF.js backends the bench measures, in order. */
export const TFJS_BACKENDS = ["wasm", "cpu"] as const;

/** Selects a backend; false (with the reason in notes) if it does not initialize. */
export async function selectTfjsBackend(tf: Tf, backend: string, notes: string[]): Promise<boolean> {
  let ok = false;
  try {
    ok = await tf.setBackend(backend);
  } catch (err) {
    notes.push(`TF.js ${backend}: ${firstLine(err)}`);
  }
  if (!ok) {
    notes.push(`TF.js ${backend} backend did not initialize; skipped`);
    return false;
  }
  await tf.ready();
  return true;
}

export async function benchTfjs(effort: Effort, log: (s: string) => void): Promise<TfjsResults> {
  const loaded = loadTfjs();
  if ("unavailable" in loaded) return { available: false, notes: [`TensorFlow.js not measured: ${loaded.unavailable}`], mlp: [] };
  const { tf, wasm } = loaded;
  const notes: string[] = [];
  const mlp: TfjsMlpResult[] = [];

  for (const backend of TFJS_BACKENDS) {
    if (!(await selectTfjsBackend(tf, backend, notes))) continue;
    const threads = backend === "wasm" ? wasm.getThreadsCount() : 1;
    for (const network of ["baseline", "batchnorm"] as const) {
      log(`tfjs mlp ${network} on ${backend}`);
      const { step, dispose } = tfjsMlpStep(tf, network);
      const t = time(step, effort.fast);
      dispose();
      mlp.push({ backend, threads, network, stepsPerSecond: 1 / t.best, medianStepsPerSecond: 1 / t.median, msPerStep: t.best * 1e3 });
    }
  }
  return { available: true, notes, version: tf.version.tfjs, mlp };
}

export type Tf = any;

export function tfjsMlpStep(tf: Tf, network: "baseline" | "batchnorm") {
  const init = (): unknown => tf.initializers.randomNormal({ mean: 0, stddev: 0.01, seed: 0 });
  const model = tf.sequential();
  let width = 784;
  for (let i = 0; i < 3; i++) {
    const bn = network === "batchnorm";
    model.add(tf.layers.dense({ units: 100, inputShape: [width], useBias: !bn, kernelInitializer: init(), biasInitializer: "zeros" }));
    if (bn) model.add(tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 }));
    model.add(tf.layers.activation({ activation: "sigmoid" }));
    width = 100;
  }
  model.add(tf.layers.dense({ units: 10, kernelInitializer: init(), biasInitializer: "zeros" }));
  const opt = tf.train.momentum(0.01, 0.9);
  const x = tf.randomUniform([60, 784], 0, 1, "float32", 11);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: 60 }, (_, i) => (i * 7) % 10), "int32"), 10);
  const step = () => {
    tf.tidy(() => {
      // training: true makes BN normalize with the batch statistics and update its moving averages.
      opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true })), false);
    });
  };
  const dispose = () => {
    tf.dispose([x, y]);
    opt.dispose();
    model.dispose();
  };
  return { step, dispose };
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split("\n")[0];
}
