import { Worker } from 'node:worker_threads';
import type { ChunkReply, ChunkRequest } from './chunk-protocol.js';
import type { CutterSpec } from './spec.js';

/** Largest block `FileChunking.block` takes. */
export const CHUNK_BLOCK = 256 * 1024;

/** Slots of a file's ring: blocks handed to the thread and not answered yet. */
const SLOTS = 4;

/** Where chunks end in one block (offsets into it, ascending) and their ids. */
export interface BlockCuts {
  cuts: number[];
  ids: Buffer[];
}

/** The end of a file: its SHA-256 (hex) and the id of the chunk still open at the end, if any. */
export interface FileEnd {
  sha256: string;
  lastId?: Buffer;
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

function deferred<T>(): { promise: Promise<T>; waiter: Waiter<T> } {
  let waiter: Waiter<T> | undefined;
  const promise = new Promise<T>((resolve, reject) => (waiter = { resolve, reject }));
  promise.catch(() => undefined);
  return { promise, waiter: waiter as Waiter<T> };
}

const asBuffer = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/**
 * The chunking stage of a backup on its own thread: for each large file it finds chunk boundaries, hashes
 * the file (SHA-256) and names each chunk (HMAC-SHA256), while the main thread encrypts the blocks it
 * already has cut. That is half a backup's CPU moved to the pod's second core. Blocks are copied into a
 * small ring shared with the thread, so nothing is allocated per block. Started on first use; one small
 * V8 isolate (~9 MiB).
 */
export class ChunkThread {
  private worker: Worker | undefined;
  private failure: unknown;
  private readonly files = new Map<number, FileChunking>();
  /** Rings of finished files, reused: one per file chunked at once. */
  private readonly rings: SharedArrayBuffer[] = [];
  private nextStream = 0;

  constructor(
    private readonly cutter: CutterSpec,
    private readonly key: Buffer,
  ) {}

  /** Start chunking one file. */
  open(): FileChunking {
    const worker = (this.worker ??= this.start());
    const stream = this.nextStream++;
    const ring = this.rings.pop() ?? new SharedArrayBuffer(SLOTS * CHUNK_BLOCK);
    const done = (reusable: boolean): void => {
      this.files.delete(stream);
      if (reusable) this.rings.push(ring);
    };
    const file = new FileChunking(stream, ring, (m) => worker.postMessage(m), done);
    this.files.set(stream, file);
    if (this.failure !== undefined) file.fail(this.failure);
    else worker.postMessage({ stream, open: { key: this.key, cutter: this.cutter, ring, slotSize: CHUNK_BLOCK } } satisfies ChunkRequest);
    return file;
  }

  /** Stop the thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    worker?.removeAllListeners('exit');
    await worker?.terminate();
  }

  private start(): Worker {
    const worker = new Worker(new URL('./chunk-worker.js', import.meta.url), {
      // It holds two hash states and a cutter; blocks live in the shared ring.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1, stackSizeMb: 1 },
    });
    worker.unref();
    worker.on('message', (m: ChunkReply) => this.files.get(m.stream)?.receive(m));
    const fail = (err: unknown): void => {
      this.failure ??= err;
      for (const file of this.files.values()) file.fail(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`chunk thread exited (code ${code})`)));
    return worker;
  }
}

/** One file on the chunk thread; blocks go in file order and are answered in that order. */
export class FileChunking {
  private readonly slots: Buffer[];
  private nextSlot = 0;
  private readonly answers: Waiter<BlockCuts>[] = [];
  private room: Waiter<void> | undefined;
  private ending: Waiter<FileEnd> | undefined;
  private failure: unknown;

  constructor(
    private readonly stream: number,
    ring: SharedArrayBuffer,
    private readonly post: (m: ChunkRequest) => void,
    /** Called once the file is over; `reusable` when the thread is done with its ring. */
    private readonly done: (reusable: boolean) => void,
  ) {
    this.slots = Array.from({ length: SLOTS }, (_, i) => Buffer.from(ring, i * CHUNK_BLOCK, CHUNK_BLOCK));
  }

  /** Wait until a slot is free for the next block. */
  async ready(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    if (this.answers.length < SLOTS) return;
    const { promise, waiter } = deferred<void>();
    this.room = waiter;
    await promise;
  }

  /**
   * Hand over the next block (copied; call `ready` first). Resolves, once the thread has cut it, to where
   * chunks end in it: the caller keeps its own bytes to encrypt meanwhile.
   */
  block(data: Buffer): Promise<BlockCuts> {
    if (data.length > CHUNK_BLOCK) throw new RangeError(`chunk block of ${data.length} bytes exceeds ${CHUNK_BLOCK}`);
    if (this.answers.length >= SLOTS) throw new RangeError('no free slot: wait for ready()');
    const { promise, waiter } = deferred<BlockCuts>();
    if (this.failure !== undefined) {
      waiter.reject(this.failure);
      return promise;
    }
    const slot = this.nextSlot;
    this.nextSlot = (slot + 1) % SLOTS;
    data.copy(this.slots[slot] as Buffer);
    this.answers.push(waiter);
    this.post({ stream: this.stream, slot, length: data.length });
    return promise;
  }

  /** After the last block: the file's SHA-256 and the id of its unfinished last chunk. */
  end(): Promise<FileEnd> {
    const { promise, waiter } = deferred<FileEnd>();
    this.ending = waiter;
    if (this.failure !== undefined) waiter.reject(this.failure);
    else this.post({ stream: this.stream, end: true });
    return promise;
  }

  /** Drop the file on the thread after an error; safe at any point. */
  abandon(): void {
    if (this.ending === undefined && this.failure === undefined) this.post({ stream: this.stream, end: true });
    this.fail(new Error('chunking abandoned'));
  }

  /** Called by ChunkThread with this file's replies. */
  receive(m: ChunkReply): void {
    if ('error' in m) {
      this.fail(new Error(`chunk thread: ${m.error}`));
    } else if ('cuts' in m) {
      this.answers.shift()?.resolve({ cuts: m.cuts, ids: m.ids.map(asBuffer) });
      const room = this.room;
      this.room = undefined;
      room?.resolve();
    } else {
      this.ending?.resolve(m.lastId ? { sha256: m.sha256, lastId: asBuffer(m.lastId) } : { sha256: m.sha256 });
      this.done(true);
    }
  }

  /** Reject everything waiting: the thread failed. */
  fail(err: unknown): void {
    this.failure ??= err;
    this.room?.reject(err);
    this.room = undefined;
    for (const answer of this.answers.splice(0)) answer.reject(err);
    this.ending?.reject(err);
    this.done(false);
  }
}
