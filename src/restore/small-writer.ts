import { Worker } from 'node:worker_threads';
import type { FileEntry } from '../repo/tree/entry.js';
import type { ByteString } from '../repo/tree/names.js';
import { RestoreWriteError } from '../errors.js';
import { deferred, type Waiter } from '../util/deferred.js';
import { HELPER_THREAD_MIN_MEMORY, threadWanted, type ThreadSetting } from '../util/memory-limit.js';
import { verifyWholeFile, writeVerifiedFile } from './files-writer.js';
import type { BatchFile, WriteReply } from './write-protocol.js';
import type { XattrWriter } from './xattrs.js';

/** Where small restored files are written: on a thread of their own, or on the main thread. */
export type WriteThreadMode = 'thread' | 'inline';

/** `auto` decides by the process's memory limit, as the chunk thread does. */
export function writeThreadMode(setting: ThreadSetting): WriteThreadMode {
  return threadWanted(setting, HELPER_THREAD_MIN_MEMORY) ? 'thread' : 'inline';
}

/** The write thread's error, rebuilt on this side of the thread boundary. */
function replyError(e: { message: string; code?: string; path?: string; detail?: string }): Error {
  if (e.path !== undefined && e.code !== undefined && e.detail !== undefined) return new RestoreWriteError(e.path, e.code, e.detail);
  return Object.assign(new Error(e.message), e.code ? { code: e.code } : {});
}

/** Files and bytes of one batch: one message per batch, so its cost (~0.3 ms) is paid per hundreds of files. */
const BATCH_FILES = 256;
const BATCH_BYTES = 256 * 1024;
/** Batches on the thread at once (~2 MiB at most): enough that it keeps writing while this thread decodes the next window's trees. */
const IN_FLIGHT = 8;

/**
 * Writes small restored files (docs/ARCHITECTURE.md "Restore"). Each file is verified here, on the
 * main thread, against its recorded size and SHA-256; its bytes are then copied into a batch that
 * the write thread turns into files (temp name, write, owner, mode, times, rename: ~8 system calls a
 * file, most of a tiny-file restore's time), while this thread fetches and decrypts the next bundles.
 * Inline, each file is written at once. Files with extended attributes are always written here, where
 * their warnings are told.
 */
export class SmallFileWriter {
  private worker: Worker | undefined;
  private files: BatchFile[] = [];
  private pieces: Buffer[] = [];
  private bytes = 0;
  private nextId = 0;
  private readonly sent = new Map<number, Waiter<void>>();
  private readonly inFlight: Promise<void>[] = [];
  private failure: unknown;

  constructor(
    private readonly mode: WriteThreadMode,
    private readonly xattrs: XattrWriter,
  ) {}

  /** Verify one small file and write it (or queue it); rejects with the first write failure. */
  async write(dir: ByteString, path: ByteString, entry: FileEntry, data: Buffer | undefined, tree: string): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const bytes = verifyWholeFile(path, entry, data, tree);
    if (this.mode === 'inline' || entry.xattrs?.length) return writeVerifiedFile(dir, path, entry, bytes, this.xattrs);
    this.files.push({ dir, path, name: entry.name, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime, offset: this.bytes, length: bytes.length });
    this.pieces.push(bytes);
    this.bytes += bytes.length;
    if (this.files.length >= BATCH_FILES || this.bytes >= BATCH_BYTES) await this.send();
  }

  /** Write what is queued; resolves once every file so far is in place. */
  async drain(): Promise<void> {
    await this.send();
    await Promise.all(this.inFlight);
  }

  /** Stop the thread, after the batches it holds are written (a batch cut short would leave temp files). */
  async close(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    const worker = this.worker;
    this.worker = undefined;
    worker?.removeAllListeners('exit');
    await worker?.terminate();
  }

  private async send(): Promise<void> {
    while (this.inFlight.length >= IN_FLIGHT) await this.inFlight[0];
    if (this.failure !== undefined) throw this.failure;
    // Another task's send may have taken the files while this one waited.
    if (this.files.length === 0) return;
    const buffer = new ArrayBuffer(this.bytes);
    const view = Buffer.from(buffer);
    let at = 0;
    for (const piece of this.pieces) at += piece.copy(view, at);
    const batch = { id: this.nextId++, buffer, files: this.files };
    this.files = [];
    this.pieces = [];
    this.bytes = 0;
    const { promise, waiter } = deferred<void>();
    const done = promise.finally(() => {
      this.inFlight.splice(this.inFlight.indexOf(done), 1);
      this.holdWhileBusy();
    });
    done.catch(() => undefined);
    this.inFlight.push(done);
    this.sent.set(batch.id, waiter);
    const worker = (this.worker ??= this.start());
    this.holdWhileBusy();
    worker.postMessage(batch, [buffer]);
  }

  /** The thread keeps the process alive only while it holds batches (see chunk-thread.ts holdWhileBusy). */
  private holdWhileBusy(): void {
    if (this.sent.size > 0) this.worker?.ref();
    else this.worker?.unref();
  }

  private start(): Worker {
    const worker = new Worker(new URL('./write-worker.js', import.meta.url), {
      // It holds one batch (≤256 KiB, transferred) at a time; a ceiling, not a reservation.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 1, stackSizeMb: 1 },
    });
    worker.unref();
    worker.on('message', (m: WriteReply) => {
      const waiter = this.sent.get(m.id);
      this.sent.delete(m.id);
      if ('error' in m) waiter?.reject(this.fail(replyError(m.error)));
      else waiter?.resolve();
    });
    const failed = (err: unknown): void => {
      this.fail(err);
      for (const waiter of this.sent.values()) waiter.reject(err);
      this.sent.clear();
    };
    worker.on('error', failed);
    worker.on('exit', (code) => failed(new Error(`write thread exited (code ${code})`)));
    return worker;
  }

  private fail(err: unknown): unknown {
    this.failure ??= err;
    return err;
  }
}
