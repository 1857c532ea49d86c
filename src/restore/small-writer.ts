import type { FileEntry } from '../repo/tree/entry.js';
import type { ByteString } from '../repo/tree/names.js';
import { verifyWholeFile, writeVerifiedFile } from './files-writer.js';
import type { BatchFile } from './write-protocol.js';
import type { WriteThread } from './write-thread.js';
import type { XattrWriter } from './xattrs.js';

/** Files and bytes of one batch: one message per batch, so its cost (~0.3 ms) is paid per hundreds of files. */
const BATCH_FILES = 256;
const BATCH_BYTES = 256 * 1024;
/** Batches on the thread at once (~2 MiB at most): enough that it keeps writing while this thread decodes the next window's trees. */
const IN_FLIGHT = 8;

/**
 * Writes small restored files (docs/ARCHITECTURE.md "Restore"). Each file is verified here, on the
 * main thread, against its recorded size and SHA-256; with a write thread its bytes are then copied
 * into a batch that the thread turns into files (temp name, write, owner, mode, times, rename: ~8
 * system calls a file, most of a tiny-file restore's time), while this thread fetches and decrypts
 * the next bundles. Without one, each file is written at once. Files with extended attributes are
 * always written here, where their warnings are told.
 */
export class SmallFileWriter {
  private files: BatchFile[] = [];
  private pieces: Buffer[] = [];
  private bytes = 0;
  private readonly inFlight: Promise<void>[] = [];
  private failure: unknown;

  constructor(
    private readonly thread: WriteThread | undefined,
    private readonly xattrs: XattrWriter,
  ) {}

  /** Verify one small file and write it (or queue it); rejects with the first write failure. */
  async write(dir: ByteString, path: ByteString, entry: FileEntry, data: Buffer | undefined, tree: string): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const bytes = verifyWholeFile(path, entry, data, tree);
    if (this.thread === undefined || entry.xattrs?.length) return writeVerifiedFile(dir, path, entry, bytes, this.xattrs);
    this.files.push({ dir, path, name: entry.name, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime, offset: this.bytes, length: bytes.length });
    this.pieces.push(bytes);
    this.bytes += bytes.length;
    if (this.files.length >= BATCH_FILES || this.bytes >= BATCH_BYTES) await this.send(this.thread);
  }

  /** Write what is queued; resolves once every file so far is in place. */
  async drain(): Promise<void> {
    if (this.thread) await this.send(this.thread);
    await Promise.all(this.inFlight);
  }

  /** Resolves once no batch is on the thread (failed or not): before the thread is stopped. */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight);
  }

  private async send(thread: WriteThread): Promise<void> {
    while (this.inFlight.length >= IN_FLIGHT) await this.inFlight[0];
    if (this.failure !== undefined) throw this.failure;
    // Another task's send may have taken the files while this one waited.
    if (this.files.length === 0) return;
    const buffer = new ArrayBuffer(this.bytes);
    const view = Buffer.from(buffer);
    let at = 0;
    for (const piece of this.pieces) at += piece.copy(view, at);
    const files = this.files;
    this.files = [];
    this.pieces = [];
    this.bytes = 0;
    const done = thread.request({ batch: { buffer, files } }, [buffer]).then(
      () => undefined,
      (err: unknown) => {
        this.failure ??= err;
        throw err;
      },
    );
    const tracked = done.finally(() => this.inFlight.splice(this.inFlight.indexOf(tracked), 1));
    tracked.catch(() => undefined);
    this.inFlight.push(tracked);
  }
}
