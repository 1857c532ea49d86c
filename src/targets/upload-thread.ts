import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { TargetError } from '../errors.js';
import type { Location } from './location.js';
import type { ByteRange, ObjectInfo, PutSource, Target } from './target.js';
import type { UploadFailure, UploadReply, UploadRequest, WorkerTargetOptions } from './upload-protocol.js';
import { deferred, type Waiter } from '../util/deferred.js';

/** Below this memory limit `auto` uploads from the main thread: the upload thread costs ~45-60 MiB of peak RSS (measured). */
export const UPLOAD_THREAD_MIN_MEMORY = 256 * 1024 * 1024;

/** A TargetError as the upload thread reported it, with its message and whether it may be retried. */
class UploadThreadError extends TargetError {
  constructor(failure: UploadFailure) {
    super(failure.target, failure.object, failure.detail, { transient: failure.transient });
  }
}

/**
 * A network target whose file uploads run on a thread of their own, over a second connection. The SSH
 * and S3 clients spend about half of a backup's main-thread time framing, encrypting and sending; on
 * the upload thread that runs beside the encryption of the next chunks instead of taking turns with it
 * (1 GiB to sshd on two cores: 8.8-9.4 s instead of 10.1-11.3 s). The price is a second V8 heap with
 * the network client, its connection and the garbage it leaves between collections: ~45-60 MiB.
 * Everything else (reads, lists, small puts) stays on the main thread's connection.
 */
export class UploadThreadTarget implements Target {
  readonly description: string;
  private readonly worker: Worker;
  private readonly pending = new Map<number, Waiter<void>>();
  private readonly exited: Promise<void>;
  private nextId = 0;
  private failure: TargetError | undefined;

  constructor(
    private readonly inner: Target,
    location: Location,
    options: WorkerTargetOptions,
  ) {
    this.description = inner.description;
    this.worker = new Worker(new URL('./upload-worker.js', import.meta.url), {
      workerData: { location, options },
      // A ceiling, not a reservation: at 32 MiB the AWS SDK collected without pause (1 GiB to S3 took 28 s
      // instead of 11 s). A --max-old-space-size on the command line (the image's) takes precedence.
      resourceLimits: { maxOldGenerationSizeMb: 128 },
    });
    // Only puts in flight keep the process alive.
    this.worker.unref();
    this.worker.on('message', (m: UploadReply) => this.receive(m));
    this.worker.on('error', (err) => this.fail(`the upload thread failed: ${err.message}`));
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', (code) => {
        this.fail(`the upload thread exited (code ${code})`);
        resolve();
      });
    });
  }

  private fail(reason: string): void {
    this.failure ??= new TargetError(this.description, undefined, reason);
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }

  private receive(m: UploadReply): void {
    const waiter = this.pending.get(m.id);
    if (waiter === undefined) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    if (m.failure) waiter.reject(new UploadThreadError(m.failure));
    else waiter.resolve();
  }

  /** Files go to the upload thread; small in-memory objects are not worth the trip. */
  put(name: string, source: PutSource): Promise<void> {
    if ('bytes' in source) return this.inner.put(name, source);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    const { promise, waiter } = deferred<void>();
    this.pending.set(id, waiter);
    this.worker.ref();
    this.worker.postMessage({ kind: 'put', id, name, file: source.file, size: source.size } satisfies UploadRequest);
    return promise;
  }

  get(name: string, range?: ByteRange): Promise<Readable> {
    return this.inner.get(name, range);
  }

  head(name: string): Promise<ObjectInfo | undefined> {
    return this.inner.head(name);
  }

  list(dir: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(dir);
  }

  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }

  prepare(): Promise<void> {
    return this.inner.prepare();
  }

  /** Closes both connections and waits for the thread to end. */
  async close(): Promise<void> {
    if (this.failure === undefined) {
      this.worker.ref();
      this.worker.postMessage({ kind: 'close' } satisfies UploadRequest);
    }
    await Promise.all([this.inner.close(), this.exited]);
  }
}
