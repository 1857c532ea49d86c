import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundError, TargetError } from '../errors.js';
import type { ByteRange, ObjectInfo, PutSource, Target } from './target.js';

/** How a RetryingTarget retries transient errors. */
export interface RetryOptions {
  /** Retries after the first attempt; 0 disables retrying. */
  retries: number;
  /** Cap of the first backoff; each further retry doubles it (full jitter picks uniformly below the cap). */
  baseDelayMs?: number;
  /** Largest backoff cap. */
  maxDelayMs?: number;
  /** Called before each retry, e.g. to log it. */
  onRetry?: (err: TargetError, attempt: number, delayMs: number) => void;
  /** Stops waiting and retrying once aborted (the job is being cancelled). */
  signal?: AbortSignal;
}

const DEFAULT_BASE_DELAY_MS = 500;
const DEFAULT_MAX_DELAY_MS = 30_000;

/** True for errors worth another attempt: transient target errors only, never auth or missing objects. */
export function isRetryable(err: unknown): err is TargetError {
  return err instanceof TargetError && err.transient;
}

/**
 * Wraps any target and retries its transient failures with exponential backoff and full jitter, a
 * bounded number of times, so the backends stay plain (restic's backend_retry shape). Puts are
 * retried from their source again: a file is re-opened by the backend on every attempt.
 */
export class RetryingTarget implements Target {
  readonly description: string;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly inner: Target,
    private readonly options: RetryOptions,
  ) {
    this.description = inner.description;
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  }

  private async retry<T>(operation: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await operation();
      } catch (err) {
        if (!isRetryable(err)) throw err;
        await this.backOff(err, attempt);
      }
    }
  }

  /** Wait before another attempt after `attempt` failed ones; throws the error instead when no retry is left. */
  private async backOff(err: TargetError, attempt: number): Promise<void> {
    if (attempt > this.options.retries || this.options.signal?.aborted) throw gaveUp(err, attempt);
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.round(Math.random() * cap);
    this.options.onRetry?.(err, attempt, delayMs);
    try {
      await sleep(delayMs, undefined, { signal: this.options.signal });
    } catch {
      throw gaveUp(err, attempt);
    }
  }

  put(name: string, source: PutSource): Promise<void> {
    return this.retry(() => this.inner.put(name, source));
  }

  /**
   * Retries until the stream is established; a transient failure after that (a reset, a dropped SSH
   * connection) asks for the rest of the range again, so a long read survives what a short one would.
   * Objects are immutable, so the pieces join up; readers still check every byte (AEAD, keyed ids).
   */
  async get(name: string, range?: ByteRange): Promise<Readable> {
    const current = { stream: await this.open(name, range) };
    const out = Readable.from(this.resuming(name, range, current), { objectMode: false });
    // A reader that stops early releases the request in flight at once, not at its next byte.
    out.once('close', () => current.stream.destroy());
    return out;
  }

  /** The bytes of `current.stream`, and after a transient failure those of a new request from where it broke off. */
  private async *resuming(name: string, range: ByteRange | undefined, current: { stream: Readable }): AsyncGenerator<Buffer> {
    let delivered = 0;
    // Failures in a row without a byte in between; any progress starts the count again.
    let failures = 0;
    for (;;) {
      try {
        for await (const piece of current.stream as AsyncIterable<Buffer>) {
          delivered += piece.length;
          failures = 0;
          yield piece;
        }
        return;
      } catch (err) {
        if (!isRetryable(err)) throw err;
        await this.backOff(err, ++failures);
      }
      const end = range ? range.offset + range.length : (await this.retry(() => this.inner.head(name)))?.size;
      if (end === undefined) throw new NotFoundError(this.description, name);
      const offset = (range?.offset ?? 0) + delivered;
      if (offset >= end) return;
      current.stream = await this.open(name, { offset, length: end - offset });
    }
  }

  /** One request for `range`, retried until it answers. */
  private async open(name: string, range: ByteRange | undefined): Promise<Readable> {
    const stream = await this.retry(() => this.inner.get(name, range));
    // A request opened ahead may break before anyone reads it: its error waits for the reader, it must not end the process.
    stream.on('error', () => undefined);
    return stream;
  }

  head(name: string): Promise<ObjectInfo | undefined> {
    return this.retry(() => this.inner.head(name));
  }

  /** Retries a listing that fails before its first object; later a restart would repeat objects. */
  async *list(dir: string): AsyncIterable<ObjectInfo> {
    let iterator!: AsyncIterator<ObjectInfo>;
    let next = await this.retry(() => {
      iterator = this.inner.list(dir)[Symbol.asyncIterator]();
      return iterator.next();
    });
    try {
      for (; !next.done; next = await iterator.next()) yield next.value;
    } finally {
      if (!next.done) await iterator.return?.();
    }
  }

  delete(name: string): Promise<void> {
    return this.retry(() => this.inner.delete(name));
  }

  prepare(): Promise<void> {
    return this.retry(() => this.inner.prepare());
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The last error again, saying how many attempts were made, so the one-line message explains the wait. */
function gaveUp(err: TargetError, attempts: number): TargetError {
  if (attempts === 1) return err;
  const prefix = `${err.target}${err.object ? ` ${err.object}` : ''}: `;
  const detail = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  return new TargetError(err.target, err.object, `${detail} (gave up after ${attempts} attempts)`, { transient: true, cause: err });
}
