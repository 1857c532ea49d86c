import type { Repository } from '../repo/repository.js';
import { Layout } from '../repo/layout.js';
import type { TreeEntry } from '../repo/tree/entry.js';
import { childPath, type ByteString } from '../repo/tree/names.js';

/** An entry of the snapshot with its path (relative to the snapshot root). */
export interface SnapshotItem {
  path: ByteString;
  entry: TreeEntry;
  /** The tree object the entry came from, for messages. */
  tree: string;
}

/** Which paths a restore (or listing) takes: everything, or what lies at or below the includes. */
export class Selection {
  constructor(private readonly includes: ByteString[]) {}

  /** True when nothing narrows the selection. */
  get all(): boolean {
    return this.includes.length === 0;
  }

  /** Whether `path` is selected (at or below an include). */
  takes(path: ByteString): boolean {
    return this.all || this.includes.some((inc) => path === inc || path.startsWith(`${inc}/`));
  }

  /** Whether `path` is a folder on the way to an include (so it is entered and restored too). */
  leadsTo(path: ByteString): boolean {
    return this.includes.some((inc) => inc.startsWith(`${path}/`));
  }
}

/**
 * The snapshot's entries depth-first, a folder before its contents, reading only the folders the
 * selection needs (the ones on the way to an include, and those below it).
 */
export async function* walkSnapshot(repo: Repository, rootTree: string, selection: Selection): AsyncGenerator<SnapshotItem> {
  async function* visit(tree: string, path: ByteString): AsyncGenerator<SnapshotItem> {
    for await (const entry of repo.treeEntries(tree)) {
      const p = childPath(path, entry.name);
      const taken = selection.takes(p);
      if (!taken && !(entry.type === 'dir' && selection.leadsTo(p))) continue;
      yield { path: p, entry, tree: Layout.tree(tree) };
      if (entry.type === 'dir') yield* visit(entry.tree, p);
    }
  }
  yield* visit(rootTree, '');
}
