import type { ChunkThread } from '../chunker/chunk-thread.js';
import type { SmallRead } from '../chunker/small-read.js';
import type { Content } from '../repo/tree/entry.js';
import { deferred, type Waiter } from '../util/deferred.js';
import type { Packer } from './packer.js';
import type { RunIndex } from './run-index.js';
import type { WalkItem } from './walker.js';

/** What storing a small file produced; `grew` sends it to the large-file path instead. */
export type SmallResult = { size: number; sha256: string; content: Content; changed: boolean; xattrs?: [Buffer, Buffer][] } | { grew: true };

/** Files gathered before a batch is read: per-call costs are paid per batch, not per file. */
const BATCH_FILES = 128;
const BATCH_BYTES = 1024 * 1024;
/** Batches being read at once: the chunk thread reads the next while this thread packs the last. */
const READING = 2;

interface Queued {
  item: WalkItem;
  waiter: Waiter<SmallResult>;
}

/** An error the chunk thread reported for one file, rebuilt with its code so it reads like fs's. */
function fileError(e: { message: string; code?: string }): Error {
  return Object.assign(new Error(e.message), e.code ? { code: e.code } : {});
}

/**
 * The small-file stage of a backup. A file's whole content is one blob, so per-file overhead decides
 * the speed (restic backs up 100,000 tiny files in ~5 s here): files are read in batches with
 * synchronous calls on the chunk thread (the async fs API costs ~100 us of main-thread time per call
 * on two cores), hashed and named there, looked up together here, and new blobs go into the packer's
 * open bundle, where one cipher and one deflate serve hundreds of files.
 */
export class SmallFiles {
  private queue: Queued[] = [];
  /** The items of `queue`, to tell whether one is still waiting for its batch to be sent. */
  private queuedItems = new WeakSet<WalkItem>();
  private queuedBytes = 0;
  /** Batches read or being read, in order; each is packed after the one before it. */
  private packing: Promise<void> = Promise.resolve();
  private reading = 0;
  private failure: unknown;

  constructor(
    private readonly chunker: ChunkThread,
    private readonly index: RunIndex,
    private readonly packer: Packer,
    private readonly onRead: (bytes: number) => void,
    private readonly onAdded: (bytes: number) => void,
  ) {}

  /** Queue a small file; resolves once it is stored (or known). */
  add(item: WalkItem): Promise<SmallResult> {
    const { promise, waiter } = deferred<SmallResult>();
    this.queue.push({ item, waiter });
    this.queuedItems.add(item);
    this.queuedBytes += item.stat.size + 1;
    if (this.queue.length >= BATCH_FILES || this.queuedBytes >= BATCH_BYTES) void this.flush().catch(() => undefined);
    return promise;
  }

  /** Whether `item` waits in the batch being gathered (not sent to be read yet). */
  isQueued(item: WalkItem): boolean {
    return this.queuedItems.has(item);
  }

  /** Start reading what is queued; resolves once every batch so far is packed. Rejects with a storage failure. */
  async flush(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      this.queuedItems = new WeakSet();
      this.queuedBytes = 0;
      // A bounded number of batches are read ahead; more wait for the packing before them.
      while (this.reading >= READING) await this.packing.catch(() => undefined);
      this.reading++;
      const read = this.chunker.readSmall(
        batch.map(({ item }) => ({ path: item.absolute, size: item.stat.size, mtime: item.stat.mtime, ctime: item.stat.ctime })),
      );
      read.catch(() => undefined);
      const previous = this.packing;
      this.packing = (async () => {
        await previous.catch(() => undefined);
        try {
          const { buffer, reads } = await read;
          await this.pack(batch, Buffer.from(buffer), reads);
        } catch (err) {
          this.failure ??= err;
          for (const q of batch) q.waiter.reject(err);
          throw err;
        } finally {
          this.reading--;
        }
      })();
      this.packing.catch(() => undefined);
    }
    await this.packing;
  }

  /** Look the batch's ids up together, put new blobs into the open bundle, and answer each file. */
  private async pack(batch: Queued[], bytes: Buffer, reads: SmallRead[]): Promise<void> {
    const done: { q: Queued; r: Extract<SmallRead, { id: Uint8Array }>; id: Buffer; data: Buffer }[] = [];
    batch.forEach((q, i) => {
      const r = reads[i]!;
      if ('grew' in r) q.waiter.resolve(r);
      else if ('error' in r) q.waiter.reject(fileError(r.error));
      else done.push({ q, r, id: Buffer.from(r.id), data: bytes.subarray(r.offset, r.offset + r.length) });
    });
    const known = await Promise.all(done.map((d) => (d.data.length === 0 ? true : this.index.has(d.id))));
    const sealing: Promise<void>[] = [];
    done.forEach(({ q, r, id, data }, i) => {
      this.onRead(data.length);
      if (data.length > 0 && !known[i] && this.index.claim(id)) {
        sealing.push(this.packer.add(id, data));
        this.onAdded(data.length);
      }
      const content: Content = { parts: data.length === 0 ? [] : [{ id: id.toString('hex'), length: data.length }] };
      const xattrs = r.xattrs?.map(([n, v]) => [Buffer.from(n), Buffer.from(v)] as [Buffer, Buffer]);
      q.waiter.resolve({ size: data.length, sha256: r.sha256, content, changed: r.changed, ...(xattrs ? { xattrs } : {}) });
    });
    await Promise.all(sealing);
  }
}
