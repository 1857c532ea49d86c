import { Layout } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import type { ContentPart, FileEntry, TreeEntry } from '../repo/tree/entry.js';
import { childPath, type ByteString } from '../repo/tree/names.js';
import { IdSet } from './id-set.js';

/** A snapshot's root, as the walk starts from it. */
export interface WalkRoot {
  /** The snapshot's object name, for messages. */
  object: string;
  tree: string;
}

/**
 * What a walk reports. Trees (folders and content lists, both in trees/) are content-addressed and
 * shared by many snapshots, so each is read once: a tree reached again is only `seen`. Callbacks may
 * run interleaved (subtrees are read a few at a time).
 */
export interface WalkVisitor {
  /** A snapshot's walk starts (roots are walked one after another). */
  root?(root: WalkRoot): void;
  /** A folder tree or content list reached for the first time; `chain` is the tree ids from the root down to it. */
  tree?(id: string, chain: readonly string[]): void | Promise<void>;
  /** A tree reached again (read before, or failed before). */
  seen?(id: string, chain: readonly string[]): void;
  /** An entry of a folder; `path` is its path in the snapshot when the walk tracks paths, else ''. */
  entry?(entry: TreeEntry, path: ByteString): void | Promise<void>;
  /** One part of a file's content. */
  part?(part: ContentPart, file: FileEntry, path: ByteString, chain: readonly string[]): void | Promise<void>;
  /** A tree or list object could not be read (missing, damaged): rethrow to stop the walk, return to go on without it. */
  problem(object: string, err: unknown, chain: readonly string[], path: ByteString): void;
}

/** How a walk runs. */
export interface WalkOptions {
  /** Folders for the on-disk set of trees already read. */
  tempDir: string;
  /** Trees read at once (each holds at most one tree object's plaintext); default 4. */
  parallel?: number;
  /** Compute each entry's path (costs a string per entry). */
  paths?: boolean;
  signal?: AbortSignal;
}

/**
 * Visit every tree and file part of the snapshots' roots, each tree once however many snapshots share
 * it; the set of trees already read lives on disk (id-set.ts), so memory does not grow
 * with the repository. Roots are walked one after another, so when a snapshot meets a tree another
 * snapshot read, that tree's walk (and what the visitor learnt from it) is complete.
 */
export async function walkSnapshots(repo: Repository, roots: readonly WalkRoot[], visitor: WalkVisitor, options: WalkOptions): Promise<void> {
  const visited = await IdSet.create(options.tempDir);
  try {
    const walk = new Walk(repo, visitor, visited, options);
    for (const root of roots) await walk.root(root);
  } finally {
    await visited.close();
  }
}

class Walk {
  private inFlight = 0;
  private readonly spawned = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private readonly parallel: number;

  constructor(
    private readonly repo: Repository,
    private readonly visitor: WalkVisitor,
    private readonly visited: IdSet,
    private readonly options: WalkOptions,
  ) {
    this.parallel = Math.max(1, options.parallel ?? 4);
  }

  async root(root: WalkRoot): Promise<void> {
    this.visitor.root?.(root);
    await this.tree(root.tree, [root.tree], '');
    while (this.spawned.size > 0) await Promise.all([...this.spawned]);
    if (this.failure) throw this.failure.error;
  }

  /** Whether `id` is new to this walk (and now marked as read). */
  private first(id: string): Promise<boolean> {
    return this.visited.add(Buffer.from(id, 'hex'));
  }

  private check(): void {
    if (this.failure) throw this.failure.error;
    this.options.signal?.throwIfAborted();
  }

  /** Walk a subtree beside this one when a slot is free, else right here (which bounds what is open at once). */
  private async child(id: string, chain: readonly string[], path: ByteString): Promise<void> {
    if (this.inFlight >= this.parallel) return this.tree(id, chain, path);
    this.inFlight++;
    const job = this.tree(id, chain, path)
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => {
        this.inFlight--;
        this.spawned.delete(job);
      });
    this.spawned.add(job);
  }

  private async tree(id: string, chain: readonly string[], path: ByteString): Promise<void> {
    this.check();
    if (!(await this.first(id))) {
      this.visitor.seen?.(id, chain);
      return;
    }
    await this.visitor.tree?.(id, chain);
    await readEach(
      this.repo.treeEntries(id),
      (err) => this.visitor.problem(Layout.tree(id), err, chain, path),
      async (e: TreeEntry) => {
        const p = this.options.paths ? childPath(path, e.name) : '';
        await this.visitor.entry?.(e, p);
        if (e.type === 'dir') await this.child(e.tree, [...chain, e.tree], p);
        else if (e.type === 'file') await this.file(e, chain, p);
      },
    );
  }

  private async file(e: FileEntry, chain: readonly string[], path: ByteString): Promise<void> {
    let inner = chain;
    if ('list' in e.content) {
      if (!(await this.first(e.content.list))) {
        this.visitor.seen?.(e.content.list, [...chain, e.content.list]);
        return;
      }
      inner = [...chain, e.content.list];
      await this.visitor.tree?.(e.content.list, inner);
    }
    const part = this.visitor.part;
    if (!part) return;
    await readEach(
      this.repo.contentParts(e),
      (err) => this.visitor.problem('list' in e.content ? Layout.tree(e.content.list) : Layout.tree(chain.at(-1)!), err, inner, path),
      (p: ContentPart) => part(p, e, path, inner),
    );
  }
}

/**
 * Hand each item of `items` to `each`. An error while reading an item (a missing or damaged object)
 * goes to `failed` and ends the loop; one thrown by `each` (a subtree's, a stop) passes through, so
 * it is never taken for a problem of this object.
 */
async function readEach<T>(items: AsyncIterable<T>, failed: (err: unknown) => void, each: (item: T) => void | Promise<void>): Promise<void> {
  const it = items[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<T>;
    try {
      next = await it.next();
    } catch (err) {
      failed(err);
      return;
    }
    if (next.done) return;
    await each(next.value);
  }
}
