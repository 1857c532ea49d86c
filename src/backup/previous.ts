import type { Repository } from '../repo/repository.js';
import type { StoredSnapshot } from '../repo/snapshot.js';
import type { DirEntry, TreeEntry } from '../repo/tree/entry.js';
import type { ByteString } from '../repo/tree/names.js';

/** One folder of the previous snapshot, read as a stream of entries in name order. */
class Level {
  private lookahead: TreeEntry | undefined;
  private done = false;

  constructor(private readonly entries: AsyncIterator<TreeEntry> | undefined) {
    if (!entries) this.done = true;
  }

  /** The entry named `name` (names must be asked in increasing order). */
  async find(name: ByteString): Promise<TreeEntry | undefined> {
    for (;;) {
      const entry = this.lookahead ?? (await this.next());
      this.lookahead = undefined;
      if (!entry) return undefined;
      if (entry.name < name) continue;
      if (entry.name > name) {
        this.lookahead = entry;
        return undefined;
      }
      return entry;
    }
  }

  private async next(): Promise<TreeEntry | undefined> {
    if (this.done) return undefined;
    const r = await this.entries!.next();
    if (r.done) {
      this.done = true;
      return undefined;
    }
    return r.value;
  }

  async close(): Promise<void> {
    if (!this.done) await this.entries?.return?.(undefined);
    this.done = true;
  }
}

/**
 * The previous snapshot of the same source, walked alongside the new walk (both in name order), so a
 * stateless pod knows which files are unchanged without a local cache: it reads only the folders the
 * walk enters, one level per depth, never the whole snapshot.
 */
export class PreviousTree {
  private readonly levels: Level[] = [];

  private constructor(
    private readonly repo: Repository,
    readonly snapshot: StoredSnapshot,
  ) {
    this.levels.push(new Level(repo.treeEntries(snapshot.tree)));
  }

  /** The latest intact snapshot of `source`, ready to walk; undefined for a first backup. */
  static async open(repo: Repository, source: string): Promise<PreviousTree | undefined> {
    const latest = await repo.latestSnapshot(source);
    return latest && new PreviousTree(repo, latest);
  }

  /** The previous entry named `name` in the folder being walked. */
  find(name: ByteString): Promise<TreeEntry | undefined> {
    return this.levels.at(-1)!.find(name);
  }

  /** The walk enters a folder; `previous` is what the previous snapshot had at its path. */
  enter(previous: TreeEntry | undefined): void {
    this.levels.push(new Level(previous?.type === 'dir' ? this.repo.treeEntries((previous as DirEntry).tree) : undefined));
  }

  /** The walk leaves the current folder. */
  async leave(): Promise<void> {
    await this.levels.pop()?.close();
  }

  /** Stop reading. */
  async close(): Promise<void> {
    while (this.levels.length > 0) await this.leave();
  }
}
