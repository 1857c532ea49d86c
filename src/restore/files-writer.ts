import { createHash, randomBytes, type Hash } from 'node:crypto';
import { closeSync, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, lutimesSync, openSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { IntegrityError, RestoreWriteError } from '../errors.js';
import { startWriteback, withPath, withPathAsync, WriteBehind } from '../platform/index.js';
import type { DirEntry, FileEntry, SymlinkEntry } from '../repo/tree/entry.js';
import { childPath, displayName, toBytes, type ByteString } from '../repo/tree/names.js';
import { memoryLimit } from '../util/memory-limit.js';
import { writeAllSync } from '../util/write-all.js';
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
export function checkContent(entry: FileEntry, path: ByteString, size: number, sha256: string | undefined, tree: string): void {
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
    writeAllSync(fd, [bytes], 0);
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
/** The smallest zero run left a hole: a page. */
const HOLE_MIN = 4096;

/** Whether `data` is all zero bytes. */
function isZero(data: Buffer): boolean {
  for (let at = 0; at < data.length; at += ZERO.length) {
    const n = Math.min(ZERO.length, data.length - at);
    if (data.compare(ZERO, 0, n, at, at + n) !== 0) return false;
  }
  return true;
}

/** `pieces` cut where zero runs of a compare block (or a whole small piece of a page or more) begin and end. */
function* zeroRuns(pieces: Buffer[]): Generator<{ bytes: Buffer; zero: boolean }> {
  for (const piece of pieces) {
    if (piece.length < ZERO.length) {
      yield { bytes: piece, zero: piece.length >= HOLE_MIN && isZero(piece) };
      continue;
    }
    for (let at = 0; at < piece.length; at += ZERO.length) {
      const bytes = piece.subarray(at, at + ZERO.length);
      yield { bytes, zero: bytes.length >= HOLE_MIN && isZero(bytes) };
    }
  }
}

/**
 * A large file's body, written in order under a hidden temp name next to its final one with blocking
 * calls (on the write thread, or inline on the main thread): zero runs of a page or more are left
 * holes, so a sparse file comes back sparse; the SHA-256 runs over every byte; the file takes its
 * name only at `commit`, after the caller checked that hash. A failed system call names the file.
 */
export class LargeFileBody {
  private readonly final: ByteString;
  private readonly temp: ByteString;
  private fd: number | undefined;
  private readonly hash: Hash | undefined;
  /**
   * Under a memory limit writeback starts a MiB at a time: restored files are not read again, and
   * their dirty pages would only hold a pod's limit (see writeVerifiedFile). Without one the kernel's
   * own writeback is left to gather them: starting it per MiB took a 2 GiB restore from 13.6 s to 16.5 s
   * here, the disk's writes competing with the restore's reads.
   */
  private readonly behind: WriteBehind | undefined;

  constructor(dir: ByteString, name: ByteString, hashed: boolean) {
    this.final = childPath(dir, name);
    this.temp = tempName(dir);
    this.hash = hashed ? createHash('sha256') : undefined;
    this.fd = this.step(() => withPath(toBytes(this.temp), (p) => openSync(p, 'wx', 0o600)));
    this.behind = UNDER_MEMORY_LIMIT ? new WriteBehind(this.fd) : undefined;
  }

  /** A step that writes into the destination: a system call's failure there names the file (RestoreWriteError). */
  private step<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw RestoreWriteError.from(displayName(this.final), err);
    }
  }

  /** Write `pieces`, the file's consecutive bytes from `at`: one call per run of non-zero bytes. */
  write(pieces: Buffer[], at: number): void {
    const fd = this.fd as number;
    this.step(() => {
      let run: Buffer[] = [];
      let runAt = at;
      let pos = at;
      for (const { bytes, zero } of zeroRuns(pieces)) {
        this.hash?.update(bytes);
        pos += bytes.length;
        if (!zero) {
          run.push(bytes);
          continue;
        }
        this.writeRun(fd, run, runAt);
        run = [];
        runAt = pos;
      }
      this.writeRun(fd, run, runAt);
    });
  }

  private writeRun(fd: number, run: Buffer[], at: number): void {
    if (run.length === 0) return;
    const end = writeAllSync(fd, run, at);
    this.behind?.written(end);
  }

  /** The SHA-256 (hex) of every byte written (undefined for a file restored without one: it has holes). */
  digest(): string | undefined {
    return this.hash?.digest('hex');
  }

  /** Set the size (trailing holes), metadata, and move the file into place. */
  commit(size: number, path: ByteString, meta: FileMeta, xattrs: XattrWriter): void {
    const fd = this.fd as number;
    this.step(() => {
      ftruncateSync(fd, size);
      applyFileMeta(fd, path, meta, xattrs);
    });
    this.fd = undefined;
    this.step(() => {
      closeSync(fd);
      renameInPlace(this.temp, this.final);
    });
  }

  /** Remove the temp file (on error or cancel). */
  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    withPath(toBytes(this.temp), (p) => rmSync(p, { force: true }));
  }
}
