import type { BlobLocation } from '../repo/tree.js';
import type { ChunkList } from './chunk-list.js';

/** Which chunk ids the repository holds, and where. */
export interface ChunkIndex {
  /** Where the chunk with this id is stored, if anywhere. */
  lookup(id: Buffer): Promise<BlobLocation | undefined>;
  /** Record a chunk stored during this run; false when another worker recorded the same id first. */
  add(id: Buffer, location: BlobLocation): Promise<boolean>;
}

/** `known` (opened on first use) that also lists every chunk this run adds, for the run's index object. */
export function recordingIndex(known: () => Promise<ChunkIndex>, added: ChunkList): ChunkIndex {
  return {
    lookup: async (id) => (await known()).lookup(id),
    add: async (id, location) => {
      const fresh = await (await known()).add(id, location);
      if (fresh) await added.add({ id: id.toString('hex'), ...location });
      return fresh;
    },
  };
}
