import { access, constants, lstat, mkdtemp, rm } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { ChunkThread, type ChunkThreadMode } from '../chunker/chunk-thread.js';
import { maxChunkSize } from '../chunker/spec.js';
import { formatSize } from '../config/sizes.js';
import { ConfigError, KbrackupError, describeError } from '../errors.js';
import { newIndexName, readIndexObjects } from '../repo/index-objects.js';
import { DiskIndex } from '../repo/index/disk-index.js';
import { encodeIndexEntries } from '../repo/index/records.js';
import { sealToFile } from '../repo/objects.js';
import { parseChunkLine } from '../repo/tree-reader.js';
import { batchLines } from '../util/batch-lines.js';
import { Layout } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { writeSnapshot, type Snapshot, type SnapshotSummary } from '../repo/snapshot.js';
import type { FileEntry, TreeEntry } from '../repo/tree.js';
import { ByteBudget, Limiter } from './budget.js';
import { recordingIndex } from './chunk-index.js';
import { ChunkList } from './chunk-list.js';
import { compileExcludes } from './exclude.js';
import { PreviousTree, type PreviousEntry } from './previous.js';
import { Packer } from './packer.js';
import { Progress } from './progress.js';
import { SessionKeys } from './session-keys.js';
import { storeFile, type StoreContext, type StoredFile } from './store-file.js';
import { Uploader } from './uploader.js';
import { walk, type WalkItem } from './walker.js';

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

/** Entries dispatched ahead of the one being written to the tree: bounds memory while workers run. */
const WINDOW = 64;
/** Key packets + AEAD tags + framing add well under this to a chunk. */
const OVERHEAD = 64 * 1024;

async function checkTempDir(dir: string): Promise<void> {
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new ConfigError(`temp dir ${dir} is not a writable folder (${describeError(err)}); set --temp-dir / KBRACKUP_TEMP_DIR`);
  }
}

async function statRoot(root: string): Promise<BigIntStats> {
  try {
    const stat = await lstat(root, { bigint: true });
    if (!stat.isDirectory() && !stat.isFile()) throw new ConfigError(`backup PATH ${root} is neither a folder nor a file`);
    return stat;
  } catch (err) {
    if (err instanceof KbrackupError) throw err;
    throw new ConfigError(`backup PATH ${root} cannot be read (${describeError(err)})`);
  }
}

function baseEntry(path: string, stat: BigIntStats): { path: string; mode: number; uid: number; gid: number; mtime: string } {
  return { path, mode: Number(stat.mode & 0o7777n), uid: Number(stat.uid), gid: Number(stat.gid), mtime: stat.mtimeNs.toString() };
}

function changedSince(before: BigIntStats, after: BigIntStats): boolean {
  return before.size !== after.size || before.mtimeNs !== after.mtimeNs || before.ctimeNs !== after.ctimeNs;
}

/** Back up one folder (or file) into the repository and write a snapshot of it. */
export async function runBackup(repo: Repository, options: BackupOptions, observer: BackupObserver, progress: Progress): Promise<BackupResult> {
  const secrets = repo.secrets;
  if (!secrets) throw new ConfigError('backup needs the repository key: pass --credentials (or --passphrase-file for a passphrase repository)');
  const rootStat = await statRoot(options.root);
  await checkTempDir(options.tempDir);
  const chunkReserve = maxChunkSize(repo.config.chunker) + OVERHEAD;
  const packReserve = repo.config.packSize + repo.config.smallFile + OVERHEAD;
  const needed = chunkReserve + packReserve;
  const limit = options.tempLimit || Math.max(needed, (options.workers + options.uploads) * chunkReserve + packReserve);
  if (limit < needed) {
    throw new ConfigError(`--temp-limit ${formatSize(limit)} cannot hold one chunk and one pack in flight (${formatSize(needed)}); raise it or the emptyDir sizeLimit`);
  }
  const runDir = await mkdtemp(join(options.tempDir, 'kbrackup-'));
  const started = new Date();
  const added = new ChunkList(runDir);
  let index: Promise<DiskIndex> | undefined;
  let previous: PreviousTree | undefined;
  const chunker = new ChunkThread({ config: repo.config.chunker, seed: secrets.chunkerSeed }, secrets.chunkIdKey, options.chunkThread);
  try {
    // Built on first use: a run in which no file changed never downloads or sorts the index.
    const known = () => (index ??= DiskIndex.buildFromRecords(runDir, readIndexObjects(repo.target, repo.unsealing)));
    previous = await PreviousTree.open(repo, options.source, runDir);
    const budget = new ByteBudget(limit);
    const keys = new SessionKeys(repo.contentSealing);
    let dataAddedPacked = 0;
    const uploader = new Uploader(repo.target, options.uploads, budget, (_name, size) => {
      dataAddedPacked += size;
    });
    const packer = new Packer(runDir, repo.config.packSize, packReserve, budget, uploader, keys);
    const ctx: StoreContext = {
      tempDir: runDir,
      budget,
      chunkReserve,
      smallFile: repo.config.smallFile,
      uploader,
      packer,
      keys,
      index: recordingIndex(known, added),
      idKey: secrets.chunkIdKey,
      chunker,
      signal: options.signal,
      onRead: (n) => {
        progress.bytesRead += n;
      },
      onAdded: (n) => {
        progress.dataAdded += n;
      },
    };
    const counts = { filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirsNew: 0, dirsChanged: 0, dirsUnmodified: 0 };
    const workers = new Limiter(options.workers);

    type Done = { entry: TreeEntry; stored?: StoredFile } | undefined;
    const fileEntry = (item: WalkItem, size: number, sha256: string, chunks: number): FileEntry => ({
      type: 'file',
      ...baseEntry(item.path, item.stat),
      size,
      ctime: item.stat.ctimeNs.toString(),
      ino: item.stat.ino.toString(),
      sha256,
      chunks,
    });
    const processItem = async (item: WalkItem, prev: PreviousEntry | undefined): Promise<Done> => {
      switch (item.kind) {
        case 'dir': {
          const before = prev?.entry;
          if (!before) counts.dirsNew++;
          else if (before.type === 'dir' && before.mtime === item.stat.mtimeNs.toString() && before.mode === Number(item.stat.mode & 0o7777n)) counts.dirsUnmodified++;
          else counts.dirsChanged++;
          return { entry: { type: 'dir', ...baseEntry(item.path, item.stat) } };
        }
        case 'symlink':
          return { entry: { type: 'symlink', ...baseEntry(item.path, item.stat), target: item.linkTarget ?? '' } };
        case 'special':
          observer.warn(item.path, 'skipped: sockets, devices and fifos are not backed up');
          return undefined;
        case 'file':
          if (prev?.chunks && prev.entry.type === 'file') {
            // Unchanged since the previous snapshot: its chunk list is reused and no byte is read.
            counts.filesUnmodified++;
            progress.filesDone++;
            progress.bytesDone += prev.entry.size;
            return { entry: fileEntry(item, prev.entry.size, prev.entry.sha256, prev.entry.chunks), stored: { size: prev.entry.size, sha256: prev.entry.sha256, chunks: prev.chunks } };
          }
          return workers.run(async () => {
            options.signal.throwIfAborted();
            progress.current.add(item.path);
            try {
              const changed = prev?.entry.type === 'file';
              const stored = await storeFile(ctx, item.absolute, item.stat, changed);
              const after = await lstat(item.absolute, { bigint: true }).catch(() => undefined);
              if (!after || changedSince(item.stat, after) || BigInt(stored.size) !== item.stat.size) {
                progress.errors++;
                observer.error(item.path, 'archival', new Error('file changed while it was being backed up; stored as read'));
              }
              if (changed) counts.filesChanged++;
              else counts.filesNew++;
              progress.filesDone++;
              progress.bytesDone += stored.size;
              return { entry: fileEntry(item, stored.size, stored.sha256, stored.chunks.count), stored };
            } catch (err) {
              if (options.signal.aborted || err instanceof KbrackupError) throw err;
              progress.errors++;
              observer.error(item.path, 'archival', err);
              return undefined;
            } finally {
              progress.current.delete(item.path);
            }
          });
      }
    };
    const unchanged = (item: WalkItem) => (entry: TreeEntry) =>
      !options.force &&
      item.kind === 'file' &&
      entry.type === 'file' &&
      entry.size === Number(item.stat.size) &&
      entry.mtime === item.stat.mtimeNs.toString() &&
      entry.ctime === item.stat.ctimeNs.toString() &&
      entry.ino === item.stat.ino.toString();

    async function* treeLines(): AsyncGenerator<string> {
      const window: Promise<Done>[] = [];
      const emit = async function* (done: Done): AsyncGenerator<string> {
        if (!done) return;
        yield `${JSON.stringify(done.entry)}\n`;
        if (done.stored) {
          for await (const line of done.stored.chunks.read()) yield `${line}\n`;
          await done.stored.chunks.dispose();
        }
      };
      const rootItems: AsyncIterable<WalkItem> = rootStat.isDirectory()
        ? walk(options.root, compileExcludes(options.excludes), ({ path, error }) => {
            progress.errors++;
            observer.error(path, 'scan', error);
          })
        : (async function* () {
            yield { path: basename(options.root), absolute: options.root, stat: rootStat, kind: 'file' } as WalkItem;
          })();
      for await (const item of rootItems) {
        options.signal.throwIfAborted();
        const prev = previous ? await previous.find(item.path, unchanged(item)) : undefined;
        const job = processItem(item, prev);
        job.catch(() => undefined);
        window.push(job);
        while (window.length >= WINDOW) yield* emit(await (window.shift() as Promise<Done>));
      }
      while (window.length > 0) yield* emit(await (window.shift() as Promise<Done>));
    }

    const treePath = join(runDir, 'tree');
    await sealToFile(treePath, batchLines(treeLines()), repo.metaSealing);
    await packer.flush();
    await uploader.drain();
    // Order matters for crash safety: data, then index, then tree, then the snapshot that makes it visible.
    if (added.count > 0) {
      const indexPath = join(runDir, 'index');
      const entries = (async function* () {
        for await (const line of added.read()) {
          const ref = parseChunkLine(line, 'the index of this run');
          yield { id: Buffer.from(ref.id, 'hex'), loc: ref };
        }
      })();
      const size = await sealToFile(indexPath, encodeIndexEntries(entries), repo.metaSealing);
      await repo.target.put(newIndexName(), { file: indexPath, size, consumable: true });
    }
    const treeName = Layout.tree(randomBytes(32).toString('hex'));
    await repo.target.put(treeName, { file: treePath, consumable: true });
    const ended = new Date();
    const summary: SnapshotSummary = {
      backup_start: started.toISOString(),
      backup_end: ended.toISOString(),
      files_new: counts.filesNew,
      files_changed: counts.filesChanged,
      files_unmodified: counts.filesUnmodified,
      dirs_new: counts.dirsNew,
      dirs_changed: counts.dirsChanged,
      dirs_unmodified: counts.dirsUnmodified,
      data_added: progress.dataAdded,
      data_added_packed: dataAddedPacked,
      total_files_processed: progress.filesDone,
      total_bytes_processed: progress.bytesDone,
      bytes_read: progress.bytesRead,
      error_count: progress.errors,
    };
    const snapshot: Snapshot = {
      id: randomBytes(32).toString('hex'),
      time: started.toISOString(),
      source: options.source,
      paths: [options.root],
      hostname: options.hostname,
      username: options.username,
      tags: options.tags,
      ...(previous ? { parent: previous.snapshot.id } : {}),
      program_version: options.programVersion,
      tree: treeName,
      summary,
    };
    await writeSnapshot(repo, snapshot);
    return { snapshot, summary };
  } finally {
    await chunker.close();
    await previous?.close().catch(() => undefined);
    await (await index?.catch(() => undefined))?.close();
    await rm(runDir, { recursive: true, force: true });
  }
}
