/** A counting semaphore over bytes: callers wait until what they reserve fits under the limit. */
export class ByteBudget {
  private used = 0;
  private readonly waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(readonly limit: number) {}

  /** Wait until `bytes` fit, then hold them. */
  async reserve(bytes: number): Promise<void> {
    if (bytes > this.limit) throw new RangeError(`cannot reserve ${bytes} of ${this.limit} bytes`);
    if (this.waiters.length === 0 && this.used + bytes <= this.limit) {
      this.used += bytes;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push({ bytes, resolve }));
  }

  /** Give back bytes held by reserve. */
  release(bytes: number): void {
    this.used -= bytes;
    while (this.waiters.length > 0) {
      const next = this.waiters[0] as { bytes: number; resolve: () => void };
      if (this.used + next.bytes > this.limit) break;
      this.waiters.shift();
      this.used += next.bytes;
      next.resolve();
    }
  }
}

/** Run at most `limit` tasks at once. */
export class Limiter {
  private readonly budget: ByteBudget;

  constructor(limit: number) {
    this.budget = new ByteBudget(Math.max(1, limit));
  }

  /** Run `task` when a slot is free. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.budget.reserve(1);
    try {
      return await task();
    } finally {
      this.budget.release(1);
    }
  }
}
