/**
 * The one call path of the wasm glue: a Backend kernel method made from its
 * row of the kernel table (kernelTable.ts). The row names the method's
 * parameters, the operands with their roles — input (read), update (read
 * and written), output (only written), workspace (scratch) — and sizes, the
 * export and its arguments, and how the call splits between threads; this
 * file checks, places, calls and copies out the same way for every kernel.
 */
import type { Backend } from "../backend.js";
import type { Storage } from "../storage.js";
import type { Arena } from "./arena.js";
import { callWith } from "./callWith.js";
import { f32, need } from "./checks.js";
import type { KernelExports } from "./generated/exports.js";
import type { ParallelKernel, ThreadTeam } from "./threads.js";

export type Role = "input" | "update" | "output" | "workspace";
/** A kernel call's values by name: the method's parameters, then what the row derives from them. */
export type Args = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Operand {
  /** The parameter holding the storage; for a workspace, or an operand built by `from`, a name of its own. */
  readonly name: string;
  readonly role: Role | ((a: Args) => Role);
  /** Element type (default f32). A workspace is sized in bytes. */
  readonly type?: "f32" | "f64" | "i32";
  /** Elements the operand must hold (bytes for a workspace, which may ask the module via `k` about the structs placed, `p`). */
  readonly size: (a: Args, k: KernelExports, p: Record<string, number>) => number;
  /** What that size stands for, in the error when the storage is shorter. */
  readonly what?: (a: Args) => string;
  /** Values made from the parameters rather than passed as storage (the window struct, a pooling table); always an input. */
  readonly from?: (a: Args) => Int32Array;
  /** Whether this call uses the operand (else it is passed as 0 and neither checked nor copied). A null parameter is unused too. */
  readonly when?: (a: Args) => boolean;
}

export interface Split {
  /** The export a share runs (one of the kernels the thread team can run). */
  readonly kernel: ParallelKernel;
  readonly args: readonly string[];
  /** Multiply-adds of the whole call: calls from the backend's minParallelWork up are split. */
  readonly work: (a: Args) => number;
  /** Whether this call can be split at all. */
  readonly when?: (a: Args) => boolean;
  /** The values of each of T shares' own arguments (each share also gets its own workspaces). */
  readonly shares: (a: Args, T: number) => Args[];
}

export type KernelMethod = Exclude<keyof Backend, "name" | "storage">;

export interface KernelRow {
  readonly method: KernelMethod;
  /** The Backend method's parameters, in order. */
  readonly params: readonly string[];
  /** The export called on one thread, and its arguments: operand names (their byte offsets) or values of `Args`. */
  readonly export: keyof KernelExports;
  readonly args: readonly string[];
  readonly operands: readonly Operand[];
  /** Adds derived values (sizes) to the arguments. */
  readonly derive?: (a: Args) => void;
  /** Checks beyond the operand sizes (windows, indices), before anything is placed. */
  readonly check?: (a: Args) => void;
  /** Nothing to compute (after the checks). */
  readonly skip?: (a: Args) => boolean;
  readonly split?: Split;
  /** The method's result from the export's. */
  readonly result?: (r: number, a: Args) => unknown;
  /**
   * For a kernel (fill, copy) worth calling only on storage it can use in
   * place: `run` does the call in JavaScript instead, from the method's
   * parameters, checks included (it comes before anything else, so that
   * this path stays cheap), when some storage operand lies outside linear
   * memory (copying it in and out would cost more than the loop), or when
   * the first parameter has fewer than `below` elements, where the kernel
   * call's fixed cost is more than the loop's.
   */
  readonly js?: { readonly run: (params: any[]) => void; readonly below: number }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** What a call needs from its backend instance. */
export interface CallContext {
  readonly k: KernelExports;
  readonly arena: Arena;
  /** Whether a storage lies in linear memory (kernels then use it in place). */
  holds(s: Storage): boolean;
  /** The team and the threads a call of `work` multiply-adds is split between (1: this thread alone). */
  team(): ThreadTeam | null;
  teamFor(work: number): number;
}

const roleOf = (op: Operand, a: Args): Role => (typeof op.role === "function" ? op.role(a) : op.role);

/**
 * Args over a call's parameter list, one class per row: each parameter is a
 * getter (and setter) of its slot, so making a call's Args costs one small
 * object, and each row's functions see one shape.
 */
function argsClass(row: KernelRow): new (v: unknown[]) => Args {
  const RowArgs = function (this: { v: unknown[] }, v: unknown[]) {
    this.v = v;
  } as unknown as new (v: unknown[]) => Args;
  row.params.forEach((name, i) =>
    Object.defineProperty(RowArgs.prototype, name, {
      get(this: { v: unknown[] }) {
        return this.v[i];
      },
      set(this: { v: unknown[] }, x: unknown) {
        this.v[i] = x;
      },
    }),
  );
  return RowArgs;
}

/** The Backend method of `row`. */
export function kernelMethod(row: KernelRow, ctx: CallContext): (...params: unknown[]) => unknown {
  const { k, arena } = ctx;
  const run = k[row.export] as unknown as (...x: number[]) => number;
  const ops = row.operands;
  const count = ops.length;
  const RowArgs = argsClass(row);
  // Resolved once per row, so that a call indexes arrays instead of looking names up.
  const paramOf = ops.map((op) => row.params.indexOf(op.name)); // the parameter holding each operand's storage, or −1
  const isData = ops.map((op) => op.from === undefined && op.role !== "workspace");
  const isF32 = ops.map((op, i) => isData[i] && (op.type ?? "f32") === "f32");
  const isWork = ops.map((op) => op.role === "workspace");
  const isStruct = ops.map((op) => op.from !== undefined);
  const fixedRole = ops.map((op) => (typeof op.role === "function" ? null : op.role));
  const names = ops.map((op) => op.name);
  // Each export argument: an operand's offset (index ≥ 0), or a value of Args by name.
  const argOperand = row.args.map((n) => names.indexOf(n));
  const argParam = row.args.map((n) => row.params.indexOf(n));
  const splitOperand = (row.split?.args ?? []).map((n) => names.indexOf(n));
  const splitParam = (row.split?.args ?? []).map((n) => row.params.indexOf(n));
  // Per call, reused (a kernel call never re-enters itself).
  const use = new Array<boolean>(count).fill(false);
  const sizes = new Array<number>(count).fill(0);
  const ptr = new Array<number>(count).fill(0);
  const p: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const callArgs = new Array<number>(row.args.length).fill(0);
  const scalar = (v: unknown): number => (v === null ? 0 : +(v as number));

  const js = row.js;
  return (...params: unknown[]) => {
    if (js !== undefined && ((params[0] as Storage).length < js.below || !allHeld(params))) return js.run(params);
    const a = new RowArgs(params);
    for (let i = 0; i < count; i++) {
      const j = paramOf[i];
      if (isF32[i] && params[j] != null) params[j] = f32(params[j] as Storage, row.method, names[i]);
    }
    row.derive?.(a);
    row.check?.(a);
    for (let i = 0; i < count; i++) {
      const op = ops[i];
      use[i] = (!isData[i] || params[paramOf[i]] != null) && (op.when === undefined || op.when(a));
      if (use[i] && !isWork[i]) {
        sizes[i] = op.size(a, k, p);
        const st = params[paramOf[i]] as Storage;
        // (what the size stands for is spelled out only for the error)
        if (isData[i] && st.length < sizes[i]) need(st, sizes[i], row.method, names[i], op.what?.(a) ?? "the call");
      }
    }
    if (row.skip?.(a)) return undefined;

    arena.reset();
    for (let i = 0; i < count; i++) {
      ptr[i] = use[i] && !isWork[i] ? place(i, params, a) : 0;
      if (isStruct[i]) p[names[i]] = ptr[i]; // what workspace sizes may read
    }
    const split = row.split;
    const T = split !== undefined && (split.when === undefined || split.when(a)) ? ctx.teamFor(split.work(a)) : 1;
    let r: number;
    if (T > 1) {
      const shares = split!.shares(a, T).map((share) => {
        const own = ptr.slice(); // each share gets workspaces of its own
        for (let i = 0; i < count; i++) if (use[i] && isWork[i]) own[i] = arena.alloc(ops[i].size(a, k, p) >>> 0);
        return split!.args.map((n, j) => {
          if (splitOperand[j] >= 0) return own[splitOperand[j]];
          if (n in share) return scalar(share[n]);
          return scalar(splitParam[j] >= 0 ? params[splitParam[j]] : a[n]);
        });
      });
      r = ctx.team()!.run(split!.kernel, shares, k[split!.kernel] as unknown as (...x: number[]) => number);
    } else {
      for (let i = 0; i < count; i++) if (use[i] && isWork[i]) p[names[i]] = ptr[i] = arena.alloc(ops[i].size(a, k, p) >>> 0);
      for (let j = 0; j < callArgs.length; j++) {
        callArgs[j] = argOperand[j] >= 0 ? ptr[argOperand[j]] : scalar(argParam[j] >= 0 ? params[argParam[j]] : a[row.args[j]]);
      }
      r = callWith(run, callArgs) as number;
    }
    for (let i = 0; i < count; i++) {
      if (!isData[i] || !use[i]) continue;
      const role = fixedRole[i] ?? (ops[i].role as (a: Args) => Role)(a);
      if (role === "output" || role === "update") {
        const type = ops[i].type;
        const s = params[paramOf[i]];
        if (type === "f64") arena.outputF64(ptr[i], s as Float64Array, sizes[i]);
        else if (type === "i32") arena.outputI32(ptr[i], s as Int32Array, sizes[i]);
        else arena.output(ptr[i], s as Float32Array, sizes[i]);
      }
    }
    return row.result === undefined ? r : row.result(r, a);
  };

  /** Whether every storage operand lies in linear memory. */
  function allHeld(params: unknown[]): boolean {
    for (let i = 0; i < count; i++) if (isData[i] && params[paramOf[i]] != null && !ctx.holds(params[paramOf[i]] as Storage)) return false;
    return true;
  }

  /** The byte offset of operand i for the kernel: in place when its storage lies in linear memory, else copied in or given room. */
  function place(i: number, params: unknown[], a: Args): number {
    const op = ops[i];
    const n = sizes[i];
    if (op.from !== undefined) return arena.inputI32(op.from(a), n);
    const s = params[paramOf[i]];
    const type = op.type ?? "f32";
    if ((fixedRole[i] ?? roleOf(op, a)) === "output") {
      return type === "f64" ? arena.alloc(n * 8) : type === "i32" ? arena.targetI32(s as Int32Array, n) : arena.target(s as Float32Array, n);
    }
    return type === "f64" ? arena.inputF64(s as Float64Array, n) : type === "i32" ? arena.inputI32(s as Int32Array, n) : arena.input(s as Float32Array, n);
  }
}
