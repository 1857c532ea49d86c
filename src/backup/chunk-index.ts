import type { BlobLocation } from '../repo/tree.js';

/** Which chunk ids the repository holds, and where. */
export interface ChunkIndex {
  /** Where the chunk with this id is stored, if anywhere. */
  lookup(id: Buffer): Promise<BlobLocation | undefined>;
  /** Record a chunk stored during this run; false when another worker recorded the same id first. */
  add(id: Buffer, location: BlobLocation): Promise<boolean>;
}
