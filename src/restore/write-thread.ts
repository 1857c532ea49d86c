import { Worker } from 'node:worker_threads';
import { RestoreWriteError } from '../errors.js';
import { deferred, type Waiter } from '../util/deferred.js';
import { holdWhileBusy, stopThread } from '../util/helper-thread.js';
import { HELPER_THREAD_MIN_MEMORY, threadWanted, type ThreadSetting } from '../util/memory-limit.js';
import type { WriteFailure, WriteOp, WriteReply } from './write-protocol.js';

/** Where restored files are written: on a thread of their own, or on the main thread. */
export type WriteThreadMode = 'thread' | 'inline';

/** `auto` decides by the process's memory limit, as the chunk thread does. */
export function writeThreadMode(setting: ThreadSetting): WriteThreadMode {
  return threadWanted(setting, HELPER_THREAD_MIN_MEMORY) ? 'thread' : 'inline';
}

/** The write thread's error, rebuilt on this side of the thread boundary. */
function replyError(e: WriteFailure): Error {
  if (e.path !== undefined && e.code !== undefined && e.detail !== undefined) return new RestoreWriteError(e.path, e.code, e.detail);
  return Object.assign(new Error(e.message), e.code ? { code: e.code } : {});
}

/** Bytes of one slot of the ring large files' bytes cross in. */
export const SLOT_BYTES = 512 * 1024;
/** Slots of the ring (2 MiB): the batches of large files on the thread at once. */
export const RING_SLOTS = 4;

/** A slot of the ring, for the caller to fill. */
export interface RingSlot {
  index: number;
  buf: Buffer;
}

/**
 * The restore's write thread (docs/ARCHITECTURE.md "Restore"): it takes requests in order and answers
 * each (write-protocol.ts). It is started on the first request and holds the process only while it
 * has requests; if it dies, every request waiting and every later one fails. Large files' bytes
 * cross in a ring of shared slots rather than a fresh buffer per batch: gigabytes of allocations
 * would each add to the garbage collector's work on the main thread.
 */
export class WriteThread {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly sent = new Map<number, Waiter<string | undefined>>();
  private failure: unknown;
  private readonly ring = new SharedArrayBuffer(RING_SLOTS * SLOT_BYTES);
  private readonly free = Array.from({ length: RING_SLOTS }, (_, i) => RING_SLOTS - 1 - i);
  private readonly slotWaiters: Waiter<void>[] = [];

  /** A free slot of the ring, once there is one. */
  async slot(): Promise<RingSlot> {
    while (this.free.length === 0) {
      const { promise, waiter } = deferred<void>();
      this.slotWaiters.push(waiter);
      await promise;
    }
    const index = this.free.pop()!;
    return { index, buf: Buffer.from(this.ring, index * SLOT_BYTES, SLOT_BYTES) };
  }

  /** Write the first `length` bytes of a filled slot as large file `file`'s bytes from `at`; the slot is free again once they are written. */
  write(file: number, at: number, slot: RingSlot, length: number): Promise<unknown> {
    return this.request({ data: { file, at, slot: slot.index, length } }).finally(() => {
      this.free.push(slot.index);
      this.slotWaiters.shift()?.resolve();
    });
  }

  /** Send one operation (the buffers listed are transferred); resolves with its reply (an `end`'s SHA-256). */
  request(op: WriteOp, transfer: ArrayBuffer[] = []): Promise<string | undefined> {
    const { promise, waiter } = deferred<string | undefined>();
    if (this.failure !== undefined) {
      waiter.reject(this.failure);
      return promise;
    }
    const id = this.nextId++;
    this.sent.set(id, waiter);
    const worker = (this.worker ??= this.start());
    this.holdWhileBusy();
    worker.postMessage({ ...op, id }, transfer);
    return promise;
  }

  /** Stop the thread; the caller has waited for what it sent (a batch cut short would leave temp files). */
  async close(): Promise<void> {
    await stopThread(this.worker);
    this.worker = undefined;
  }

  /** The thread holds the process only while it has requests (util/helper-thread.ts). */
  private holdWhileBusy(): void {
    holdWhileBusy(this.worker, this.sent.size > 0);
  }

  private start(): Worker {
    const worker = new Worker(new URL('./write-worker.js', import.meta.url), {
      workerData: this.ring,
      // It holds a batch of small files (≤256 KiB, transferred) at a time; a ceiling, not a reservation.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 1, stackSizeMb: 1 },
    });
    worker.unref();
    worker.on('message', (m: WriteReply) => {
      const waiter = this.sent.get(m.id);
      this.sent.delete(m.id);
      this.holdWhileBusy();
      if ('error' in m) waiter?.reject(replyError(m.error));
      else waiter?.resolve(m.sha256);
    });
    const failed = (err: unknown): void => {
      this.failure ??= err;
      for (const waiter of this.sent.values()) waiter.reject(err);
      this.sent.clear();
      this.holdWhileBusy();
    };
    worker.on('error', failed);
    worker.on('exit', (code) => failed(new Error(`write thread exited (code ${code})`)));
    return worker;
  }
}
