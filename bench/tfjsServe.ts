/**
 * TensorFlow.js as a persistent driver for the interleaved rounds
 * (bench/interleave.ts, protocol in bench/driver.ts): one process per
 * backend, since TF.js moves tensors between backends when one is switched
 * mid-run. Work: "mlp-bn" and "mlp", the MLP step of bench/tfjs.ts.
 *
 *   node dist/bench/tfjsServe.js --backend wasm|cpu
 */
import { serve } from "./driver.js";
import { loadTfjs, selectTfjsBackend, TFJS_BACKENDS, tfjsMlpStep } from "./tfjs.js";

async function main(): Promise<void> {
  const i = process.argv.indexOf("--backend");
  const backend = i >= 0 ? process.argv[i + 1] : undefined;
  if (backend === undefined || !(TFJS_BACKENDS as readonly string[]).includes(backend)) {
    console.error(`usage: node dist/bench/tfjsServe.js --backend ${TFJS_BACKENDS.join("|")} (got ${backend ?? "no --backend"})`);
    process.exit(2);
  }
  const loaded = loadTfjs();
  if ("unavailable" in loaded) return serve({ unavailable: `TensorFlow.js: ${loaded.unavailable}` });
  const { tf, wasm } = loaded;
  const notes: string[] = [];
  if (!(await selectTfjsBackend(tf, backend, notes))) return serve({ unavailable: notes.join("; ") });
  const work: Record<string, "batchnorm" | "baseline"> = { "mlp-bn": "batchnorm", mlp: "baseline" };
  serve({
    hello: () => ({ side: "tfjs", version: tf.version.tfjs, backend, threads: backend === "wasm" ? wasm.getThreadsCount() : 1, work: Object.keys(work) }),
    build: (name) => {
      const network = work[name];
      if (network === undefined) throw new Error(`unknown work ${JSON.stringify(name)}; TF.js runs ${Object.keys(work).join(", ")}`);
      return tfjsMlpStep(tf, network).step;
    },
  });
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
