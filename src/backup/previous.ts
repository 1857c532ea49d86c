import { IntegrityError } from '../errors.js';
import { getSealed } from '../repo/objects.js';
import type { Repository } from '../repo/repository.js';
import { latestSnapshot, type StoredSnapshot } from '../repo/snapshot.js';
import type { TreeEntry } from '../repo/tree.js';
import { readTree, type TreeLine } from '../repo/tree-reader.js';
import { ChunkList } from './chunk-list.js';
import { comparePaths } from './tree-order.js';

/** A path as the previous snapshot recorded it; for an unchanged file, its chunk lines. */
export interface PreviousEntry {
  entry: TreeEntry;
  chunks?: ChunkList;
}

/**
 * The previous snapshot of the same source, read as a stream alongside the walk (both are in tree
 * order), so a stateless pod knows which files are unchanged without a local cache or a map in memory.
 */
export class PreviousTree {
  private lookahead: TreeLine | undefined;
  private done = false;

  private constructor(
    readonly snapshot: StoredSnapshot,
    private readonly lines: AsyncIterator<TreeLine>,
    private readonly tempDir: string,
  ) {}

  /** The latest snapshot of `source`, ready to be merged with the walk; undefined for a first backup. */
  static async open(repo: Repository, source: string, tempDir: string): Promise<PreviousTree | undefined> {
    const latest = await latestSnapshot(repo.target, repo.unsealing, source);
    if (!latest) return undefined;
    const plain = await getSealed(repo.target, latest.tree, repo.unsealing);
    return new PreviousTree(latest, readTree(plain, latest.tree)[Symbol.asyncIterator](), tempDir);
  }

  /** Stop reading (the walk ended before the previous tree did). */
  async close(): Promise<void> {
    if (!this.done) await this.lines.return?.();
    this.done = true;
  }

  private async next(): Promise<TreeLine | undefined> {
    if (this.lookahead) {
      const line = this.lookahead;
      this.lookahead = undefined;
      return line;
    }
    if (this.done) return undefined;
    const r = await this.lines.next();
    if (r.done) {
      this.done = true;
      return undefined;
    }
    return r.value;
  }

  private async skipChunks(): Promise<void> {
    for (;;) {
      const line = await this.next();
      if (!line) return;
      if (line.kind === 'entry') {
        this.lookahead = line;
        return;
      }
    }
  }

  /**
   * The previous entry at `path` (paths must be asked in tree order). When `reuse(entry)` says so, the
   * file's chunk lines are collected (spilling to disk when many) so the new tree can repeat them.
   */
  async find(path: string, reuse: (entry: TreeEntry) => boolean): Promise<PreviousEntry | undefined> {
    for (;;) {
      const line = await this.next();
      if (!line) return undefined;
      if (line.kind === 'chunk') continue;
      const order = comparePaths(line.entry.path, path);
      if (order < 0) continue;
      if (order > 0) {
        this.lookahead = line;
        return undefined;
      }
      const entry = line.entry;
      if (entry.type !== 'file' || !reuse(entry)) {
        await this.skipChunks();
        return { entry };
      }
      const chunks = new ChunkList(this.tempDir);
      for (let i = 0; i < entry.chunks; i++) {
        const next = await this.next();
        if (!next || next.kind !== 'chunk') throw new IntegrityError(this.snapshot.tree, `chunk lines missing for ${entry.path}`);
        await chunks.addLine(next.line);
      }
      return { entry, chunks };
    }
  }
}
