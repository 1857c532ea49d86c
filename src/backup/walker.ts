import { lstat, opendir, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';

/** What the walker found at a path (relative to the backup root, `/`-separated). */
export interface WalkItem {
  path: string;
  absolute: string;
  stat: BigIntStats;
  kind: 'dir' | 'file' | 'symlink' | 'special';
  linkTarget?: string;
}

/** A path that could not be read; the backup goes on and ends with exit code 3. */
export interface WalkError {
  path: string;
  error: unknown;
}

/** lstat calls in flight per folder. */
const STAT_BATCH = 32;

function kindOf(stat: BigIntStats): WalkItem['kind'] {
  if (stat.isDirectory()) return 'dir';
  if (stat.isFile()) return 'file';
  if (stat.isSymbolicLink()) return 'symlink';
  return 'special';
}

/**
 * Depth-first, names in byte order, so every run lists a tree in the same order and a previous
 * snapshot can be merged against it as a stream. Holds one directory listing per level, never the tree.
 */
export async function* walk(root: string, excluded: (path: string) => boolean, onError: (e: WalkError) => void): AsyncGenerator<WalkItem> {
  async function* visit(absolute: string, path: string): AsyncGenerator<WalkItem> {
    let names: string[];
    try {
      names = [];
      for await (const entry of await opendir(absolute, { bufferSize: 128 })) names.push(entry.name);
    } catch (error) {
      onError({ path, error });
      return;
    }
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const included = names.map((name) => ({ name, path: path === '' ? name : `${path}/${name}` })).filter((c) => !excluded(c.path));
    // A batch of lstat calls at a time: with a cold cache each waits on the disk, and the thread pool serves several.
    for (let i = 0; i < included.length; i += STAT_BATCH) {
      const batch = await Promise.all(included.slice(i, i + STAT_BATCH).map((c) => inspect(join(absolute, c.name), c.path)));
      for (const item of batch) {
        if (!item) continue;
        yield item;
        if (item.kind === 'dir') yield* visit(item.absolute, item.path);
      }
    }
  }
  async function inspect(absolute: string, path: string): Promise<WalkItem | undefined> {
    try {
      const stat = await lstat(absolute, { bigint: true });
      const item: WalkItem = { path, absolute, stat, kind: kindOf(stat) };
      if (item.kind === 'symlink') item.linkTarget = await readlink(absolute);
      return item;
    } catch (error) {
      onError({ path, error });
      return undefined;
    }
  }
  yield* visit(root, '');
}
