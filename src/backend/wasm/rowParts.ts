/**
 * The parts the rows of the kernel table (kernelTable.ts, winogradRows.ts)
 * are made of: operand shorthands by role, the window struct, and the
 * descriptions of operand shapes that errors print.
 */
import { checkWindow, windowStruct } from "./checks.js";
import type { Args, Operand } from "./kernelCall.js";

export const nCS = (a: Args) => `(N, C, S) = (${a.N}, ${a.C}, ${a.S})`;
export const chw = (a: Args) => `(C, H, W) = (${a.C}, ${a.g.H}, ${a.g.W})`;
export const nchw = (a: Args) => `(N, C, H, W) = (${a.N}, ${a.C}, ${a.g.H}, ${a.g.W})`;
export const ockk = (a: Args) => `(O, C, kh, kw) = (${a.O}, ${a.C}, ${a.g.kh}, ${a.g.kw})`;
export const noyx = (a: Args) => `(N, O, OH, OW) = (${a.N}, ${a.O}, ${a.g.OH}, ${a.g.OW})`;
export const planesIn = (a: Args) => `${a.planes} planes of ${a.g.H}×${a.g.W}`;
export const planesOut = (a: Args) => `${a.planes} planes of ${a.g.OH}×${a.g.OW}`;

/** Operand shorthands: `n` elements of `name` that the kernel reads, reads and writes, or writes. */
export const input = (name: string, size: Operand["size"], what?: Operand["what"], more: Partial<Operand> = {}): Operand => ({ name, role: "input", size, what, ...more });
export const update = (name: string, size: Operand["size"], what?: Operand["what"], more: Partial<Operand> = {}): Operand => ({ name, role: "update", size, what, ...more });
export const output = (name: string, size: Operand["size"], what?: Operand["what"], more: Partial<Operand> = {}): Operand => ({ name, role: "output", size, what, ...more });
export const workspace = (name: string, bytes: Operand["size"], more: Partial<Operand> = {}): Operand => ({ name, role: "workspace", size: bytes, ...more });
/** The window struct (assembly/window.ts), made from the Window2d parameter g. */
export const windowOperand: Operand = { name: "g", role: "input", type: "i32", size: () => 10, from: (a) => windowStruct(a.g) };
export const checkedWindow = (method: string) => (a: Args) => checkWindow(method, a.g);

