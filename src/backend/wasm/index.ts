import { registerBackend } from "../index.js";
import { createWasmBackend, type KernelExports, type WasmBackend, type WasmVariant } from "./backend.js";
import { kernelsRelaxedSimdSharedBase64 } from "./generated/kernels-relaxed-simd-shared.js";
import { kernelsRelaxedSimdBase64 } from "./generated/kernels-relaxed-simd.js";
import { kernelsScalarBase64 } from "./generated/kernels-scalar.js";
import { kernelsSimdSharedBase64 } from "./generated/kernels-simd-shared.js";
import { kernelsSimdBase64 } from "./generated/kernels-simd.js";
import { LinearMemory } from "./linearMemory.js";
import { DEFAULT_ADOPT_BUDGET, linearStorageAllocator } from "./storage.js";

export type { WasmBackend, WasmVariant } from "./backend.js";
export { DEFAULT_MIN_PARALLEL_WORK } from "./backend.js";
export { runKernelThread, type KernelThreadInit, type SpawnedThread, type ThreadSpawner } from "./threads.js";

/** How to load the wasm backend. */
export interface WasmBackendOptions {
  /**
   * true: the SIMD build, or an error if this engine lacks WebAssembly SIMD;
   * false: the scalar build; unset (default): SIMD when the engine has it.
   */
  simd?: boolean;
  /**
   * With SIMD: true requires the relaxed-SIMD build (fused multiply-add),
   * false forbids it; unset (default): relaxed SIMD when the engine has it.
   */
  relaxed?: boolean;
  /**
   * true: a shared linear memory (SharedArrayBuffer), in which the tensors of
   * training steps live so that kernels use them in place (zero-copy), and
   * which worker threads can share — an error where the engine lacks it;
   * false: a private memory, operands copied in and out; unset (default):
   * shared where SharedArrayBuffer is available (in browsers: on
   * cross-origin-isolated pages), and not with the scalar build.
   */
  sharedMemory?: boolean;
}

/** Maximum pages of a shared memory (as the shared builds declare: 4 GiB). */
const SHARED_MAXIMUM_PAGES = 65536;

// (module (func (result v128) i32.const 0 i8x16.splat i8x16.popcnt)): validates only where the
// final SIMD proposal is implemented (popcnt came late; early prototypes lack it).
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x0a, 0x01, 0x08, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0xfd, 0x62, 0x0b, // code: i32.const 0, i8x16.splat, i8x16.popcnt
]);

let active: WasmVariant | null = null;

let relaxedSupported: boolean | null = null;

/**
 * Whether this engine runs the relaxed-SIMD build: validated on the build
 * itself, so the answer is exact. (Node 20 needs --experimental-wasm-relaxed-simd,
 * or v8.setFlagsFromString of it before the first wasm compile.)
 */
export function wasmRelaxedSimdSupported(): boolean {
  relaxedSupported ??= typeof WebAssembly === "object" && WebAssembly.validate(moduleBytes("relaxed-simd", false));
  return relaxedSupported;
}

/** Whether this JavaScript engine runs WebAssembly SIMD (fixed-width, 128-bit). */
export function wasmSimdSupported(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
}

/**
 * Loads the kernels module, makes the "wasm" backend from it and registers
 * it (select it with setBackend("wasm")). Asynchronous compilation works on
 * browsers' main threads, which refuse to compile large modules synchronously.
 */
export async function initWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackend> {
  const variant = chooseVariant(options);
  const shared = chooseSharing(options, variant);
  try {
    const memory = createMemory(shared);
    const module = await WebAssembly.compile(moduleBytes(variant, shared));
    return install(module, await WebAssembly.instantiate(module, { env: { memory } }), variant, memory);
  } catch (err) {
    if (variant === "scalar" || options.simd === true) throw loadError(variant, err);
    // SIMD validated but the module did not load (a partial implementation): use the scalar build.
    const memory = createMemory(false);
    const module = await WebAssembly.compile(moduleBytes("scalar", false));
    return install(module, await WebAssembly.instantiate(module, { env: { memory } }), "scalar", memory);
  }
}

/** initWasmBackend, synchronously (Node, workers: engines that compile synchronously). */
export function initWasmBackendSync(options: WasmBackendOptions = {}): WasmBackend {
  const variant = chooseVariant(options);
  const shared = chooseSharing(options, variant);
  try {
    const memory = createMemory(shared);
    const module = new WebAssembly.Module(moduleBytes(variant, shared));
    return install(module, new WebAssembly.Instance(module, { env: { memory } }), variant, memory);
  } catch (err) {
    if (variant === "scalar" || options.simd === true) throw loadError(variant, err);
    const memory = createMemory(false);
    const module = new WebAssembly.Module(moduleBytes("scalar", false));
    return install(module, new WebAssembly.Instance(module, { env: { memory } }), "scalar", memory);
  }
}

/** The build behind the most recently initialized wasm backend. */
export function wasmVariant(): WasmVariant {
  if (active === null) throw new Error("the wasm backend is not initialized yet: call initWasmBackend() first");
  return active;
}

function chooseVariant(options: WasmBackendOptions): WasmVariant {
  if (typeof WebAssembly !== "object") {
    throw new Error("this JavaScript engine has no WebAssembly; use the reference backend");
  }
  if (options.simd === false) {
    if (options.relaxed === true) throw new Error("relaxed: true needs SIMD; it cannot be combined with simd: false");
    return "scalar";
  }
  if (options.relaxed !== false && wasmRelaxedSimdSupported()) return "relaxed-simd";
  if (options.relaxed === true) {
    throw new Error(
      "WebAssembly relaxed SIMD is not supported by this engine (on Node 20 start node with --experimental-wasm-relaxed-simd); leave relaxed unset to use the plain SIMD build",
    );
  }
  if (wasmSimdSupported()) return "simd";
  if (options.simd === true) {
    throw new Error("WebAssembly SIMD is not supported by this engine; pass { simd: false } or leave simd unset to use the scalar build");
  }
  return "scalar";
}

/** Whether this engine can share a WebAssembly memory (SharedArrayBuffer; in browsers, cross-origin isolation). */
export function wasmSharedMemorySupported(): boolean {
  if (typeof SharedArrayBuffer === "undefined" || typeof WebAssembly !== "object") return false;
  if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === false) return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

function chooseSharing(options: WasmBackendOptions, variant: WasmVariant): boolean {
  if (options.sharedMemory === false) return false;
  if (variant === "scalar") {
    if (options.sharedMemory === true) throw new Error("sharedMemory: true needs a SIMD build (the scalar build has a private memory)");
    return false;
  }
  const supported = wasmSharedMemorySupported();
  if (options.sharedMemory === true && !supported) {
    throw new Error(
      "WebAssembly shared memory is not available here (it needs SharedArrayBuffer; a browser page must be cross-origin isolated); leave sharedMemory unset to fall back to a private memory",
    );
  }
  return supported;
}

function createMemory(shared: boolean): WebAssembly.Memory {
  return shared ? new WebAssembly.Memory({ initial: 1, maximum: SHARED_MAXIMUM_PAGES, shared: true }) : new WebAssembly.Memory({ initial: 1 });
}

function install(module: WebAssembly.Module, instance: WebAssembly.Instance, variant: WasmVariant, memory: WebAssembly.Memory): WasmBackend {
  const exports = instance.exports as unknown as KernelExports;
  const heap = new LinearMemory(memory, exports.heapBase() >>> 0);
  const zero = (s: Float32Array) => exports.fillValues(s.byteOffset, s.length, 0);
  const storage = heap.shared ? linearStorageAllocator(heap, DEFAULT_ADOPT_BUDGET, zero) : undefined;
  const backend = createWasmBackend(exports, variant, { heap, module, storage });
  registerBackend(backend);
  active = variant;
  return backend;
}

function moduleBytes(variant: WasmVariant, shared: boolean): Uint8Array<ArrayBuffer> {
  const base64 = shared
    ? { "relaxed-simd": kernelsRelaxedSimdSharedBase64, simd: kernelsSimdSharedBase64, scalar: null }[variant]
    : { "relaxed-simd": kernelsRelaxedSimdBase64, simd: kernelsSimdBase64, scalar: kernelsScalarBase64 }[variant];
  if (base64 === null) throw new Error(`there is no shared-memory ${variant} build`);
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function loadError(variant: WasmVariant, err: unknown): Error {
  return new Error(`the ${variant} build of the wasm kernels did not load: ${(err as Error)?.message ?? String(err)}`);
}
