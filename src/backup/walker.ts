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
    for (const name of names) {
      const childPath = path === '' ? name : `${path}/${name}`;
      if (excluded(childPath)) continue;
      const childAbs = join(absolute, name);
      let item: WalkItem;
      try {
        const stat = await lstat(childAbs, { bigint: true });
        item = { path: childPath, absolute: childAbs, stat, kind: kindOf(stat) };
        if (item.kind === 'symlink') item.linkTarget = await readlink(childAbs);
      } catch (error) {
        onError({ path: childPath, error });
        continue;
      }
      yield item;
      if (item.kind === 'dir') yield* visit(childAbs, childPath);
    }
  }
  yield* visit(root, '');
}
