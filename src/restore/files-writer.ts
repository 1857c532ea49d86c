import { createHash, randomBytes, type Hash } from 'node:crypto';
import { closeSync, fchmodSync, fchownSync, futimesSync, lchownSync, lutimesSync, openSync, renameSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { IntegrityError, RestoreWriteError } from '../errors.js';
import { startWriteback, withPath, withPathAsync, WriteBehind } from '../platform/index.js';
import type { DirEntry, FileEntry, SymlinkEntry } from '../repo/tree/entry.js';
import { childPath, displayName, toBytes, type ByteString } from '../repo/tree/names.js';
import { memoryLimit } from '../util/memory-limit.js';
import { writeAll } from '../util/write-all.js';
import type { XattrWriter } from './xattrs.js';

/** Whether a memory limit (a pod's) applies: small restored files then start their writeback at once. */
const UNDER_MEMORY_LIMIT = memoryLimit() > 0;

/** Restoring as root: owners are restored by number; otherwise files belong to the running user (as restic does). */
const isRoot = process.getuid?.() === 0;

/** A time for futimes and lutimes: float seconds keep sub-millisecond precision, but Node takes a negative number for "now", so times before 1970 go as a Date. */
function fileTime(ns: string): number | Date {
  const t = BigInt(ns);
  return t < 0n ? new Date(Number(t / 1_000_000n)) : Number(t) / 1e9;
}

// A per-run random prefix and a counter: unique without a random draw per file (12 us each here).
const TEMP_PREFIX = `.kbrackup-${randomBytes(6).toString('hex')}-`;
let tempCounter = 0;

/** A hidden temp name next to the final one: a file appears only once complete and verified. */
function tempName(dir: ByteString): ByteString {
  return childPath(dir, `${TEMP_PREFIX}${(tempCounter++).toString(36)}`);
}

/** What writing a verified file needs of its entry. */
export type FileMeta = Pick<FileEntry, 'name' | 'mode' | 'uid' | 'gid' | 'mtime' | 'xattrs'>;

/** Extended attributes, mode, owner and times onto an open file descriptor. */
function applyFileMeta(fd: number, path: ByteString, entry: FileMeta, xattrs: XattrWriter): void {
  xattrs.onFd(fd, path, entry.xattrs);
  if (isRoot) fchownSync(fd, entry.uid, entry.gid);
  fchmodSync(fd, entry.mode);
  const t = fileTime(entry.mtime);
  futimesSync(fd, t, t);
}

/** Extended attributes, mode, owner and times of a folder (after everything inside it was written). */
export async function applyDirMeta(path: ByteString, entry: DirEntry, xattrs: XattrWriter): Promise<void> {
  const handle = await withPathAsync(toBytes(path), (p) => open(p, 'r'));
  try {
    xattrs.onFd(handle.fd, path, entry.xattrs);
    if (isRoot) await handle.chown(entry.uid, entry.gid);
    await handle.chmod(entry.mode);
    const t = fileTime(entry.mtime);
    await handle.utimes(t, t);
  } finally {
    await handle.close();
  }
}

/** Create a symlink (replacing what is there) with its attributes, owner and times. */
export function writeSymlink(path: ByteString, entry: SymlinkEntry, xattrs: XattrWriter): void {
  withPath(toBytes(path), (bytes) => {
    rmSync(bytes, { force: true });
    symlinkSync(toBytes(entry.linkTarget), bytes);
    if (isRoot) lchownSync(bytes, entry.uid, entry.gid);
    const t = fileTime(entry.mtime);
    lutimesSync(bytes, t, t);
  });
  // Attributes change the link's ctime only, so they may come after its times.
  xattrs.onPath(path, entry.xattrs);
}

/** Move a finished temp file to its name (both in one folder, of any length). */
function renameInPlace(temp: ByteString, final: ByteString): void {
  withPath(toBytes(temp), (from) => withPath(toBytes(final), (to) => renameSync(from, to)));
}

/** Check restored content against the file's recorded size and SHA-256. */
function checkContent(entry: FileEntry, path: ByteString, size: number, sha256: string | undefined, tree: string): void {
  if (size !== entry.size || sha256 !== entry.sha256) {
    throw new IntegrityError(tree, `${displayName(path)}: restored content does not match its recorded size and SHA-256`);
  }
}

/** A small file's bytes, checked against its recorded size and SHA-256 (refused otherwise). */
export function verifyWholeFile(path: ByteString, entry: FileEntry, data: Buffer | undefined, tree: string): Buffer {
  const bytes = data ?? Buffer.alloc(0);
  checkContent(entry, path, bytes.length, entry.sha256 === undefined ? undefined : createHash('sha256').update(bytes).digest('hex'), tree);
  return bytes;
}

/**
 * Write a small file's bytes, already verified (verifyWholeFile) and all in memory, under a temp name
 * with metadata, then rename it into place. Synchronous calls: for tiny files the per-call cost of the
 * async API (~100 us on two cores) would be most of the time.
 */
export function writeVerifiedFile(dir: ByteString, path: ByteString, entry: FileMeta, bytes: Buffer, xattrs: XattrWriter): void {
  const final = childPath(dir, entry.name);
  try {
    writeAndRename(dir, final, path, entry, bytes, xattrs);
  } catch (err) {
    throw RestoreWriteError.from(displayName(final), err);
  }
}

function writeAndRename(dir: ByteString, final: ByteString, path: ByteString, entry: FileMeta, bytes: Buffer, xattrs: XattrWriter): void {
  const temp = tempName(dir);
  const fd = withPath(toBytes(temp), (p) => openSync(p, 'wx', 0o600));
  try {
    for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, done);
    // Restored files are not read again: their dirty pages, thousands of small files' worth, would only
    // hold a pod's memory limit (docs/ARCHITECTURE.md "Memory does not grow with the data"). 0: the whole
    // file. Without a limit the kernel's own writeback gathers many small files into fewer writes.
    if (bytes.length > 0 && UNDER_MEMORY_LIMIT) startWriteback(fd, 0, 0);
    applyFileMeta(fd, path, entry, xattrs);
  } catch (err) {
    closeSync(fd);
    withPath(toBytes(temp), (p) => rmSync(p, { force: true }));
    throw err;
  }
  closeSync(fd);
  renameInPlace(temp, final);
}

/** Bytes compared at once when looking for zero runs that become holes. */
const ZERO = Buffer.alloc(64 * 1024);

/** Whether `data` is all zero bytes. */
function isZero(data: Buffer): boolean {
  for (let at = 0; at < data.length; at += ZERO.length) {
    const n = Math.min(ZERO.length, data.length - at);
    if (data.compare(ZERO, 0, n, at, at + n) !== 0) return false;
  }
  return true;
}

/**
 * A large file restored part by part, in order, at its offsets: holes (and zero runs of at least a
 * page) are not written, so a sparse file comes back sparse; the SHA-256 runs over the parts in order.
 */
export class LargeFileWriter {
  private readonly temp: ByteString;
  private handle: FileHandle | undefined;
  private readonly hash: Hash | undefined;
  private position = 0;
  /** Writes in flight, in file order, each resolving to where it ends. */
  private writes: Promise<number>[] = [];
  /** Verified pieces not written yet, and where they start: written together, one call per ~512 KiB. */
  private pending: Buffer[] = [];
  private pendingAt = 0;
  private pendingBytes = 0;
  /** Restored files are not read again: their dirty pages would only hold a pod's memory limit (see writeVerifiedFile). */
  private behind: WriteBehind | undefined;

  constructor(
    private readonly dir: ByteString,
    private readonly path: ByteString,
    private readonly entry: FileEntry,
    private readonly tree: string,
    private readonly xattrs: XattrWriter,
  ) {
    this.temp = tempName(dir);
    this.hash = entry.sha256 !== undefined ? createHash('sha256') : undefined;
  }

  async openFile(): Promise<void> {
    await this.writing(async () => {
      this.handle = await withPathAsync(toBytes(this.temp), (p) => open(p, 'wx', 0o600));
      this.behind = new WriteBehind(this.handle.fd);
    });
  }

  /** A step that writes into the destination: a system call's failure there names the file (RestoreWriteError). */
  private async writing<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      throw RestoreWriteError.from(displayName(childPath(this.dir, this.entry.name)), err);
    }
  }

  /**
   * Append verified data (the next part in file order). Pieces are gathered into one write of ~512 KiB
   * (decryption hands out 64 KiB pieces; an async write call costs main-thread time of its own), and
   * two writes run while the next parts are fetched. A zero run of a page or more is left a hole.
   */
  data(bytes: Buffer): Promise<void> {
    return this.writing(() => this.append(bytes));
  }

  private async append(bytes: Buffer): Promise<void> {
    this.advance(bytes.length);
    this.hash?.update(bytes);
    const at = this.position - bytes.length;
    if (bytes.length >= 4096 && isZero(bytes)) {
      await this.flush();
      return;
    }
    if (this.pendingBytes > 0 && this.pendingAt + this.pendingBytes !== at) await this.flush();
    if (this.pendingBytes === 0) this.pendingAt = at;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= WRITE_BATCH) await this.flush();
  }

  /** Start writing the gathered pieces; waits while two writes are in flight. */
  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const end = this.pendingAt + this.pendingBytes;
    const write = writeAll(this.handle!, this.pending, this.pendingAt).then(() => end);
    write.catch(() => undefined);
    this.writes.push(write);
    this.pending = [];
    this.pendingBytes = 0;
    // The oldest write ending means every byte before its end is written (holes apart).
    if (this.writes.length >= 2) this.behind!.written(await this.writes.shift()!);
  }

  /** Skip a hole of `length` bytes (only files without a recorded hash have holes). */
  hole(length: number): void {
    this.advance(length);
  }

  /** Move past `length` more bytes; refused at the first byte past the file's recorded size, so a tree cannot make restore write more. */
  private advance(length: number): void {
    if (this.position + length > this.entry.size) {
      throw new IntegrityError(this.tree, `${displayName(this.path)}: its content goes on past the file's recorded size of ${this.entry.size} bytes`);
    }
    this.position += length;
  }

  /** Verify, set the size (trailing holes), metadata, and move the file into place. */
  finish(): Promise<void> {
    return this.writing(() => this.complete());
  }

  private async complete(): Promise<void> {
    await this.flush();
    await Promise.all(this.writes);
    checkContent(this.entry, this.path, this.position, this.hash?.digest('hex'), this.tree);
    const handle = this.handle!;
    await handle.truncate(this.position);
    applyFileMeta(handle.fd, this.path, this.entry, this.xattrs);
    await handle.close();
    this.handle = undefined;
    renameInPlace(this.temp, childPath(this.dir, this.entry.name));
  }

  /** Remove the temp file (on error or cancel). */
  async abort(): Promise<void> {
    await Promise.allSettled(this.writes);
    await this.handle?.close().catch(() => undefined);
    await withPathAsync(toBytes(this.temp), (p) => rm(p, { force: true }));
  }
}

/** Bytes gathered into one write of a large file. */
const WRITE_BATCH = 512 * 1024;
