import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, chmod, mkdir, chown, lchown, lstat, lutimes, mkdtemp, open, rename, rm, symlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { IntegrityError, KbrackupError } from '../errors.js';
import { getSealed } from '../repo/objects.js';
import type { Repository } from '../repo/repository.js';
import type { StoredSnapshot } from '../repo/snapshot.js';
import type { ChunkRef, DirEntry, FileEntry, TreeEntry } from '../repo/tree.js';
import { readTree } from '../repo/tree-reader.js';
import { BlobReader } from './blob-reader.js';
import { SafeDirs, checkRelativePath } from './safe-path.js';

/** What a restore is asked to do. */
export interface RestoreOptions {
  targetDir: string;
  includes: string[];
  conflict: 'skip' | 'overwrite' | 'update' | 'abort';
  dryRun: boolean;
  tempDir: string;
  signal: AbortSignal;
}

/** Counters printed at the end of a restore. */
export interface RestoreSummary {
  files_restored: number;
  files_skipped: number;
  dirs_restored: number;
  symlinks_restored: number;
  bytes_restored: number;
  total_duration: number;
}

const isRoot = process.getuid?.() === 0;

function seconds(ns: string): number {
  return Number(BigInt(ns)) / 1e9;
}

function included(path: string, includes: string[]): boolean {
  if (includes.length === 0) return true;
  return includes.some((inc) => path === inc || path.startsWith(`${inc}/`) || inc.startsWith(`${path}/`));
}

async function applyMeta(path: string, entry: TreeEntry, handle?: FileHandle): Promise<void> {
  const t = seconds(entry.mtime);
  if (entry.type === 'symlink') {
    if (isRoot) await lchown(path, entry.uid, entry.gid);
    await lutimes(path, t, t);
    return;
  }
  if (handle) {
    if (isRoot) await handle.chown(entry.uid, entry.gid);
    await handle.chmod(entry.mode);
    await handle.utimes(t, t);
    return;
  }
  if (isRoot) await chown(path, entry.uid, entry.gid);
  await chmod(path, entry.mode);
  await utimes(path, t, t);
}

/** Restore a snapshot (or the parts of it named by includes) into a folder. */
export async function runRestore(repo: Repository, snapshot: StoredSnapshot, options: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const summary: RestoreSummary = { files_restored: 0, files_skipped: 0, dirs_restored: 0, symlinks_restored: 0, bytes_restored: 0, total_duration: 0 };
  const includes = options.includes.map((p) => p.replace(/^\/+|\/+$/g, '')).filter((p) => p !== '');
  const reader = new BlobReader(repo.target, repo.unsealing);
  const dirs = new SafeDirs(options.targetDir);
  if (!options.dryRun) await mkdir(options.targetDir, { recursive: true });
  const work = await mkdtemp(join(options.tempDir, 'kbrackup-restore-'));
  const dirMeta = join(work, 'dirs.jsonl');
  let dirCount = 0;
  const tree = snapshot.tree;

  // Decides what happens to an existing path; true = write it.
  const mayWrite = async (absolute: string, entry: TreeEntry): Promise<boolean> => {
    const existing = await lstat(absolute, { bigint: true }).catch(() => undefined);
    if (!existing) return true;
    if (entry.type === 'dir' && existing.isDirectory()) return true;
    if (existing.isDirectory()) throw new KbrackupError(`${absolute} is a folder in the way of a ${entry.type} from the snapshot; move it away`);
    switch (options.conflict) {
      case 'abort':
        throw new KbrackupError(`${absolute} already exists; choose --conflict skip|overwrite|update`);
      case 'skip':
        return false;
      case 'update':
        return entry.type !== 'file' || existing.size !== BigInt(entry.size) || existing.mtimeNs !== BigInt(entry.mtime);
      case 'overwrite':
        return true;
    }
  };

  const restoreFile = async (entry: FileEntry, chunks: AsyncIterable<ChunkRef>): Promise<void> => {
    const parts = checkRelativePath(entry.path, tree);
    const parent = await dirs.ensure(parts.slice(0, -1), !options.dryRun);
    const absolute = join(parent, parts.at(-1) as string);
    if (!(await mayWrite(absolute, entry))) {
      summary.files_skipped++;
      for await (const _ of chunks) options.signal.throwIfAborted();
      return;
    }
    if (options.dryRun) {
      for await (const _ of chunks) options.signal.throwIfAborted();
      summary.files_restored++;
      summary.bytes_restored += entry.size;
      return;
    }
    const temp = join(parent, `.kbrackup-${randomBytes(6).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o600);
    try {
      const hash = createHash('sha256');
      let size = 0;
      for await (const ref of chunks) {
        options.signal.throwIfAborted();
        for await (const data of await reader.open(ref)) {
          const buf = data as Buffer;
          hash.update(buf);
          size += buf.length;
          await handle.write(buf, 0, buf.length, null);
        }
      }
      if (size !== entry.size || hash.digest('hex') !== entry.sha256) {
        throw new IntegrityError(tree, `${entry.path}: restored content does not match its recorded size and SHA-256`);
      }
      await applyMeta(temp, entry, handle);
      await handle.close();
      await rename(temp, absolute);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw err;
    }
    summary.files_restored++;
    summary.bytes_restored += entry.size;
  };

  try {
    const lines = readTree(await getSealed(repo.target, tree, repo.unsealing), tree)[Symbol.asyncIterator]();
    // A file's chunks are pulled from the tree as they are restored: memory stays flat for huge files.
    async function* chunksOf(entry: FileEntry): AsyncGenerator<ChunkRef> {
      for (let i = 0; i < entry.chunks; i++) {
        const next = await lines.next();
        if (next.done || next.value.kind !== 'chunk') throw new IntegrityError(tree, `${entry.path}: chunk lines missing`);
        yield next.value.ref;
      }
    }
    for (;;) {
      options.signal.throwIfAborted();
      const next = await lines.next();
      if (next.done) break;
      if (next.value.kind === 'chunk') throw new IntegrityError(tree, 'has a chunk line outside a file');
      const entry = next.value.entry;
      if (!included(entry.path, includes)) {
        if (entry.type === 'file') for await (const _ of chunksOf(entry));
        continue;
      }
      if (entry.type === 'file') {
        await restoreFile(entry, chunksOf(entry));
        continue;
      }
      const parts = checkRelativePath(entry.path, tree);
      if (entry.type === 'dir') {
        summary.dirs_restored++;
        if (options.dryRun) continue;
        await dirs.ensure(parts, true);
        await appendFile(dirMeta, `${JSON.stringify(entry)}\n`);
        dirCount++;
        continue;
      }
      const parent = await dirs.ensure(parts.slice(0, -1), !options.dryRun);
      const absolute = join(parent, parts.at(-1) as string);
      if (!(await mayWrite(absolute, entry))) continue;
      summary.symlinks_restored++;
      if (options.dryRun) continue;
      await rm(absolute, { force: true });
      await symlink(entry.target, absolute);
      await applyMeta(absolute, entry);
    }
    // Folder modes and times last: writing into a folder changes its mtime, and a read-only folder takes no files.
    if (dirCount > 0) {
      for await (const line of createInterface({ input: createReadStream(dirMeta), crlfDelay: Infinity })) {
        const entry = JSON.parse(line) as DirEntry;
        await applyMeta(await dirs.ensure(checkRelativePath(entry.path, tree), false), entry);
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  summary.total_duration = (Date.now() - started) / 1000;
  return summary;
}
