import { access, constants, mkdtemp, opendir, rm, statfs } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { ChunkThread, type ChunkThreadMode } from '../chunker/chunk-thread.js';
import { maxChunkSize } from '../chunker/spec.js';
import { formatSize } from '../util/sizes.js';
import { ConfigError, KbrackupError, TempSpaceError, describeError } from '../errors.js';
import { DiskIndex } from '../repo/index/disk-index.js';
import type { Repository } from '../repo/repository.js';
import type { Snapshot, SnapshotSummary } from '../repo/snapshot.js';
import type { DirEntry, FileEntry, TreeEntry } from '../repo/tree/entry.js';
import { withPath } from '../platform/index.js';
import { fromText, toBytes, type ByteString } from '../repo/tree/names.js';
import { ByteBudget } from '../util/byte-budget.js';
import { compileExcludes } from './exclude.js';
import { Packer } from './packer.js';
import { PreviousTree } from './previous.js';
import { Progress } from './progress.js';
import { RunIndex } from './run-index.js';
import { SessionKeys } from './session-keys.js';
import { SmallFiles } from './small-files.js';
import { storeFile, type StoreContext, type StoredFile } from './store-file.js';
import { TreeBuilder, baseEntry, type DirCounts } from './tree-builder.js';
import { Uploader } from './uploader.js';
import { kindOf, metaOf, walk, type FileMeta, type WalkEvent, type WalkItem } from './walker.js';
import { lstatPath, type Lstat } from '../platform/index.js';
import { readXattrs } from './xattrs.js';

/** What a backup run is asked to do. */
export interface BackupOptions {
  root: string;
  source: string;
  hostname: string;
  username: string;
  tags: string[];
  excludes: string[];
  tempDir: string;
  tempLimit: number;
  workers: number;
  /** Where large files are cut and hashed. */
  chunkThread: ChunkThreadMode;
  uploads: number;
  programVersion: string;
  /** Re-read every file even when the previous snapshot says it is unchanged. */
  force: boolean;
  signal: AbortSignal;
}

/** Told about problems with single paths; the run goes on (exit code 3 when `error`). */
export interface BackupObserver {
  error(path: string, during: string, err: unknown): void;
  warn(path: string, message: string): void;
}

/** The result of a run: the snapshot written, with restic's summary counters. */
export interface BackupResult {
  snapshot: Snapshot;
  summary: SnapshotSummary;
}

/** Walk events whose results may be pending at once: bounds memory while files are stored. */
const WINDOW = 384;
/** Key packets + AEAD tags + framing + trailer add well under this to a chunk or pack. */
const OVERHEAD = 64 * 1024;

/** Temp space: what one chunk and one pack in flight take, and the budget of the run. */
interface TempPlan {
  chunkReserve: number;
  packReserve: number;
  limit: number;
}

/**
 * Check the temp folder and size the temp budget; fails early when one chunk and one pack cannot fit
 * in the budget or in the folder's free space. A budget larger than the free space is cut to it, so
 * producers wait for uploads to free space instead of meeting a full disk.
 */
async function planTempSpace(repo: Repository, options: BackupOptions): Promise<TempPlan> {
  let free: number;
  try {
    await access(options.tempDir, constants.W_OK | constants.X_OK);
    const fs = await statfs(options.tempDir);
    free = fs.bavail * fs.bsize;
  } catch (err) {
    throw new ConfigError(`temp dir ${options.tempDir} is not a writable folder (${describeError(err)}); set --temp-dir / KBRACKUP_TEMP_DIR`);
  }
  const c = repo.config;
  const chunkReserve = maxChunkSize(c.chunker) + OVERHEAD;
  const packReserve = c.packSize + c.bundleSize + c.smallFile + OVERHEAD;
  const needed = chunkReserve + packReserve;
  const wanted = options.tempLimit || Math.max(needed, (options.workers + options.uploads) * chunkReserve + packReserve);
  if (wanted < needed) {
    throw new ConfigError(`--temp-limit ${formatSize(wanted)} cannot hold one chunk and one pack in flight (${formatSize(needed)}); raise it or the emptyDir sizeLimit`);
  }
  if (free < needed) {
    throw new TempSpaceError(
      options.tempDir,
      needed,
      `temp dir ${options.tempDir} has ${formatSize(free)} free, but a backup needs at least ${formatSize(needed)} there (one chunk and one pack in flight); raise the emptyDir sizeLimit or set --temp-dir to a larger folder`,
    );
  }
  return { chunkReserve, packReserve, limit: Math.min(wanted, free) };
}

/** A full temp folder (ENOSPC, EDQUOT) as the error to stop the run with: no file could be stored after it. */
function tempFull(err: unknown, tempDir: string, plan: TempPlan): TempSpaceError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return undefined;
  return new TempSpaceError(
    tempDir,
    plan.limit,
    `temp dir ${tempDir} ran out of space (${code}) while writing a temp file; this backup needs ${formatSize(plan.limit)} free there for its chunks and packs in flight, plus room for folder listings and the index; raise the emptyDir sizeLimit or lower --temp-limit`,
    { cause: err },
  );
}

/**
 * What is backed up: a folder (which must be listable: an unreadable root is a failure, never an empty
 * snapshot) or a single file.
 */
async function inspectRoot(root: string, observer: BackupObserver): Promise<Lstat> {
  let stat: Lstat;
  try {
    stat = lstatPath(Buffer.from(root));
  } catch (err) {
    throw new ConfigError(`backup PATH ${root} cannot be read (${describeError(err)})`);
  }
  const kind = kindOf(stat.mode);
  if (kind !== 'dir' && kind !== 'file') throw new ConfigError(`backup PATH ${root} is neither a folder nor a file`);
  if (kind === 'dir') {
    try {
      const dir = await opendir(root);
      const first = await dir.read();
      await dir.close();
      if (first === null) observer.warn(root, 'the folder to back up is empty (a volume that did not mount looks like this)');
    } catch (err) {
      throw new KbrackupError(`backup PATH ${root} cannot be listed (${describeError(err)}); no snapshot was written`);
    }
  }
  return stat;
}

/** Whether the previous snapshot's entry still describes the file: same size, times and inode. */
function unchanged(item: WalkItem, prev: TreeEntry | undefined): prev is FileEntry {
  return (
    prev?.type === 'file' &&
    prev.size === item.stat.size &&
    prev.mtime === item.stat.mtime &&
    prev.ctime === item.stat.ctime &&
    prev.ino === item.stat.ino
  );
}

/** Whether a file changed between the walk's lstat and a later one. */
function changedSince(before: FileMeta, after: Lstat): boolean {
  return before.size !== after.size || before.mtime !== after.mtime || before.ctime !== after.ctime;
}

/**
 * A file's entry, built as one object literal: a backup makes one per file, and spreading partial
 * objects made this the largest source of garbage after lstat.
 */
function fileEntryOf(item: WalkItem, size: number, sha256: string | undefined, content: FileEntry['content'], xattrs: FileEntry['xattrs']): FileEntry {
  const s = item.stat;
  const entry: FileEntry = { type: 'file', name: item.name, mode: s.mode, uid: s.uid, gid: s.gid, mtime: s.mtime, size, ctime: s.ctime, ino: s.ino, content };
  if (s.nlink > 1) {
    entry.links = s.nlink;
    entry.dev = s.dev;
  }
  if (sha256 !== undefined) entry.sha256 = sha256;
  if (xattrs) entry.xattrs = xattrs;
  return entry;
}

/** A step of the ordered result stream: a folder starts, an entry is (being) made, a folder ends. */
type Job =
  | { kind: 'open'; dir: Omit<DirEntry, 'tree'>; previous: TreeEntry | undefined }
  | { kind: 'entry'; entry: Promise<TreeEntry | undefined>; item?: WalkItem; settled: boolean }
  | { kind: 'close' };

/** One backup run: its budget, queues and counters, and the steps that use them. */
class BackupRun {
  readonly counts = { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirsNew: 0, dirsChanged: 0, dirsUnmodified: 0 } satisfies DirCounts & Record<string, number>;
  private readonly controller = new AbortController();
  private readonly signal: AbortSignal;
  private readonly budget: ByteBudget;
  private readonly largeSlots: ByteBudget;
  private readonly uploader: Uploader;
  private readonly index: RunIndex;
  private readonly packer: Packer;
  private readonly small: SmallFiles;
  private readonly chunker: ChunkThread;
  private readonly trees: TreeBuilder;
  private readonly store: StoreContext;
  private knownIndex: Promise<DiskIndex> | undefined;
  private dataAddedPacked = 0;
  previous: PreviousTree | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly options: BackupOptions,
    private readonly observer: BackupObserver,
    private readonly progress: Progress,
    private readonly runDir: string,
    private readonly plan: TempPlan,
  ) {
    this.signal = AbortSignal.any([options.signal, this.controller.signal]);
    this.budget = new ByteBudget(plan.limit, this.signal);
    this.largeSlots = new ByteBudget(Math.max(1, options.workers), this.signal);
    const secrets = repo.secrets;
    this.uploader = new Uploader(repo, options.uploads, this.budget, this.signal, (err) => this.fail(err), (_name, size) => {
      this.dataAddedPacked += size;
    });
    // Built on first use: a run in which no file changed never downloads or sorts the index.
    this.index = new RunIndex(() => (this.knownIndex ??= DiskIndex.buildFromRecords(runDir, repo.allIndexRecords())), runDir);
    const keys = new SessionKeys(repo.contentSealing);
    this.packer = new Packer(secrets, runDir, repo.config.packSize, repo.config.bundleSize, plan.packReserve, this.budget, this.uploader, keys, this.index);
    this.chunker = new ChunkThread({ config: repo.config.chunker, seed: secrets.chunkerSeed }, secrets.chunkIdKey, options.chunkThread);
    this.small = new SmallFiles(this.chunker, this.index, this.packer, (n) => (progress.bytesRead += n), (n) => (progress.dataAdded += n));
    this.trees = new TreeBuilder(secrets, runDir, this.uploader, this.counts);
    this.store = {
      tempDir: runDir,
      budget: this.budget,
      chunkReserve: plan.chunkReserve,
      smallFile: repo.config.smallFile,
      uploader: this.uploader,
      packer: this.packer,
      keys,
      index: this.index,
      secrets,
      chunker: this.chunker,
      signal: this.signal,
      onRead: (n) => (progress.bytesRead += n),
      onAdded: (n) => (progress.dataAdded += n),
    };
  }

  /** The first failure stops every stage at its next step. */
  private fail(err: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(err);
  }

  /** The walk as events; a single-file root is a folder of one entry. */
  private events(rootStat: Lstat): AsyncIterable<WalkEvent> {
    const root = fromText(this.options.root);
    if (kindOf(rootStat.mode) === 'dir') {
      return walk(root, this.runDir, compileExcludes(this.options.excludes), ({ path, error }) => this.fileError(path, 'scan', error));
    }
    const name = fromText(basename(this.options.root));
    return (async function* () {
      yield { kind: 'item', item: { path: name, name, absolute: root, stat: metaOf(rootStat), kind: 'file' } } as WalkEvent;
      yield { kind: 'end', path: '' } as WalkEvent;
    })();
  }

  /** Report one path's trouble; a full temp folder is no trouble of one file and stops the run. */
  private fileError(path: ByteString, during: string, err: unknown): void {
    const full = tempFull(err, this.options.tempDir, this.plan);
    if (full) throw full;
    this.progress.errors++;
    this.observer.error(Buffer.from(path, 'latin1').toString('utf8'), during, err);
  }

  /** Walk, store and build the trees; returns the root tree's id. Results are consumed in walk order. */
  async walkAndStore(rootStat: Lstat): Promise<string> {
    const window: Job[] = [];
    const prevRoot = this.previous ? ({ type: 'dir', tree: this.previous.snapshot.tree } as TreeEntry) : undefined;
    this.trees.open(undefined, prevRoot);
    let rootId: string | undefined;
    const consume = async (job: Job): Promise<void> => {
      if (job.kind === 'open') this.trees.open(job.dir, job.previous);
      else if (job.kind === 'close') {
        const id = await this.trees.close();
        if (this.trees.depth === 0) rootId = id;
      } else {
        // A small file's batch may still be gathering: send it now rather than wait for it to fill.
        if (!job.settled && job.item && this.small.isQueued(job.item)) void this.small.flush().catch(() => undefined);
        const entry = await job.entry;
        if (entry) await this.trees.add(entry);
      }
    };
    for await (const event of this.events(rootStat)) {
      this.signal.throwIfAborted();
      if (event.kind === 'end') {
        if (event.path !== '') await this.previous?.leave();
        window.push({ kind: 'close' });
      } else {
        const job = await this.dispatch(event.item);
        if (job) window.push(job);
      }
      while (window.length >= WINDOW) await consume(window.shift()!);
    }
    while (window.length > 0) await consume(window.shift()!);
    return rootId!;
  }

  /** The item's extended attributes, read by path (a failure to read them is reported). */
  private xattrs(item: WalkItem): { xattrs?: [Buffer, Buffer][] } {
    try {
      const xattrs = readXattrs(item.absolute);
      return xattrs ? { xattrs } : {};
    } catch (err) {
      this.fileError(item.path, 'xattrs', err);
      return {};
    }
  }

  /** Start the work for one walk item. */
  private async dispatch(item: WalkItem): Promise<Job | undefined> {
    const prev = await this.previous?.find(item.name);
    const base = { ...baseEntry(item.name, item.stat), ...(item.kind === 'dir' || item.kind === 'symlink' ? this.xattrs(item) : {}) };
    switch (item.kind) {
      case 'dir':
        this.previous?.enter(prev);
        return { kind: 'open', dir: { type: 'dir', ...base }, previous: prev };
      case 'symlink':
        return { kind: 'entry', entry: Promise.resolve({ type: 'symlink', ...base, linkTarget: item.linkTarget ?? '' }), settled: true };
      case 'special':
        this.observer.warn(Buffer.from(item.path, 'latin1').toString('utf8'), 'skipped: sockets, devices and fifos are not backed up');
        return undefined;
      case 'file': {
        const job: Job & { kind: 'entry' } = { kind: 'entry', entry: this.fileEntry(item, prev), item, settled: false };
        job.entry.then(
          () => (job.settled = true),
          () => (job.settled = true),
        );
        return job;
      }
    }
  }

  /** The entry of a file: reused from the previous snapshot when unchanged, else stored. */
  private async fileEntry(item: WalkItem, prev: TreeEntry | undefined): Promise<FileEntry | undefined> {
    if (!this.options.force && unchanged(item, prev)) {
      // Unchanged since the previous snapshot: its content is reused and no byte is read.
      this.counts.filesUnmodified++;
      this.progress.filesDone++;
      this.progress.bytesDone += prev.size;
      return fileEntryOf(item, prev.size, prev.sha256, prev.content, prev.xattrs);
    }
    const changed = prev?.type === 'file';
    try {
      const stored = await this.storeContent(item, changed);
      if (changed) this.counts.filesChanged++;
      else this.counts.filesNew++;
      this.progress.filesDone++;
      this.progress.bytesDone += stored.size;
      return fileEntryOf(item, stored.size, stored.sha256, stored.content, stored.xattrs);
    } catch (err) {
      if (this.signal.aborted || err instanceof KbrackupError) throw err;
      this.fileError(item.path, 'archival', err);
      return undefined;
    }
  }

  /** Store a file's bytes: small ones in batches, large ones chunked, a few at a time. */
  private async storeContent(item: WalkItem, changed: boolean): Promise<StoredFile & { xattrs?: [Buffer, Buffer][] }> {
    if (item.stat.size < this.repo.config.smallFile) {
      const r = await this.small.add(item);
      if (!('grew' in r)) {
        if (r.changed) this.fileError(item.path, 'archival', new Error('file changed while it was being backed up; stored as read'));
        return r;
      }
    }
    const xattrs = this.xattrs(item);
    return this.largeSlots.with(1, async () => {
      this.signal.throwIfAborted();
      const shown = Buffer.from(item.path, 'latin1').toString('utf8');
      this.progress.current.add(shown);
      try {
        const stored = await storeFile(this.store, item.absolute, item.stat, changed);
        if (stored.list) await this.trees.store(stored.list);
        let after: Lstat | undefined;
        try {
          after = withPath(toBytes(item.absolute), (p) => lstatPath(p));
        } catch {
          after = undefined;
        }
        if (!after || changedSince(item.stat, after) || stored.size !== item.stat.size) {
          this.fileError(item.path, 'archival', new Error('file changed while it was being backed up; stored as read'));
        }
        return { ...stored, ...xattrs };
      } finally {
        this.progress.current.delete(shown);
      }
    });
  }

  /** Store the rest in crash-safe order: data and trees, then the index, then the snapshot that makes them visible. */
  async finish(rootTree: string, started: Date): Promise<BackupResult> {
    await this.small.flush();
    await this.packer.flush();
    await this.uploader.drain();
    await this.index.write(this.repo, this.runDir);
    const ended = new Date();
    const c = this.counts;
    const summary: SnapshotSummary = {
      backup_start: started.toISOString(),
      backup_end: ended.toISOString(),
      files_new: c.filesNew,
      files_changed: c.filesChanged,
      files_unmodified: c.filesUnmodified,
      dirs_new: c.dirsNew,
      dirs_changed: c.dirsChanged,
      dirs_unmodified: c.dirsUnmodified,
      data_added: this.progress.dataAdded,
      data_added_packed: this.dataAddedPacked,
      total_files_processed: this.progress.filesDone,
      total_bytes_processed: this.progress.bytesDone,
      bytes_read: this.progress.bytesRead,
      error_count: this.progress.errors,
    };
    const snapshot: Snapshot = {
      id: randomBytes(32).toString('hex'),
      time: started.toISOString(),
      source: this.options.source,
      paths: [this.options.root],
      hostname: this.options.hostname,
      username: this.options.username,
      tags: this.options.tags,
      ...(this.previous ? { parent: this.previous.snapshot.id } : {}),
      program_version: this.options.programVersion,
      tree: rootTree,
      summary,
    };
    await this.repo.writeSnapshot(snapshot);
    return { snapshot, summary };
  }

  /** Stop everything and release what the run holds; safe after success or failure. */
  async close(failed: boolean): Promise<void> {
    if (failed) {
      this.fail(new KbrackupError('backup stopped'));
      await this.small.flush().catch(() => undefined);
      await this.packer.abort().catch(() => undefined);
      await this.trees.abort().catch(() => undefined);
      await this.uploader.settle();
    }
    await this.chunker.close();
    await this.previous?.close().catch(() => undefined);
    await (await this.knownIndex?.catch(() => undefined))?.close();
  }
}

/** Back up one folder (or file) into the repository and write a snapshot of it. */
export async function runBackup(repo: Repository, options: BackupOptions, observer: BackupObserver, progress: Progress = new Progress()): Promise<BackupResult> {
  const rootStat = await inspectRoot(options.root, observer);
  const plan = await planTempSpace(repo, options);
  const runDir = await mkdtemp(join(options.tempDir, 'kbrackup-'));
  const started = new Date();
  const run = new BackupRun(repo, options, observer, progress, runDir, plan);
  let failed = true;
  try {
    run.previous = await PreviousTree.open(repo, options.source);
    const root = await run.walkAndStore(rootStat);
    const result = await run.finish(root, started);
    failed = false;
    return result;
  } catch (err) {
    throw tempFull(err, options.tempDir, plan) ?? err;
  } finally {
    await run.close(failed);
    await rm(runDir, { recursive: true, force: true });
  }
}
