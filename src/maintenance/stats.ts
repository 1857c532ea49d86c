import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Repository } from '../repo/repository.js';
import type { StoredSnapshot } from '../repo/snapshot.js';
import { IdSet } from './id-set.js';
import { bundlesOf, chooseCopies, existingCopies, groupByObject, listContent, listTrees, rankedIndexObjects, sortByObject, treesWithUse } from './inventory.js';
import { CHOSEN, Loc, USED } from './locations.js';
import { collectUsed } from './used.js';

/** restic's `stats --mode restore-size`: what restoring the snapshots would write. */
export interface RestoreSizeStats {
  total_size: number;
  total_file_count: number;
  snapshots_count: number;
}

/** restic's `stats --mode raw-data`: what the snapshots' data takes in the repository. */
export interface RawDataStats {
  /** Stored bytes: the bundles holding the snapshots' blobs (a bundle is stored whole) and their trees. */
  total_size: number;
  /** The used blobs' bytes before compression and encryption. */
  total_uncompressed_size: number;
  /** Distinct blobs and trees. */
  total_blob_count: number;
  total_tree_count: number;
  /** Plaintext to stored bytes of the bundles counted (a bundle is compressed as a whole). */
  compression_ratio: number;
  compression_space_saving: number;
  snapshots_count: number;
}

/**
 * Every entry of each snapshot counts (restic: files, folders and symlinks), and file sizes add up, a
 * hard-linked file once per snapshot (its device and inode, kept on disk). Each snapshot is walked
 * whole: a restore of each writes everything.
 */
export async function restoreSize(repo: Repository, snapshots: readonly StoredSnapshot[], tempDir: string, signal?: AbortSignal): Promise<RestoreSizeStats> {
  const stats: RestoreSizeStats = { total_size: 0, total_file_count: 0, snapshots_count: snapshots.length };
  for (const s of snapshots) {
    const links = await IdSet.create(tempDir);
    try {
      const visit = async (tree: string): Promise<void> => {
        signal?.throwIfAborted();
        for await (const e of repo.treeEntries(tree)) {
          stats.total_file_count++;
          if (e.type === 'dir') await visit(e.tree);
          else if (e.type === 'file') {
            const once = e.links === undefined || e.links <= 1 || (await links.add(createHash('sha256').update(`${e.dev}:${e.ino}`).digest()));
            if (once) stats.total_size += e.size;
          }
        }
      };
      await visit(s.tree);
    } finally {
      await links.close();
    }
  }
  return stats;
}

/**
 * The distinct blobs the snapshots use, measured where they are stored: each bundle that holds a used
 * blob's chosen copy counts once with its stored length, each used tree with its object's size.
 */
export async function rawData(repo: Repository, snapshots: readonly StoredSnapshot[], tempDir: string, signal?: AbortSignal): Promise<RawDataStats> {
  const work = await mkdtemp(join(tempDir, 'kbrackup-stats-'));
  try {
    const used = await collectUsed(
      repo,
      snapshots.map((s) => ({ object: s.object, tree: s.tree })),
      work,
      {
        problem: (_object, err) => {
          throw err;
        },
      },
      { signal },
    );
    const content = await listContent(repo, work);
    const ranked = await rankedIndexObjects(repo);
    const copies = existingCopies(
      repo,
      ranked,
      content,
      work,
      (_object, err) => {
        throw err;
      },
      () => undefined,
    );
    const stats: RawDataStats = { total_size: 0, total_uncompressed_size: 0, total_blob_count: 0, total_tree_count: used.treeCount, compression_ratio: 0, compression_space_saving: 0, snapshots_count: snapshots.length };
    // Bundles are compressed and stored whole: their stored and plaintext bytes give the compression.
    let bundleBytes = 0;
    let bundleRaw = 0;
    const chosen = chooseCopies(copies, used.blobs, work, () => undefined);
    for await (const g of groupByObject(sortByObject(chosen, work), content.path)) {
      for (const r of g.records) {
        if ((Loc.flags(r) & (CHOSEN | USED)) !== (CHOSEN | USED)) continue;
        stats.total_blob_count++;
        stats.total_uncompressed_size += Loc.rawLength(r);
      }
      for (const b of bundlesOf(g)) {
        if (!b.live) continue;
        bundleBytes += b.length;
        const raw = new Map<number, number>();
        for (const r of g.records.range(b.first, b.end)) raw.set(Loc.blobOffset(r), Loc.rawLength(r));
        for (const n of raw.values()) bundleRaw += n;
      }
    }
    stats.total_size = bundleBytes + (await usedTreeBytes(repo, used.trees, work));
    stats.total_blob_count += used.treeCount;
    if (bundleBytes > 0) stats.compression_ratio = bundleRaw / bundleBytes;
    if (bundleRaw > 0) stats.compression_space_saving = (1 - bundleBytes / bundleRaw) * 100;
    return stats;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Stored bytes of the used trees. */
async function usedTreeBytes(repo: Repository, usedTrees: string, work: string): Promise<number> {
  let bytes = 0;
  for await (const t of treesWithUse(await listTrees(repo, work), usedTrees)) if (t.used) bytes += t.size;
  return bytes;
}
