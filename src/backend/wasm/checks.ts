/**
 * What the glue checks before a kernel runs, so that no kernel reads or
 * writes past an operand: float32 storage, operand sizes, and windows the
 * kernels can index unchecked. Each error names the kernel, the operand and
 * what was expected.
 */
import type { PoolWindows, Window2d } from "../backend.js";
import type { Storage } from "../storage.js";

/** The storage as float32, or an error that says where float64 should have gone. */
export function f32(s: Storage, kernel: string, name: string): Float32Array {
  if (s instanceof Float32Array) return s;
  throw new TypeError(
    `wasm backend: ${kernel} got ${s?.constructor?.name ?? typeof s} storage for '${name}'; it computes float32 only. ` +
      `float64 tensors must run on the reference backend (backendFor("float64") returns it).`,
  );
}

export function need(s: ArrayLike<number>, n: number, kernel: string, name: string, what: string): void {
  if (s.length < n) {
    throw new RangeError(`wasm backend: ${kernel}: '${name}' holds ${s.length} elements; ${what} needs ${n}`);
  }
}

/** The fields of a Window2d in the order the kernels read them (assembly/window.ts). */
export const WINDOW_FIELDS = ["H", "W", "kh", "kw", "sh", "sw", "ph", "pw", "OH", "OW"] as const;

/** The window as the struct the kernels take: ten int32 in WINDOW_FIELDS order. */
export function windowStruct(g: Window2d): Int32Array {
  const s = new Int32Array(WINDOW_FIELDS.length);
  for (let i = 0; i < WINDOW_FIELDS.length; i++) s[i] = g[WINDOW_FIELDS[i]];
  return s;
}

/**
 * The window must be one the kernels can run: positive sizes and strides,
 * padding ≥ 0, and OH×OW the positions it really has (the kernels index by
 * them unchecked).
 */
export function checkWindow(kernel: string, g: Window2d): void {
  const { H, W, kh, kw, sh, sw, ph, pw, OH, OW } = g;
  const ints = [H, W, kh, kw, sh, sw, ph, pw, OH, OW];
  const ok =
    ints.every((v) => Number.isInteger(v) && v >= 0) &&
    Math.min(H, W, kh, kw, sh, sw) >= 1 &&
    OH === Math.floor((H + 2 * ph - kh) / sh) + 1 &&
    OW === Math.floor((W + 2 * pw - kw) / sw) + 1 &&
    OH >= 1 &&
    OW >= 1;
  if (!ok) throw new RangeError(`wasm backend: ${kernel}: inconsistent window ${JSON.stringify(g)}`);
}

/** Every window of the tables must be non-empty and inside the plane, with a positive divisor. */
export function checkPoolWindows(kernel: string, w: PoolWindows): void {
  const check = (t: Int32Array, n: number, size: number, axis: string): void => {
    if (t.length < 3 * n) throw new RangeError(`wasm backend: ${kernel}: the ${axis} table holds ${t.length} entries; ${n} windows need ${3 * n}`);
    for (let o = 0; o < n; o++) {
      const [s, e, d] = [t[3 * o], t[3 * o + 1], t[3 * o + 2]];
      if (!(s >= 0 && s < e && e <= size && d > 0)) {
        throw new RangeError(`wasm backend: ${kernel}: ${axis} window ${o} is [${s}, ${e}) with divisor ${d}; windows must be non-empty inside [0, ${size})`);
      }
    }
  };
  check(w.rows, w.OH, w.H, "row");
  check(w.cols, w.OW, w.W, "column");
}

/** Every target must be a class index: the kernel reads logits[n, t_n] unchecked, and an index out of range would read another row. */
export function checkTargets(targets: Int32Array, N: number, C: number): void {
  if (targets.length < N) {
    throw new RangeError(`softmaxCrossEntropy: targets holds ${targets.length} class indices; ${N} rows need ${N}`);
  }
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (!(t >= 0 && t < C)) throw new RangeError(`softmaxCrossEntropy: target ${t} of row ${n} is not a class index in [0, ${C})`);
  }
}
