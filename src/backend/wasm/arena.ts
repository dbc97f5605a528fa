import type { LinearMemory } from "./linearMemory.js";
import { align64 } from "./linearMemory.js";

type Typed = Float32Array | Float64Array | Int32Array;

/**
 * How one kernel call places its operands in linear memory.
 *
 * A call starts with `reset()`, then gets a byte offset for each operand:
 *  - `input(src)`: an operand the kernel reads;
 *  - `update(dst)`: one it reads and writes;
 *  - `target(dst)`: one it only writes;
 *  - `alloc(bytes)`: a workspace.
 * An operand that already lies in linear memory (a tensor whose storage was
 * allocated there: see LinearMemory) is passed by its own offset, so the
 * kernel works on it in place; any other is copied into this call's scratch
 * block (inputs and updates) or given room there (targets). After the
 * kernel, `output(p, dst)` copies a result back out, which for an operand in
 * linear memory is nothing to do.
 *
 * The scratch block is reused by every call and replaced by a larger one
 * when a call needs more than every call before it, so in steady state (a
 * training loop repeating the same shapes) nothing is allocated.
 */
export class Arena {
  private readonly heap: LinearMemory;
  private block = 0;
  private blockBytes = 0;
  private top = 0;
  /** Blocks outgrown during the current call: their operands are still in use until the next reset(). */
  private retired: { p: number; bytes: number }[] = [];
  private viewsOf: ArrayBufferLike | null = null;
  private f32View: Float32Array = new Float32Array(0);
  private f64View: Float64Array = new Float64Array(0);
  private i32View: Int32Array = new Int32Array(0);

  constructor(heap: LinearMemory) {
    this.heap = heap;
  }

  /** Forget the previous call's layout: the next operand goes to the start of the scratch block. */
  reset(): void {
    this.top = this.block;
    for (const r of this.retired) this.heap.release(r.p, r.bytes);
    this.retired = [];
  }

  /** Byte offset of `bytes` of scratch (64-byte aligned, contents undefined). */
  alloc(bytes: number): number {
    const size = align64(bytes);
    if (this.top + size > this.block + this.blockBytes) {
      // Too small for this call: continue in a new block at least twice the size; the old one is given back at the next reset().
      if (this.blockBytes > 0) this.retired.push({ p: this.block, bytes: this.blockBytes });
      this.blockBytes = Math.max(size, 2 * this.blockBytes, 1 << 16);
      this.block = this.heap.allocate(this.blockBytes);
      this.top = this.block;
    }
    const p = this.top;
    this.top += size;
    return p;
  }

  /** Byte offset of src[0..n) for a kernel to read. */
  input(src: Float32Array, n: number): number {
    return this.heap.holds(src) ? src.byteOffset : this.copyIn(src, n, 4);
  }

  inputF64(src: Float64Array, n: number): number {
    return this.heap.holds(src) ? src.byteOffset : this.copyIn(src, n, 8);
  }

  inputI32(src: Int32Array, n: number): number {
    return this.heap.holds(src) ? src.byteOffset : this.copyIn(src, n, 4);
  }

  /** Byte offset of dst[0..n) for a kernel to read and write; output() then brings the result back. */
  update(dst: Float32Array, n: number): number {
    return this.input(dst, n);
  }

  /** Byte offset of room for n floats a kernel writes into dst; output() then brings them back. */
  target(dst: Float32Array, n: number): number {
    return this.heap.holds(dst) ? dst.byteOffset : this.alloc(n * 4);
  }

  targetI32(dst: Int32Array, n: number): number {
    return this.heap.holds(dst) ? dst.byteOffset : this.alloc(n * 4);
  }

  /** Copies the n floats at byte offset p out to dst[0..n), unless they are dst's own. */
  output(p: number, dst: Float32Array, n: number): void {
    if (this.heap.holds(dst) && dst.byteOffset === p) return;
    this.views();
    dst.set(this.f32View.subarray(p >>> 2, (p >>> 2) + n));
  }

  outputF64(p: number, dst: Float64Array, n: number): void {
    if (this.heap.holds(dst) && dst.byteOffset === p) return;
    this.views();
    dst.set(this.f64View.subarray(p >>> 3, (p >>> 3) + n));
  }

  outputI32(p: number, dst: Int32Array, n: number): void {
    if (this.heap.holds(dst) && dst.byteOffset === p) return;
    this.views();
    dst.set(this.i32View.subarray(p >>> 2, (p >>> 2) + n));
  }

  private copyIn(src: Typed, n: number, bytesPerElement: 4 | 8): number {
    const p = this.alloc(n * bytesPerElement);
    this.views();
    const part = src.length === n ? src : src.subarray(0, n);
    if (src instanceof Float32Array) this.f32View.set(part as Float32Array, p >>> 2);
    else if (src instanceof Float64Array) this.f64View.set(part as Float64Array, p >>> 3);
    else this.i32View.set(part as Int32Array, p >>> 2);
    return p;
  }

  /** Views over the memory as it is now (growth replaces memory.buffer). */
  private views(): void {
    const b = this.heap.buffer;
    if (b === this.viewsOf) return;
    this.viewsOf = b;
    this.f32View = new Float32Array(b);
    this.f64View = new Float64Array(b);
    this.i32View = new Int32Array(b);
  }
}
