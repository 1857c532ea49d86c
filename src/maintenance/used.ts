import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Repository } from '../repo/repository.js';
import { RecordWriter, idChars, readRecords, sortRecords } from './record-stream.js';
import { walkSnapshots, type WalkRoot, type WalkVisitor } from './walk.js';

/** Sorted files of the ids the snapshots use: blob ids, and tree ids (folders and content lists), 32 chars each. */
export interface UsedIds {
  blobs: string;
  trees: string;
  blobCount: number;
  treeCount: number;
}

/** Tag chars of the raw used-id file: blobs sort before trees. */
const BLOB = 'b';
const TREE = 't';

/**
 * "Which ids are used" (docs/ARCHITECTURE.md "Layers": the only maintenance step that reads trees):
 * walk every root, writing each blob and tree id it meets to a file, then sort it on disk into the
 * sorted, distinct lists that prune and check merge with the index. `hooks.problem` decides what an
 * unreadable tree means: prune stops (it cannot know what that tree needs), check reports and goes on.
 */
export async function collectUsed(
  repo: Repository,
  roots: readonly WalkRoot[],
  dir: string,
  hooks: Pick<WalkVisitor, 'problem' | 'root' | 'seen'>,
  options: { parallel?: number; paths?: boolean; signal?: AbortSignal } = {},
): Promise<UsedIds> {
  const raw = await RecordWriter.create(join(dir, 'used-raw'), 33);
  try {
    await walkSnapshots(
      repo,
      roots,
      {
        ...hooks,
        tree: (id) => raw.write(TREE + idChars(id)),
        part: (part) => ('id' in part ? raw.write(BLOB + idChars(part.id)) : undefined),
      },
      { tempDir: dir, ...options },
    );
    await raw.finish();
  } catch (err) {
    await raw.abort();
    throw err;
  }
  const out: UsedIds = { blobs: join(dir, 'used-blobs'), trees: join(dir, 'used-trees'), blobCount: 0, treeCount: 0 };
  const blobs = await RecordWriter.create(out.blobs, 32);
  const trees = await RecordWriter.create(out.trees, 32);
  try {
    for await (const r of sortRecords(readRecords(raw.path, 33), dir, 33, true)) {
      const writing = (r[0] === BLOB ? blobs : trees).write(r.slice(1));
      if (writing) await writing;
    }
    out.blobCount = await blobs.finish();
    out.treeCount = await trees.finish();
  } catch (err) {
    await blobs.abort();
    await trees.abort();
    throw err;
  } finally {
    await rm(raw.path, { force: true });
  }
  return out;
}
