import { Worker } from 'node:worker_threads';

/** Largest block `FileHash.block` takes. */
export const HASH_BLOCK = 256 * 1024;

/** Slots of a file's ring: blocks handed to the thread and not yet done with. */
const SLOTS = 4;
/** Bytes per slot. */
const SLOT_SIZE = HASH_BLOCK;

/** Main thread -> hash thread. A block is `length` bytes in slot `slot` of the stream's shared ring. */
type Request =
  | { stream: number; key: Uint8Array; ring: SharedArrayBuffer; slotSize: number }
  | { stream: number; slot: number; length: number }
  | { stream: number; cut: number }
  | { stream: number; end: boolean };

/** Hash thread -> main thread: a slot is free again, a chunk's id, or a file's SHA-256. */
type Reply = { stream: number; freed: true } | { stream: number; id: Uint8Array } | { stream: number; sha256: string };

/**
 * Source of the hash thread, kept as plain JavaScript so that no transpiler rewrites it (the messages
 * are Request and Reply above). Per stream: SHA-256 of every block, and HMAC-SHA256 of the bytes between
 * cuts (chunk ids). A block's slot is freed when the next block arrives: cuts in it are known by then.
 */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash, createHmac } = require('node:crypto');
const streams = new Map();
const release = (stream, s) => {
  if (s.block === undefined) return;
  s.id.update(s.block.subarray(s.from));
  s.block = undefined;
  parentPort.postMessage({ stream, freed: true });
};
parentPort.on('message', (m) => {
  if ('key' in m) {
    streams.set(m.stream, { key: m.key, ring: m.ring, slotSize: m.slotSize, file: createHash('sha256'), id: createHmac('sha256', m.key), block: undefined, from: 0 });
    return;
  }
  const s = streams.get(m.stream);
  if ('slot' in m) {
    release(m.stream, s);
    s.block = new Uint8Array(s.ring, m.slot * s.slotSize, m.length);
    s.from = 0;
    s.file.update(s.block);
  } else if ('cut' in m) {
    s.id.update(s.block.subarray(s.from, m.cut));
    s.from = m.cut;
    parentPort.postMessage({ stream: m.stream, id: s.id.digest() });
    s.id = createHmac('sha256', s.key);
  } else {
    release(m.stream, s);
    if (m.end) parentPort.postMessage({ stream: m.stream, id: s.id.digest() });
    parentPort.postMessage({ stream: m.stream, sha256: s.file.digest('hex') });
    streams.delete(m.stream);
  }
});
`;

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

/**
 * A thread that hashes large files while the main thread cuts and encrypts them: the file's SHA-256 and
 * the keyed chunk ids are a third of a backup's CPU, and a pod has more than one core to run them on.
 * Blocks are copied into a small ring shared with the thread, so nothing is allocated per block.
 * Started on first use; costs one small V8 isolate (~9 MiB).
 */
export class HashThread {
  private worker: Worker | undefined;
  private failure: unknown;
  private readonly files = new Map<number, FileHash>();
  /** Rings of finished files, reused: one per file hashed at once. */
  private readonly rings: SharedArrayBuffer[] = [];
  private nextStream = 0;

  /** Start hashing one file with `key` for its chunk ids. */
  open(key: Buffer): FileHash {
    const worker = (this.worker ??= this.start());
    const stream = this.nextStream++;
    const ring = this.rings.pop() ?? new SharedArrayBuffer(SLOTS * SLOT_SIZE);
    const done = (reusable: boolean): void => {
      this.files.delete(stream);
      if (reusable) this.rings.push(ring);
    };
    const file = new FileHash(stream, ring, (m) => worker.postMessage(m), done);
    this.files.set(stream, file);
    if (this.failure !== undefined) file.fail(this.failure);
    else worker.postMessage({ stream, key, ring, slotSize: SLOT_SIZE });
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
    const worker = new Worker(THREAD_SOURCE, {
      eval: true,
      // It holds a few blocks and two hash states: a small heap is plenty.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1, stackSizeMb: 1 },
    });
    worker.unref();
    worker.on('message', (m: Reply) => this.files.get(m.stream)?.receive(m));
    const fail = (err: unknown): void => {
      this.failure ??= err;
      for (const file of this.files.values()) file.fail(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`hash thread exited (code ${code})`)));
    return worker;
  }
}

/** One file being hashed on the hash thread; calls must follow the file's byte order. */
export class FileHash {
  private readonly slots: Buffer[];
  private nextSlot = 0;
  private inFlight = 0;
  private room: Waiter<void> | undefined;
  private readonly ids: Waiter<Buffer>[] = [];
  private digest: Waiter<string> | undefined;
  private failure: unknown;

  constructor(
    private readonly stream: number,
    ring: SharedArrayBuffer,
    private readonly post: (m: Request) => void,
    /** Called once the file is over; `reusable` when the thread is done with its ring. */
    private readonly done: (reusable: boolean) => void,
  ) {
    this.slots = Array.from({ length: SLOTS }, (_, i) => Buffer.from(ring, i * SLOT_SIZE, SLOT_SIZE));
  }

  /** Hand over the next block (copied into the ring); waits while every slot is in use. */
  async block(data: Buffer): Promise<void> {
    if (data.length > SLOT_SIZE) throw new RangeError(`hash block of ${data.length} bytes exceeds ${SLOT_SIZE}`);
    if (this.failure !== undefined) throw this.failure;
    if (this.inFlight >= SLOTS) {
      const { promise, waiter } = deferred<void>();
      this.room = waiter;
      await promise;
    }
    this.inFlight++;
    const slot = this.nextSlot;
    this.nextSlot = (slot + 1) % SLOTS;
    data.copy(this.slots[slot] as Buffer);
    this.post({ stream: this.stream, slot, length: data.length });
  }

  /** A chunk ends `offset` bytes into the last block; resolves to its id. */
  cut(offset: number): Promise<Buffer> {
    this.post({ stream: this.stream, cut: offset });
    return this.expectId();
  }

  /** The file's SHA-256 (hex); with `lastChunk`, also the id of the chunk still open at the end. */
  async end(lastChunk: boolean): Promise<{ sha256: string; lastId?: Promise<Buffer> }> {
    const lastId = lastChunk ? this.expectId() : undefined;
    const { promise, waiter } = deferred<string>();
    this.digest = waiter;
    if (this.failure !== undefined) waiter.reject(this.failure);
    else this.post({ stream: this.stream, end: lastChunk });
    const sha256 = await promise;
    return lastId ? { sha256, lastId } : { sha256 };
  }

  /** Drop the file's state on the thread (after an error); safe to call more than once. */
  abandon(): void {
    if (this.digest === undefined && this.failure === undefined) this.post({ stream: this.stream, end: false });
    this.fail(new Error('hashing abandoned'));
  }

  /** Called by HashThread with this file's replies. */
  receive(m: Reply): void {
    if ('freed' in m) {
      this.inFlight--;
      const room = this.room;
      this.room = undefined;
      room?.resolve();
    } else if ('id' in m) {
      this.ids.shift()?.resolve(Buffer.from(m.id.buffer, m.id.byteOffset, m.id.byteLength));
    } else {
      this.digest?.resolve(m.sha256);
      this.done(true);
    }
  }

  /** Reject everything waiting: the thread failed. */
  fail(err: unknown): void {
    this.failure ??= err;
    this.room?.reject(err);
    this.room = undefined;
    for (const id of this.ids.splice(0)) id.reject(err);
    this.digest?.reject(err);
    this.done(false);
  }

  private expectId(): Promise<Buffer> {
    const { promise, waiter } = deferred<Buffer>();
    if (this.failure !== undefined) waiter.reject(this.failure);
    else this.ids.push(waiter);
    return promise;
  }
}
