/**
 * Every build of the wasm kernels this engine can run — relaxed SIMD, plain
 * SIMD, scalar — so that each cross-backend test covers all of them. Node 20
 * needs V8's flag for relaxed SIMD; it is set here, before the first compile.
 */
import { setFlagsFromString } from "node:v8";
import {
  initWasmBackendSync,
  wasmRelaxedSimdSupported,
  wasmSimdSupported,
  type WasmBackend,
} from "../../src/backend/wasm/index.js";

setFlagsFromString("--experimental-wasm-relaxed-simd");

export function wasmBuilds(): WasmBackend[] {
  const builds: WasmBackend[] = [];
  if (wasmRelaxedSimdSupported()) builds.push(initWasmBackendSync({ relaxed: true }));
  if (wasmSimdSupported()) builds.push(initWasmBackendSync({ simd: true, relaxed: false }));
  builds.push(initWasmBackendSync({ simd: false }));
  return builds;
}
