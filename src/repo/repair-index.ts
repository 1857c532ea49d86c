import { encodeBlobListEnd, encodeObjectBlobs, objectBlobsOf } from './index/blob-list.js';
import { Layout, idOfName } from './layout.js';
import type { Repository } from './repository.js';

/** What `repair index` did. */
export interface RepairResult {
  objects: number;
  blobs: number;
  removed: number;
  /** Content objects whose trailer could not be read (named), left alone. */
  damaged: { object: string; error: string }[];
}

/**
 * Rebuild the index from the content objects themselves: each one ends with a trailer listing its
 * blobs (readable with the repository key alone), so losing index objects costs a rebuild, never data.
 * The new index is stored before the old objects are removed.
 */
export async function repairIndex(repo: Repository, tempDir: string): Promise<RepairResult> {
  const old = (await repo.indexObjects()).map((o) => o.name);
  const result: RepairResult = { objects: 0, blobs: 0, removed: 0, damaged: [] };
  async function* blobLists(): AsyncGenerator<Buffer> {
    for (const [dir, kind] of [
      [Layout.chunksDir, 'chunk'],
      [Layout.packsDir, 'pack'],
    ] as const) {
      for await (const object of repo.list(dir)) {
        const id = idOfName(dir, object.name);
        if (!id) continue;
        try {
          const entries = await repo.trailer(kind, id, object.size);
          if (entries.length === 0) continue;
          result.objects++;
          result.blobs += entries.length;
          yield encodeObjectBlobs(objectBlobsOf(entries));
        } catch (err) {
          result.damaged.push({ object: object.name, error: err instanceof Error ? err.message : String(err) });
        }
      }
    }
    yield encodeBlobListEnd(result.blobs);
  }
  await repo.writeIndex(blobLists(), tempDir);
  for (const name of old) await repo.delete(name);
  result.removed = old.length;
  return result;
}
