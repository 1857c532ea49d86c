/** A counting semaphore over bytes: callers wait until what they reserve fits under the limit. */
export class ByteBudget {
  private used = 0;
  private readonly waiters: { bytes: number; resolve: () => void; reject: (err: unknown) => void }[] = [];

  /** `signal` cancels every waiter (and every later reserve) with its reason. */
  constructor(
    readonly limit: number,
    private readonly signal?: AbortSignal,
  ) {
    signal?.addEventListener('abort', () => {
      for (const w of this.waiters.splice(0)) w.reject(signal.reason);
    }, { once: true });
  }

  /** Bytes held right now. */
  get inUse(): number {
    return this.used;
  }

  /** Wait until `bytes` fit, then hold them; rejects with the signal's reason once cancelled. */
  async reserve(bytes: number): Promise<void> {
    if (bytes > this.limit) throw new RangeError(`cannot reserve ${bytes} of ${this.limit} bytes`);
    this.signal?.throwIfAborted();
    if (this.waiters.length === 0 && this.used + bytes <= this.limit) {
      this.used += bytes;
      return;
    }
    await new Promise<void>((resolve, reject) => this.waiters.push({ bytes, resolve, reject }));
  }

  /** Give back bytes held by reserve. */
  release(bytes: number): void {
    this.used -= bytes;
    while (this.waiters.length > 0) {
      const next = this.waiters[0]!;
      if (this.used + next.bytes > this.limit) break;
      this.waiters.shift();
      this.used += next.bytes;
      next.resolve();
    }
  }

  /** Run `task` holding `bytes`. */
  async with<T>(bytes: number, task: () => Promise<T>): Promise<T> {
    await this.reserve(bytes);
    try {
      return await task();
    } finally {
      this.release(bytes);
    }
  }
}
