import type { Repository } from '../repo/repository.js';
import type { FileEntry, TreeEntry } from '../repo/tree/entry.js';
import { childPath, type ByteString } from '../repo/tree/names.js';
import { Cursor } from './record-stream.js';

/** restic's change letters: added, removed, content modified, type changed, metadata (only) updated. */
export type Modifier = '+' | '-' | 'M' | 'T' | 'U';

/** One changed path (bytes, relative to the snapshot root) and how it changed. */
export interface Change {
  path: ByteString;
  modifier: Modifier;
  entry: TreeEntry;
}

/** Whether two file entries hold the same bytes: same parts (or the same content list) and size. */
function sameContent(a: FileEntry, b: FileEntry): boolean {
  if (a.size !== b.size || a.sha256 !== b.sha256) return false;
  if ('list' in a.content || 'list' in b.content) return 'list' in a.content && 'list' in b.content && a.content.list === b.content.list;
  const pa = a.content.parts;
  const pb = (b.content as { parts: typeof pa }).parts;
  return pa.length === pb.length && pa.every((p, i) => JSON.stringify(p) === JSON.stringify(pb[i]));
}

/** Whether an entry's own metadata (not its content) differs. */
function sameMetadata(a: TreeEntry, b: TreeEntry): boolean {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.mtime !== b.mtime) return false;
  if (a.type === 'symlink' && b.type === 'symlink' && a.linkTarget !== b.linkTarget) return false;
  const xa = (a.xattrs ?? []).map(([n, v]) => `${n.toString('base64')}=${v.toString('base64')}`).join(',');
  const xb = (b.xattrs ?? []).map(([n, v]) => `${n.toString('base64')}=${v.toString('base64')}`).join(',');
  return xa === xb;
}

/** Everything below a folder that was added or removed as a whole. */
async function* whole(repo: Repository, tree: string, path: ByteString, modifier: '+' | '-'): AsyncGenerator<Change> {
  for await (const e of repo.treeEntries(tree)) {
    const p = childPath(path, e.name);
    yield { path: p, modifier, entry: e };
    if (e.type === 'dir') yield* whole(repo, e.tree, p, modifier);
  }
}

/**
 * The changes from tree `a` to tree `b` (restic's `diff`), in path order: both folders' entries are
 * merged by name as they stream; a folder whose tree id is the same on both sides is the same folder
 * (trees are named by their content) and is not read at all.
 */
export async function* diffTrees(repo: Repository, a: string, b: string, path: ByteString = ''): AsyncGenerator<Change> {
  if (a === b) return;
  const left = new Cursor(repo.treeEntries(a)[Symbol.asyncIterator]());
  const right = new Cursor(repo.treeEntries(b)[Symbol.asyncIterator]());
  try {
    for (;;) {
      const l = await left.peek();
      const r = await right.peek();
      if (!l && !r) return;
      if (l && (!r || l.name < r.name)) {
        await left.next();
        const p = childPath(path, l.name);
        yield { path: p, modifier: '-', entry: l };
        if (l.type === 'dir') yield* whole(repo, l.tree, p, '-');
        continue;
      }
      if (r && (!l || r.name < l.name)) {
        await right.next();
        const p = childPath(path, r.name);
        yield { path: p, modifier: '+', entry: r };
        if (r.type === 'dir') yield* whole(repo, r.tree, p, '+');
        continue;
      }
      await left.next();
      await right.next();
      const p = childPath(path, r!.name);
      if (l!.type !== r!.type) {
        yield { path: p, modifier: 'T', entry: r! };
        if (l!.type === 'dir') yield* whole(repo, l!.tree, p, '-');
        if (r!.type === 'dir') yield* whole(repo, r!.tree, p, '+');
        continue;
      }
      if (l!.type === 'file' && r!.type === 'file' && !sameContent(l!, r!)) yield { path: p, modifier: 'M', entry: r! };
      else if (!sameMetadata(l!, r!)) yield { path: p, modifier: 'U', entry: r! };
      if (l!.type === 'dir' && r!.type === 'dir') yield* diffTrees(repo, l!.tree, r!.tree, p);
    }
  } finally {
    await left.close();
    await right.close();
  }
}
