import { IntegrityError, RestoreWriteError } from '../errors.js';
import type { FileEntry } from '../repo/tree/entry.js';
import { childPath, displayName, type ByteString } from '../repo/tree/names.js';
import { checkContent, LargeFileBody } from './files-writer.js';
import { RING_SLOTS, SLOT_BYTES, type WriteThread } from './write-thread.js';
import type { XattrWriter } from './xattrs.js';

/** Where a large file's body is written: here (LargeFileBody at once) or on the write thread. */
interface BodySink {
  write(pieces: Buffer[], at: number): Promise<void>;
  digest(): Promise<string | undefined>;
  commit(size: number): Promise<void>;
  abort(): Promise<void>;
}

/** Verified bytes gathered into one write (inline) or one slot of the write thread's ring. */
const WRITE_BATCH = SLOT_BYTES;

/** The body written on this thread, one blocking call per batch. */
function inlineSink(dir: ByteString, path: ByteString, entry: FileEntry, xattrs: XattrWriter): BodySink {
  const body = new LargeFileBody(dir, entry.name, entry.sha256 !== undefined);
  return {
    write: async (pieces, at) => body.write(pieces, at),
    digest: async () => body.digest(),
    commit: async (size) => body.commit(size, path, entry, xattrs),
    abort: async () => body.abort(),
  };
}

let nextFile = 0;

/**
 * The body written on the write thread: batches copied into slots of its ring, a few on the thread at
 * once, while this thread fetches, decrypts and checks the next chunks.
 */
function threadSink(thread: WriteThread, dir: ByteString, path: ByteString, entry: FileEntry): { sink: BodySink; opened: Promise<unknown> } {
  const file = nextFile++;
  const opened = thread.request({ open: { file, dir, name: entry.name, hashed: entry.sha256 !== undefined } });
  const inFlight: Promise<unknown>[] = [];
  const sink: BodySink = {
    async write(pieces, at) {
      let slot = await thread.slot();
      let filled = 0;
      let from = at;
      const send = () => {
        const sent = thread.write(file, from, slot, filled);
        sent.catch(() => undefined);
        inFlight.push(sent);
        from += filled;
        filled = 0;
      };
      for (const piece of pieces) {
        for (let done = 0; done < piece.length; ) {
          if (filled === SLOT_BYTES) {
            send();
            slot = await thread.slot();
          }
          const n = piece.copy(slot.buf, filled, done);
          filled += n;
          done += n;
        }
      }
      send();
      // A failed write surfaces here, at the next batch, or at the end.
      while (inFlight.length >= RING_SLOTS) await inFlight.shift();
    },
    async digest() {
      await Promise.all(inFlight.splice(0));
      return thread.request({ end: { file } });
    },
    async commit(size) {
      const { name, mode, uid, gid, mtime } = entry;
      await thread.request({ commit: { file, size, path, meta: { name, mode, uid, gid, mtime } } });
    },
    async abort() {
      await Promise.allSettled(inFlight.splice(0));
      await thread.request({ abort: { file } });
    },
  };
  return { sink, opened };
}

/**
 * A large file restored part by part, in order, at its offsets (holes skipped), under a hidden temp
 * name: it takes its name only once its size and SHA-256 match the entry. Verified pieces are gathered
 * into batches of ~512 KiB; with a write thread (and no extended attributes, whose warnings are told
 * here) the thread writes and hashes them while this thread decrypts the next chunks.
 */
export class LargeFileWriter {
  private sink: BodySink | undefined;
  private position = 0;
  /** Verified pieces not written yet, and where they start. */
  private pending: Buffer[] = [];
  private pendingAt = 0;
  private pendingBytes = 0;

  constructor(
    private readonly dir: ByteString,
    private readonly path: ByteString,
    private readonly entry: FileEntry,
    private readonly tree: string,
    private readonly xattrs: XattrWriter,
    private readonly thread?: WriteThread,
  ) {}

  /** Create the temp file. */
  async openFile(): Promise<void> {
    if (this.thread === undefined || this.entry.xattrs?.length) {
      this.sink = inlineSink(this.dir, this.path, this.entry, this.xattrs);
      return;
    }
    const { sink, opened } = threadSink(this.thread, this.dir, this.path, this.entry);
    this.sink = sink;
    await opened;
  }

  /** Append verified data (the next part in file order). */
  async data(bytes: Buffer): Promise<void> {
    this.advance(bytes.length);
    const at = this.position - bytes.length;
    // After a hole the next bytes start a batch of their own.
    if (this.pendingBytes > 0 && this.pendingAt + this.pendingBytes !== at) await this.flush();
    if (this.pendingBytes === 0) this.pendingAt = at;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= WRITE_BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const pieces = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await this.sink!.write(pieces, this.pendingAt);
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
  async finish(): Promise<void> {
    await this.flush();
    const sink = this.sink!;
    checkContent(this.entry, this.path, this.position, await sink.digest(), this.tree);
    await sink.commit(this.position);
    this.sink = undefined;
  }

  /** Remove the temp file (on error or cancel). */
  async abort(): Promise<void> {
    const sink = this.sink;
    this.sink = undefined;
    try {
      await sink?.abort();
    } catch (err) {
      throw RestoreWriteError.from(displayName(childPath(this.dir, this.entry.name)), err);
    }
  }
}
