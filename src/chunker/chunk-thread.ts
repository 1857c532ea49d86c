import { Worker } from 'node:worker_threads';
import type { ChunkReply, ChunkRequest } from './chunk-protocol.js';
import { ChunkingService } from './chunking.js';
import { encodeSmallBatch, type SmallFile, type SmallRead } from './small-read.js';
import type { CutterSpec } from './spec.js';
import { asBuffer } from '../util/bytes.js';
import { deferred, type Waiter } from '../util/deferred.js';
import { holdWhileBusy, stopThread } from '../util/helper-thread.js';
import { HELPER_THREAD_MIN_MEMORY, threadWanted, type ThreadSetting } from '../util/memory-limit.js';

/** Bytes of one block: a read, and the unit the thread cuts. */
export const CHUNK_BLOCK = 256 * 1024;

/** Blocks a reader may have handed to the thread ahead of the one it is encrypting. */
export const BLOCKS_AHEAD = 3;

/** Slots of a file's ring: the blocks ahead, and the one being encrypted or read. */
const SLOTS = BLOCKS_AHEAD + 1;

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

/** Where chunking runs: on its own thread, or inline on the main thread when memory is tight. */
export type ChunkThreadMode = 'thread' | 'inline';

/** `auto` decides by the process's memory limit (a pod's cgroup limit; unconstrained counts as plenty). */
export function chunkThreadMode(setting: ThreadSetting): ChunkThreadMode {
  return threadWanted(setting, HELPER_THREAD_MIN_MEMORY) ? 'thread' : 'inline';
}

/**
 * The chunking stage of a backup: for each large file it finds chunk boundaries, hashes the file
 * (SHA-256) and names each chunk (HMAC-SHA256). On its own thread it does that while the main thread
 * encrypts the blocks already cut: half a backup's CPU moved to the pod's second core, for one small V8
 * isolate (~9 MiB). Inline, the same work answers at once on the main thread. Either way files are read
 * straight into a small ring of blocks shared with the chunker: no copies, no allocation per block.
 */
export class ChunkThread {
  private worker: Worker | undefined;
  private inline: ChunkingService | undefined;
  private failure: unknown;
  private readonly files = new Map<number, FileChunking>();
  private readonly smallReads = new Map<number, Waiter<{ buffer: ArrayBuffer; reads: SmallRead[] }>>();
  /** Rings of finished files, reused: one per file chunked at once. */
  private readonly rings: SharedArrayBuffer[] = [];
  private nextStream = 0;

  constructor(
    private readonly cutter: CutterSpec,
    private readonly key: Buffer,
    readonly mode: ChunkThreadMode = 'thread',
  ) {}

  /** Start chunking one file. */
  open(): FileChunking {
    const post = this.sender();
    const stream = this.nextStream++;
    const ring = this.rings.pop() ?? new SharedArrayBuffer(SLOTS * CHUNK_BLOCK);
    const done = (reusable: boolean): void => {
      this.files.delete(stream);
      if (reusable) this.rings.push(ring);
      this.holdWhileBusy();
    };
    const file = new FileChunking(stream, ring, post, done);
    this.files.set(stream, file);
    this.holdWhileBusy();
    if (this.failure !== undefined) file.fail(this.failure);
    else post({ stream, open: { key: this.key, cutter: this.cutter, ring, slotSize: CHUNK_BLOCK } });
    return file;
  }

  /**
   * Read, hash and name a batch of small files where the chunking runs: on the thread the main thread
   * goes on walking and packing meanwhile; inline it answers at once.
   */
  readSmall(files: SmallFile[]): Promise<{ buffer: ArrayBuffer; reads: SmallRead[] }> {
    const { promise, waiter } = deferred<{ buffer: ArrayBuffer; reads: SmallRead[] }>();
    const stream = this.nextStream++;
    if (this.failure !== undefined) waiter.reject(this.failure);
    else {
      const post = this.sender();
      this.smallReads.set(stream, waiter);
      this.holdWhileBusy();
      post({ stream, small: { key: this.key, batch: encodeSmallBatch(files) } });
    }
    return promise;
  }

  /** Stop the thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await stopThread(worker);
  }

  /** The thread holds the process while files or small reads are on it (util/helper-thread.ts). */
  private holdWhileBusy(): void {
    holdWhileBusy(this.worker, this.files.size > 0 || this.smallReads.size > 0);
  }

  private receive(m: ChunkReply): void {
    if ('reads' in m) {
      this.smallReads.get(m.stream)?.resolve(m);
      this.smallReads.delete(m.stream);
      this.holdWhileBusy();
      return;
    }
    if ('error' in m && this.smallReads.has(m.stream)) {
      this.smallReads.get(m.stream)!.reject(new Error(`chunk thread: ${m.error}`));
      this.smallReads.delete(m.stream);
      this.holdWhileBusy();
      return;
    }
    this.files.get(m.stream)?.receive(m);
  }

  private sender(): (m: ChunkRequest) => void {
    if (this.mode === 'inline') {
      const service = (this.inline ??= new ChunkingService());
      return (m) => service.handle(m, (reply) => this.receive(reply));
    }
    const worker = (this.worker ??= this.start());
    return (m) => worker.postMessage(m);
  }

  private start(): Worker {
    const worker = new Worker(new URL('./chunk-worker.js', import.meta.url), {
      // It holds two hash states and a cutter; blocks live in the shared ring. A ceiling, not a
      // reservation: at 8 MiB Node 24's isolate ran out of heap on a 2 MiB file under load.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 1, stackSizeMb: 1 },
    });
    worker.unref();
    worker.on('message', (m: ChunkReply) => this.receive(m));
    const fail = (err: unknown): void => {
      this.failure ??= err;
      for (const file of this.files.values()) file.fail(err);
      for (const read of this.smallReads.values()) read.reject(err);
      this.smallReads.clear();
      this.holdWhileBusy();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`chunk thread exited (code ${code})`)));
    return worker;
  }
}

/** A block of a file's ring: read into it, hand it to the thread, encrypt it, release it. */
export interface Slot {
  index: number;
  buf: Buffer;
}

/** One file on the chunk thread; blocks go in file order and are answered in that order. */
export class FileChunking {
  private readonly slots: Buffer[];
  private readonly free: number[];
  private readonly answers: Waiter<BlockCuts>[] = [];
  private ending: Waiter<FileEnd> | undefined;
  private failure: unknown;

  constructor(
    private readonly stream: number,
    ring: SharedArrayBuffer,
    private readonly post: (m: ChunkRequest) => void,
    /** Called once the file is over; `reusable` when no one uses its ring any more. */
    private readonly done: (reusable: boolean) => void,
  ) {
    this.slots = Array.from({ length: SLOTS }, (_, i) => Buffer.from(ring, i * CHUNK_BLOCK, CHUNK_BLOCK));
    this.free = this.slots.map((_, i) => SLOTS - 1 - i);
  }

  /** A free slot to read the next block into; a reader keeps at most BLOCKS_AHEAD + 1 at once. */
  take(): Slot {
    const index = this.free.pop();
    if (index === undefined) throw new RangeError(`all ${SLOTS} blocks of the ring are in use`);
    return { index, buf: this.slots[index] as Buffer };
  }

  /** Give a slot back once its bytes are encrypted (or it was read empty). */
  release(slot: Slot): void {
    this.free.push(slot.index);
  }

  /** Hand the `length` bytes read into `slot` to the thread; resolves to where chunks end in them. */
  cut(slot: Slot, length: number): Promise<BlockCuts> {
    const { promise, waiter } = deferred<BlockCuts>();
    if (this.failure !== undefined) waiter.reject(this.failure);
    else {
      this.answers.push(waiter);
      this.post({ stream: this.stream, slot: slot.index, length });
    }
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

  /** Drop the file on the thread after an error; its ring is not reused, as a read may still fill it. */
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
    } else if ('sha256' in m) {
      this.ending?.resolve(m.lastId ? { sha256: m.sha256, lastId: asBuffer(m.lastId) } : { sha256: m.sha256 });
      this.done(true);
    }
  }

  /** Reject everything waiting: the thread failed. */
  fail(err: unknown): void {
    this.failure ??= err;
    for (const answer of this.answers.splice(0)) answer.reject(err);
    this.ending?.reject(err);
    this.done(false);
  }
}
