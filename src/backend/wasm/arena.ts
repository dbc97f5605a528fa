/**
 * Scratch space in the kernels module's linear memory, past its static data.
 *
 * A kernel call starts with `reset()`, places each operand with `input`
 * (copied in) or `alloc` (outputs, workspaces) one after another, runs the
 * kernel on the byte offsets it got, and copies results out with `output`.
 * Memory grows only when a call needs more than every call before it, so in
 * steady state (a training loop repeating the same shapes) nothing is
 * allocated in wasm and nothing is copied but the operands themselves.
 *
 * Placement goes through `input`/`output` only: that is where zero-copy
 * storage (tensors allocated in linear memory, passed by offset) will plug
 * in, without touching the kernels or the per-kernel glue.
 */
export class Arena {
  private readonly memory: WebAssembly.Memory;
  /** First byte of the arena: the end of the module's static data, rounded up to a cache line. */
  private readonly base: number;
  /** End of the current call's layout. */
  private top: number;
  private f32View: Float32Array;
  private f64View: Float64Array;
  private i32View: Int32Array;

  constructor(memory: WebAssembly.Memory, heapBase: number) {
    this.memory = memory;
    this.base = align64(heapBase);
    this.top = this.base;
    this.f32View = new Float32Array(memory.buffer);
    this.f64View = new Float64Array(memory.buffer);
    this.i32View = new Int32Array(memory.buffer);
  }

  /** Forget the previous call's layout: the next operand goes to the start of the arena. */
  reset(): void {
    this.top = this.base;
  }

  /** Byte offset of `bytes` of scratch (64-byte aligned, contents undefined). */
  alloc(bytes: number): number {
    const p = this.top;
    this.top = align64(p + bytes);
    if (this.top > this.memory.buffer.byteLength) this.grow(this.top);
    return p;
  }

  /** Copies src[0..n) in; returns its byte offset. */
  input(src: Float32Array, n: number): number {
    const p = this.alloc(n * 4);
    this.f32View.set(src.length === n ? src : src.subarray(0, n), p >>> 2);
    return p;
  }

  inputF64(src: Float64Array, n: number): number {
    const p = this.alloc(n * 8);
    this.f64View.set(src.length === n ? src : src.subarray(0, n), p >>> 3);
    return p;
  }

  inputI32(src: Int32Array, n: number): number {
    const p = this.alloc(n * 4);
    this.i32View.set(src.length === n ? src : src.subarray(0, n), p >>> 2);
    return p;
  }

  /** Copies n floats at byte offset p out to dst[0..n). */
  output(p: number, dst: Float32Array, n: number): void {
    dst.set(this.f32View.subarray(p >>> 2, (p >>> 2) + n));
  }

  outputF64(p: number, dst: Float64Array, n: number): void {
    dst.set(this.f64View.subarray(p >>> 3, (p >>> 3) + n));
  }

  outputI32(p: number, dst: Int32Array, n: number): void {
    dst.set(this.i32View.subarray(p >>> 2, (p >>> 2) + n));
  }

  private grow(end: number): void {
    const PAGE = 65536;
    const have = this.memory.buffer.byteLength / PAGE;
    const need = Math.ceil(end / PAGE) - have;
    // Grow by at least half again, so a slowly rising high-water mark does not grow on every call.
    const want = Math.max(need, Math.ceil(have / 2));
    try {
      this.memory.grow(want);
    } catch {
      try {
        this.memory.grow(need);
      } catch {
        throw new RangeError(
          `wasm backend: a kernel needs ${(end / 2 ** 20).toFixed(0)} MiB of scratch memory and linear memory ` +
            `cannot grow that far (wasm32 stops at 4 GiB); use smaller batches or the reference backend`,
        );
      }
    }
    // Growing detaches the old ArrayBuffer: views must be made again.
    this.f32View = new Float32Array(this.memory.buffer);
    this.f64View = new Float64Array(this.memory.buffer);
    this.i32View = new Int32Array(this.memory.buffer);
  }
}

function align64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}
