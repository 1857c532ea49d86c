import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { newIndexName } from './index-objects.js';
import { DiskIndex } from './index/disk-index.js';
import { encodeIndexEntries, type IndexEntry } from './index/records.js';
import { Layout } from './layout.js';
import { getSealed, sealToFile } from './objects.js';
import type { Repository } from './repository.js';
import { listSnapshots } from './snapshot.js';
import { readTree } from './tree-reader.js';

/** What `repair index` did. */
export interface RepairResult {
  snapshots: number;
  chunks: number;
  removed: number;
}

/**
 * Rebuild the index from the snapshots' trees, which record where every chunk lives: index objects are
 * only a cache of that, so losing them costs deduplication, never data. The new index is stored before
 * the old objects are removed.
 */
export async function repairIndex(repo: Repository, tempDir: string): Promise<RepairResult> {
  if (repo.metaSealing.passwords.length === 0) throw new ConfigError('repair index needs the repository key: pass --credentials');
  const old: string[] = [];
  for await (const object of repo.target.list(Layout.indexDir)) old.push(object.name);
  const snapshots = await listSnapshots(repo.target, repo.unsealing);
  const work = await mkdtemp(join(tempDir, 'kbrackup-repair-'));
  const seen = await DiskIndex.build(work, []);
  let chunks = 0;
  try {
    async function* distinct(): AsyncGenerator<IndexEntry> {
      for (const snapshot of snapshots) {
        for await (const line of readTree(await getSealed(repo.target, snapshot.tree, repo.unsealing), snapshot.tree)) {
          if (line.kind !== 'chunk') continue;
          const { id, ...loc } = line.ref;
          const entry = { id: Buffer.from(id, 'hex'), loc };
          if (await seen.add(entry.id, loc)) {
            chunks++;
            yield entry;
          }
        }
      }
    }
    const path = join(work, 'index');
    const size = await sealToFile(path, encodeIndexEntries(distinct()), repo.metaSealing);
    await repo.target.put(newIndexName(), { file: path, size, consumable: true });
    for (const name of old) await repo.target.delete(name);
  } finally {
    await seen.close();
    await rm(work, { recursive: true, force: true });
  }
  return { snapshots: snapshots.length, chunks, removed: old.length };
}
