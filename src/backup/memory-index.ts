import type { BlobLocation } from '../repo/tree.js';
import type { ChunkIndex } from './chunk-index.js';

/** A chunk index held in a Map: only for small repositories and tests. */
export class MemoryIndex implements ChunkIndex {
  private readonly map = new Map<string, BlobLocation>();

  async lookup(id: Buffer): Promise<BlobLocation | undefined> {
    return this.map.get(id.toString('hex'));
  }

  async add(id: Buffer, location: BlobLocation): Promise<void> {
    this.map.set(id.toString('hex'), location);
  }

  async close(): Promise<void> {
    this.map.clear();
  }
}
