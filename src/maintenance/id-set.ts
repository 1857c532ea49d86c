import { DiskIndex } from '../repo/index/disk-index.js';
import type { BlobLocation } from '../repo/index/records.js';

/** The set's records need a location; its ids have none, so every id gets this one. */
const NOWHERE: BlobLocation = { kind: 'pack', objectId: '0'.repeat(64), keyOffset: 0, bundleOffset: 0, bundleLength: 0, blobOffset: 0, rawLength: 0 };

/**
 * An exact set of 32-byte ids on disk (the chunk index of repo/index/disk-index.ts without locations),
 * a few MiB of memory for any number of ids: trees already walked, hard links already counted.
 */
export class IdSet {
  private constructor(private readonly index: DiskIndex) {}

  /** An empty set with its files in a new folder under `tempDir`. */
  static async create(tempDir: string): Promise<IdSet> {
    return new IdSet(await DiskIndex.build(tempDir, []));
  }

  /** Add `id`; resolves to false when it was there already. Safe to call several at once. */
  add(id: Buffer): Promise<boolean> {
    return this.index.add(id, NOWHERE);
  }

  /** Delete the set's files. */
  close(): Promise<void> {
    return this.index.close();
  }
}
