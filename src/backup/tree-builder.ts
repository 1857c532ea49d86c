import type { RepoSecrets } from '../crypto/kdf.js';
import type { DirEntry, TreeEntry } from '../repo/tree/entry.js';
import type { ByteString } from '../repo/tree/names.js';
import { TreeWriter, type FinishedTree } from '../repo/tree/tree-writer.js';
import type { Uploader } from './uploader.js';
import type { FileMeta } from './walker.js';

/** restic's folder counters. */
export interface DirCounts {
  dirsNew: number;
  dirsChanged: number;
  dirsUnmodified: number;
}

/** The metadata every entry takes from its lstat. */
export function baseEntry(name: ByteString, stat: FileMeta): { name: ByteString; mode: number; uid: number; gid: number; mtime: string } {
  return { name, mode: stat.mode, uid: stat.uid, gid: stat.gid, mtime: stat.mtime };
}

interface Level {
  writer: TreeWriter;
  /** The folder's own entry without its tree id (undefined for the root). */
  dir: Omit<DirEntry, 'tree'> | undefined;
  previous: TreeEntry | undefined;
}

/**
 * Builds the new snapshot's folder trees as the walk's results arrive in order: one open tree per
 * depth. A finished tree identical to the previous snapshot's (same keyed hash) is already stored and
 * costs nothing; any other goes to the upload queue at once.
 */
export class TreeBuilder {
  private readonly stack: Level[] = [];

  constructor(
    private readonly secrets: RepoSecrets,
    private readonly tempDir: string,
    private readonly uploader: Uploader,
    private readonly counts: DirCounts,
  ) {}

  /** Folders open now. */
  get depth(): number {
    return this.stack.length;
  }

  /** Start a folder (`dir` undefined for the root); `previous` is its entry in the previous snapshot. */
  open(dir: Omit<DirEntry, 'tree'> | undefined, previous: TreeEntry | undefined): void {
    this.stack.push({ writer: new TreeWriter(this.secrets, this.tempDir), dir, previous });
  }

  /** Add an entry to the folder being built. */
  add(entry: TreeEntry): Promise<void> {
    return this.stack.at(-1)!.writer.add(entry);
  }

  /** Store an object the trees reference (a long content list) unless the previous snapshot has it. */
  async store(tree: FinishedTree, previousId?: string): Promise<void> {
    if (tree.id === previousId) return;
    if ('bytes' in tree.source) await this.uploader.submitBytes(tree.name, tree.source.bytes);
    else this.uploader.submit(tree.name, { file: tree.source.file, size: tree.source.size }, 0);
  }

  /** Finish the current folder: its tree is stored (if new) and its entry added to the parent; returns the tree id. */
  async close(): Promise<string> {
    const level = this.stack.pop()!;
    const tree = await level.writer.finish();
    const previousId = level.previous?.type === 'dir' ? level.previous.tree : undefined;
    await this.store(tree, previousId);
    if (level.dir) {
      const entry: DirEntry = { ...level.dir, tree: tree.id };
      const p = level.previous;
      if (p?.type !== 'dir') this.counts.dirsNew++;
      else if (p.tree === tree.id && p.mode === entry.mode && p.mtime === entry.mtime && p.uid === entry.uid && p.gid === entry.gid) this.counts.dirsUnmodified++;
      else this.counts.dirsChanged++;
      await this.add(entry);
    }
    return tree.id;
  }

  /** Drop every open tree (on error or cancel). */
  async abort(): Promise<void> {
    for (const level of this.stack.splice(0)) await level.writer.abort();
  }
}
