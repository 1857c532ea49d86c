import { readSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { compareIds, ID_SIZE, RECORD_SIZE } from './records.js';

/** Size of the write buffer a RunWriter needs: whole records, about 256 KiB. */
export const WRITE_BUFFER_BYTES = 3277 * RECORD_SIZE;
// Buckets of at most this many records are read with one pread; larger ones are narrowed by bisection first.
const READ_WINDOW = 64;

/** Fanout bits for `count` records: about 8 records per bucket, at most 2^16 buckets (256 KiB of table). */
function fanoutBits(count: number): number {
  return Math.min(16, Math.max(1, Math.ceil(Math.log2(Math.max(count, 1) / 8))));
}

/** Top `bits` bits of the id at byte `at`. */
function bucketOf(buf: Uint8Array, at: number, bits: number): number {
  return (((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0) >>> (32 - bits);
}

/** A read a search needs before it can go on: `n` records from record `first` of `run` into `buf`. */
export interface ReadRequest {
  run: SortedRun;
  buf: Buffer;
  first: number;
  n: number;
}

/** A search that yields the reads it needs, so one algorithm serves blocking and non-blocking callers. */
export type Search<T> = Generator<ReadRequest, T, void>;

/** Run a search with non-blocking reads on the thread pool. */
export async function searchAsync<T>(search: Search<T>): Promise<T> {
  for (let step = search.next(); ; ) {
    if (step.done) return step.value;
    const { run, buf, first, n } = step.value;
    try {
      await run.read(buf, first, n);
    } catch (err) {
      search.return(undefined as T);
      throw err;
    }
    step = search.next();
  }
}

/**
 * Run a search with blocking reads: for many lookups in a row against a run in the page cache, where
 * a round trip through the thread pool per read costs more than the read (restore's small files).
 */
export function searchSync<T>(search: Search<T>): T {
  for (let step = search.next(); ; ) {
    if (step.done) return step.value;
    const { run, buf, first, n } = step.value;
    try {
      run.readSync(buf, first, n);
    } catch (err) {
      search.return(undefined as T);
      throw err;
    }
    step = search.next();
  }
}

/**
 * A file of records sorted by id, plus an in-memory fanout table (bucket of the id's top bits → first
 * record), so a lookup is usually one pread of a few records. Reads may be in flight while the run is
 * replaced: `retire()` unlinks the file at once and closes it when the last reader releases it.
 */
export class SortedRun {
  private users = 0;
  private retired = false;
  private closing: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly count: number,
    private readonly bits: number,
    private readonly fanout: Uint32Array,
  ) {}

  /** Mark a search as using this run until `release()`. */
  acquire(): void {
    this.users++;
  }

  /** End a use started by `acquire()`. */
  release(): void {
    this.users--;
    // Nothing is lost if closing a deleted temp file fails, so the error is dropped rather than left unhandled.
    if (this.retired && this.users === 0) this.close().catch(() => undefined);
  }

  /** Remove the file; the handle stays usable for current users. */
  async retire(): Promise<void> {
    this.retired = true;
    await unlink(this.path);
    if (this.users === 0) await this.close();
  }

  /** Close the file (once). */
  close(): Promise<void> {
    this.closing ??= this.handle.close();
    return this.closing;
  }

  /** Search for the record of `id` (a buffer of RECORD_SIZE bytes). */
  *search(id: Uint8Array): Search<Buffer | undefined> {
    const bucket = bucketOf(id, 0, this.bits);
    let lo = this.fanout[bucket]!;
    let hi = this.fanout[bucket + 1]!;
    const one = Buffer.allocUnsafe(RECORD_SIZE);
    while (hi - lo > READ_WINDOW) {
      const mid = (lo + hi) >>> 1;
      yield { run: this, buf: one, first: mid, n: 1 };
      const cmp = compareIds(id, 0, one, 0);
      if (cmp === 0) return one;
      if (cmp < 0) hi = mid;
      else lo = mid + 1;
    }
    if (lo === hi) return undefined;
    const window = Buffer.allocUnsafe((hi - lo) * RECORD_SIZE);
    yield { run: this, buf: window, first: lo, n: hi - lo };
    for (let at = 0; at < window.length; at += RECORD_SIZE) {
      const cmp = compareIds(id, 0, window, at);
      if (cmp === 0) return window.subarray(at, at + RECORD_SIZE);
      if (cmp < 0) return undefined;
    }
    return undefined;
  }

  /** Read `n` records starting at record `first` into `buf`. */
  async read(buf: Buffer, first: number, n: number): Promise<void> {
    const { bytesRead } = await this.handle.read(buf, 0, n * RECORD_SIZE, first * RECORD_SIZE);
    this.checkRead(bytesRead, n);
  }

  /** The same read, blocking the calling thread. */
  readSync(buf: Buffer, first: number, n: number): void {
    this.checkRead(readSync(this.handle.fd, buf, 0, n * RECORD_SIZE, first * RECORD_SIZE), n);
  }

  private checkRead(bytesRead: number, n: number): void {
    if (bytesRead !== n * RECORD_SIZE) throw new Error(`${this.path}: short read of index run (${bytesRead} of ${n * RECORD_SIZE} bytes)`);
  }
}

/**
 * Writes records in ascending id order to a new run file, dropping repeats of the previous id (the first
 * one written wins) and counting the fanout as it goes.
 */
export class RunWriter {
  private used = 0;
  private count = 0;
  private readonly bits: number;
  private readonly fanout: Uint32Array;
  private readonly last = Buffer.alloc(ID_SIZE);

  private constructor(
    private readonly path: string,
    private readonly handle: FileHandle,
    maxCount: number,
    private readonly buf: Buffer,
  ) {
    this.bits = fanoutBits(maxCount);
    this.fanout = new Uint32Array(2 ** this.bits + 1);
  }

  /** Create the file at `path` for at most `maxCount` records, buffering in `buf` (WRITE_BUFFER_BYTES, owned until finish or abort). */
  static async create(path: string, maxCount: number, buf: Buffer): Promise<RunWriter> {
    return new RunWriter(path, await open(path, 'wx+'), maxCount, buf);
  }

  /** Append the record at byte `at` of `src`; returns a promise only when the buffer had to be flushed. */
  write(src: Buffer, at: number): Promise<void> | undefined {
    if (this.count > 0 && compareIds(src, at, this.last, 0) === 0) return undefined;
    const record = src.subarray(at, at + RECORD_SIZE);
    this.last.set(record.subarray(0, ID_SIZE));
    this.buf.set(record, this.used);
    this.used += RECORD_SIZE;
    this.count++;
    this.fanout[bucketOf(src, at, this.bits) + 1]!++;
    return this.used === this.buf.length ? this.flush() : undefined;
  }

  private async flush(): Promise<void> {
    for (let done = 0; done < this.used; ) done += (await this.handle.write(this.buf, done, this.used - done)).bytesWritten;
    this.used = 0;
  }

  /** Flush and turn the file into a searchable run. */
  async finish(): Promise<SortedRun> {
    await this.flush();
    // Written-back pages are clean and can be reclaimed: under a pod's memory limit (cgroup v1 has no
    // per-group writeback throttling) dirty run pages otherwise count against the limit until the kernel
    // gets to them, and a 120,000-blob run wrote ~11 MiB of them (docs/ARCHITECTURE.md "Memory does not grow with the data").
    await this.handle.datasync();
    for (let b = 1; b < this.fanout.length; b++) this.fanout[b]! += this.fanout[b - 1]!;
    return new SortedRun(this.path, this.handle, this.count, this.bits, this.fanout);
  }

  /** Close and delete an unfinished run. */
  async abort(): Promise<void> {
    await this.handle.close();
    await unlink(this.path);
  }
}
