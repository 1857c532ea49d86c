import { rm } from 'node:fs/promises';
import type { Target } from '../targets/target.js';
import { Limiter, type ByteBudget } from './budget.js';

/**
 * The one bounded upload queue: finished temp files go to the target, a few at a time, and are deleted
 * as soon as they are stored. Producers are held back by the temp-space budget, released here.
 */
export class Uploader {
  private readonly limiter: Limiter;
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown;

  constructor(
    private readonly target: Target,
    concurrency: number,
    private readonly budget: ByteBudget,
    private readonly onStored: (name: string, size: number) => void,
  ) {
    this.limiter = new Limiter(concurrency);
  }

  /** Store `path` as object `name`, then delete it and release `reserved` bytes of temp budget. */
  submit(name: string, path: string, size: number, reserved: number): void {
    const job = this.limiter
      .run(async () => {
        if (this.failure !== undefined) return;
        await this.target.put(name, { file: path, size, consumable: true });
        this.onStored(name, size);
      })
      .catch((err: unknown) => {
        this.failure ??= err;
      })
      .finally(async () => {
        await rm(path, { force: true });
        this.budget.release(reserved);
        this.pending.delete(job);
      });
    this.pending.add(job);
  }

  /** Throw the first upload error, so producers stop early instead of filling the temp dir. */
  check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Wait for every submitted upload; throws the first error. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    this.check();
  }
}
