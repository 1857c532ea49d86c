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

/** An entry on one side only: it, and for a folder everything below it, added or removed. */
async function* alone(repo: Repository, entry: TreeEntry, path: ByteString, modifier: '+' | '-'): AsyncGenerator<Change> {
  yield { path, modifier, entry };
  if (entry.type === 'dir') for await (const e of repo.treeEntries(entry.tree)) yield* alone(repo, e, childPath(path, e.name), modifier);
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
        yield* alone(repo, l, childPath(path, l.name), '-');
        continue;
      }
      if (r && (!l || r.name < l.name)) {
        await right.next();
        yield* alone(repo, r, childPath(path, r.name), '+');
        continue;
      }
      await left.next();
      await right.next();
      const p = childPath(path, r!.name);
      if (l!.type !== r!.type) {
        yield { path: p, modifier: 'T', entry: r! };
        // What was below a folder that is now something else is gone, and the reverse.
        if (l!.type === 'dir') for await (const e of repo.treeEntries(l!.tree)) yield* alone(repo, e, childPath(p, e.name), '-');
        if (r!.type === 'dir') for await (const e of repo.treeEntries(r!.tree)) yield* alone(repo, e, childPath(p, e.name), '+');
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
