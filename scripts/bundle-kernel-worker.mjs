// Build step: the browser's wasm kernel worker (src/browser/wasmThreadWorker.ts and what it
// imports: runKernelThread, WebAssembly and Atomics only) bundled by esbuild into one classic
// script held as a string in the core. startWasmThreadsInBrowser starts its workers from a blob
// URL of that string, so an app bundled by esbuild, Vite or webpack needs no separate worker file
// (esbuild keeps `new URL("./worker.js", import.meta.url)` as a runtime URL and never emits the
// file it points at).
//   node scripts/bundle-kernel-worker.mjs   → src/browser/generated/kernelWorker.ts (not committed)
import { mkdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const out = fileURLToPath(new URL("../src/browser/generated/kernelWorker.ts", import.meta.url));
const result = await build({
  entryPoints: [fileURLToPath(new URL("../src/browser/wasmThreadWorker.ts", import.meta.url))],
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  write: false,
  legalComments: "none",
});
const code = result.outputFiles[0].text;
mkdirSync(fileURLToPath(new URL("../src/browser/generated/", import.meta.url)), { recursive: true });
writeFileSync(
  out,
  "// The browser kernel worker as one script, bundled by scripts/bundle-kernel-worker.mjs from\n" +
    "// src/browser/wasmThreadWorker.ts — do not edit.\n" +
    `export const KERNEL_WORKER_SOURCE = ${JSON.stringify(code)};\n`,
);
console.log(`bundle-kernel-worker: ${code.length} bytes → src/browser/generated/kernelWorker.ts`);
