/**
 * The kernels module's linear memory, owned by the glue: everything past the
 * module's static data (heapBase) is handed out here in 64-byte-aligned
 * blocks, to two kinds of users —
 *
 *  - the {@link Arena}: scratch for one kernel call (operands copied in,
 *    workspaces), one block that is replaced by a larger one when a call
 *    needs more;
 *  - tensor storage (shared memory only): float32 buffers allocated right in
 *    linear memory, so kernels read and write them in place (zero-copy).
 *
 * Freed blocks go to free lists by size and are reused for the same size —
 * training repeats the same shapes, so that is exact enough — and the end of
 * the used region only rises (bump allocation), growing the memory when it
 * passes the end.
 *
 * Why storage needs shared memory: growing a private memory detaches its
 * ArrayBuffer, and every typed array over it would go dead; a shared
 * memory's SharedArrayBuffer stays valid at its old length, and the new,
 * longer one (memory.buffer after the growth) covers the same bytes.
 */
export class LinearMemory {
  readonly memory: WebAssembly.Memory;
  readonly shared: boolean;
  /** End of the used region (bytes); blocks lie in [heapBase, end). */
  private end: number;
  private readonly free = new Map<number, number[]>();
  /** Every ArrayBuffer memory.buffer has been: a view over any of them lies in linear memory. */
  private readonly buffers = new Set<ArrayBufferLike>();
  private current: ArrayBufferLike;
  /** Bytes in blocks handed out and not freed (for diagnostics and tests). */
  private used = 0;

  constructor(memory: WebAssembly.Memory, heapBase: number) {
    this.memory = memory;
    this.current = memory.buffer;
    this.shared = typeof SharedArrayBuffer !== "undefined" && this.current instanceof SharedArrayBuffer;
    this.buffers.add(this.current);
    this.end = align64(heapBase);
  }

  /** The memory's buffer as of now (a new object after every growth). */
  get buffer(): ArrayBufferLike {
    return this.current;
  }

  /** A block of `bytes` (rounded up to 64), contents undefined; returns its byte offset. */
  allocate(bytes: number): number {
    const size = align64(Math.max(bytes, 1));
    const reuse = this.free.get(size)?.pop();
    this.used += size;
    if (reuse !== undefined) return reuse;
    const p = this.end;
    this.end = p + size;
    if (this.end > this.current.byteLength) this.grow(this.end);
    return p;
  }

  /** Give back a block from allocate(bytes). */
  release(p: number, bytes: number): void {
    const size = align64(Math.max(bytes, 1));
    let list = this.free.get(size);
    if (list === undefined) this.free.set(size, (list = []));
    list.push(p);
    this.used -= size;
  }

  /** Whether `view` lies in linear memory (is one of the storages allocated here, or a view of one). */
  holds(view: ArrayBufferView): boolean {
    const b = view.buffer;
    return b === this.current || this.buffers.has(b);
  }

  /** Bytes handed out and not released. */
  bytesInUse(): number {
    return this.used;
  }

  private grow(end: number): void {
    const PAGE = 65536;
    const have = this.current.byteLength / PAGE;
    const need = Math.ceil(end / PAGE) - have;
    // Grow by at least half again, so that a slowly rising high-water mark does not grow on every call.
    const want = Math.max(need, Math.ceil(have / 2));
    try {
      this.memory.grow(want);
    } catch {
      try {
        this.memory.grow(need);
      } catch {
        throw new RangeError(
          `wasm backend: linear memory cannot grow to ${(end / 2 ** 20).toFixed(0)} MiB ` +
            `(wasm32 stops at 4 GiB, and an engine may allow less); use smaller batches or the reference backend`,
        );
      }
    }
    this.current = this.memory.buffer;
    this.buffers.add(this.current);
  }
}

export function align64(bytes: number): number {
  return Math.ceil(bytes / 64) * 64;
}
