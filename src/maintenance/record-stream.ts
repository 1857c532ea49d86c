import { open, rm, type FileHandle } from 'node:fs/promises';
import { sortStrings } from '../util/external-sort.js';

/**
 * Maintenance works on millions of ids in a few MiB: everything that grows with the repository is a
 * stream of fixed-width records (latin1 strings, one char per byte, so `<` compares bytes), sorted on
 * disk and merged, never a map in memory (docs/maintenance.md "Memory").
 */

/** Bytes of records sorted in memory at once before a run goes to disk. */
const SORT_MEMORY = 2 * 1024 * 1024;
/** Writes are gathered into buffers of this size. */
const WRITE_BUFFER = 256 * 1024;

/** Sort records of `width` chars on disk in `tempDir`; with `unique`, equal records come once. */
export async function* sortRecords(source: AsyncIterable<string>, tempDir: string, width: number, unique = false): AsyncGenerator<string> {
  // A string costs its chars plus ~40 bytes of header and array slot.
  const inMemory = Math.max(1024, Math.floor(SORT_MEMORY / (width + 40)));
  let last: string | undefined;
  for await (const r of sortStrings(source, tempDir, inMemory)) {
    if (unique && r === last) continue;
    last = r;
    yield r;
  }
}

/**
 * Appends fixed-width records to a new file. `write` copies at once and returns a promise only when a
 * full buffer went to disk, so callers that await it (several at once, e.g. a parallel tree walk) are
 * held back while at most one buffer per caller waits.
 */
export class RecordWriter {
  private buf: Buffer = Buffer.allocUnsafe(WRITE_BUFFER);
  /** The buffer being written, reused once its write is done: two buffers serve any number of records. */
  private spare: Buffer | undefined;
  private used = 0;
  private flushing: Promise<void> = Promise.resolve();
  count = 0;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly width: number,
  ) {}

  /** A writer of records of `width` chars to a new file at `path`. */
  static async create(path: string, width: number): Promise<RecordWriter> {
    return new RecordWriter(path, await open(path, 'wx'), width);
  }

  /** Append one record. */
  write(record: string): Promise<void> | undefined {
    if (record.length !== this.width) throw new RangeError(`record of ${record.length} chars in a file of ${this.width}-char records`);
    this.buf.write(record, this.used, 'latin1');
    this.used += this.width;
    this.count++;
    return this.used + this.width > this.buf.length ? this.rotate() : undefined;
  }

  /** Queue the full buffer for writing and go on in the spare one (made once, then taken back after each write). */
  private rotate(): Promise<void> {
    const full = this.buf;
    const length = this.used;
    this.buf = this.spare ?? Buffer.allocUnsafe(WRITE_BUFFER);
    this.spare = undefined;
    this.used = 0;
    this.flushing = this.flushing.then(async () => {
      for (let done = 0; done < length; ) done += (await this.handle.write(full, done, length - done)).bytesWritten;
      this.spare = full;
    });
    return this.flushing;
  }

  /** Write what is buffered and close the file; returns the number of records. */
  async finish(): Promise<number> {
    try {
      await this.rotate();
    } finally {
      await this.handle.close();
    }
    return this.count;
  }

  /** Close and delete the file (on error). */
  async abort(): Promise<void> {
    await this.flushing.catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }
}

/** Write every record of `source` to a new file; returns how many there were. */
export async function writeRecords(path: string, width: number, source: AsyncIterable<string>): Promise<number> {
  const writer = await RecordWriter.create(path, width);
  try {
    for await (const r of source) await writer.write(r);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.finish();
}

/** The records of a file written by RecordWriter, in order; each is a string of its own (not a view of the read buffer). */
export async function* readRecords(path: string, width: number): AsyncGenerator<string> {
  // Reads of whole records, into one buffer: nothing is allocated per read but the strings.
  const handle = await open(path, 'r');
  const buf = Buffer.allocUnsafe(width * 256);
  try {
    for (let position = 0; ; ) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, position);
      if (bytesRead === 0) return;
      if (bytesRead % width !== 0) throw new Error(`${path}: ends inside a record`);
      position += bytesRead;
      for (let at = 0; at < bytesRead; at += width) yield buf.toString('latin1', at, at + width);
    }
  } finally {
    await handle.close();
  }
}

/** An iterator that can look at its next item without taking it, for merging sorted streams. */
export class Cursor<T> {
  private head: IteratorResult<T> | undefined;

  constructor(private readonly it: AsyncIterator<T>) {}

  /** The next item, left in place; undefined at the end. */
  async peek(): Promise<T | undefined> {
    this.head ??= await this.it.next();
    return this.head.done ? undefined : this.head.value;
  }

  /** Take the next item; undefined at the end. */
  async next(): Promise<T | undefined> {
    const value = await this.peek();
    if (value !== undefined) this.head = undefined;
    return value;
  }

  /** Stop the underlying iterator early (its finally blocks run). */
  async close(): Promise<void> {
    await this.it.return?.(undefined);
  }
}

/** Unsigned big-endian number of `length` chars at `at` of a record. */
export function readNumber(record: string, at: number, length: number): number {
  let n = 0;
  for (let i = at; i < at + length; i++) n = n * 256 + record.charCodeAt(i);
  return n;
}

/** `value` as `length` big-endian chars. */
export function numberChars(value: number, length: number): string {
  if (!Number.isSafeInteger(value) || value < 0 || value >= 256 ** length) throw new RangeError(`${value} does not fit in ${length} bytes`);
  let out = '';
  for (let i = length - 1; i >= 0; i--) out += String.fromCharCode(Math.floor(value / 256 ** i) % 256);
  return out;
}

/** A 64-hex-digit id as its 32 chars, and back. */
export function idChars(hex: string): string {
  return Buffer.from(hex, 'hex').toString('latin1');
}

/** The 64 hex digits of the 32-char id at `at` of a record. */
export function idHex(record: string, at = 0): string {
  return Buffer.from(record.slice(at, at + 32), 'latin1').toString('hex');
}

/**
 * A list of fixed-width records in one buffer (outside the JavaScript heap): a content object's index
 * entries, up to a pack's 65,536, cost 94 bytes each instead of a string apiece. `get` makes a string
 * of one record when it is needed.
 */
export class RecordList implements Iterable<string> {
  private buf: Buffer;
  private count = 0;

  constructor(
    private readonly width: number,
    capacity = 16,
  ) {
    this.buf = Buffer.allocUnsafe(width * capacity);
  }

  get length(): number {
    return this.count;
  }

  /** Append a record. */
  push(record: string): void {
    if (record.length !== this.width) throw new RangeError(`record of ${record.length} chars in a list of ${this.width}-char records`);
    if ((this.count + 1) * this.width > this.buf.length) {
      const grown = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(grown, 0, 0, this.count * this.width);
      this.buf = grown;
    }
    this.buf.write(record, this.count * this.width, 'latin1');
    this.count++;
  }

  /** Record `i`. */
  get(i: number): string {
    if (i < 0 || i >= this.count) throw new RangeError(`record ${i} of ${this.count}`);
    return this.buf.toString('latin1', i * this.width, (i + 1) * this.width);
  }

  /** Records `from` up to `to`, in order. */
  *range(from: number, to: number): Generator<string> {
    for (let i = from; i < to; i++) yield this.get(i);
  }

  [Symbol.iterator](): Iterator<string> {
    return this.range(0, this.count);
  }
}
