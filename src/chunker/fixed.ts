import type { Cutter } from './cutter.js';

/** Cuts every `size` bytes (brackup's chunking); content-defined chunking is FastCdc. */
export class FixedCutter implements Cutter {
  private inChunk = 0;

  constructor(private readonly size: number) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  }

  update(data: Uint8Array): { consumed: number; boundary: boolean } {
    const room = this.size - this.inChunk;
    if (data.length < room) {
      this.inChunk += data.length;
      return { consumed: data.length, boundary: false };
    }
    this.inChunk = 0;
    return { consumed: room, boundary: true };
  }

  reset(): void {
    this.inChunk = 0;
  }
}
