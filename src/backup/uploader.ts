import { rm } from 'node:fs/promises';
import type { Repository } from '../repo/repository.js';
import { ByteBudget } from '../util/byte-budget.js';
import { TaskGroup } from '../util/task-group.js';

/** In-memory objects queued for upload at most, in bytes. */
const QUEUED_BYTES = 2 * 1024 * 1024;

/** Where an upload's bytes come from: a finished temp file (deleted once stored), or small bytes. */
export type UploadSource = { file: string; size: number } | { bytes: Buffer };

/**
 * The one bounded upload queue: finished temp files go to the repository, a few at a time, and are
 * deleted as soon as they are stored. Producers are held back by the temp-space budget, released here.
 * The first failed upload aborts the run's signal at once, so producers stop instead of filling the
 * temp dir, and `drain()` rethrows it.
 */
export class Uploader {
  private readonly group: TaskGroup;
  /** Bytes of in-memory objects (trees) queued: bounded, or a slow store would let them pile up. */
  private readonly queuedBytes: ByteBudget;

  constructor(
    private readonly repo: Repository,
    concurrency: number,
    private readonly budget: ByteBudget,
    signal: AbortSignal,
    private readonly onFailure: (err: unknown) => void,
    private readonly onStored: (name: string, size: number) => void,
  ) {
    this.group = new TaskGroup(concurrency, signal);
    this.queuedBytes = new ByteBudget(QUEUED_BYTES, signal);
  }

  /**
   * Queue a small object held in memory (a tree), waiting while QUEUED_BYTES of them are already
   * queued: a store that is slow to answer (an fsync per object) must hold the walk back.
   */
  async submitBytes(name: string, bytes: Buffer): Promise<void> {
    const size = Math.min(bytes.length, QUEUED_BYTES);
    await this.queuedBytes.reserve(size);
    this.submit(name, { bytes }, 0, () => this.queuedBytes.release(size));
  }

  /** Store `source` as object `name`, then delete its file and release `reserved` bytes of temp budget. */
  submit(name: string, source: UploadSource, reserved: number, onDone?: () => void): void {
    const release = async (): Promise<void> => {
      if ('file' in source) await rm(source.file, { force: true });
      this.budget.release(reserved);
      onDone?.();
    };
    this.group
      .run(async () => {
        try {
          await this.repo.put(name, 'file' in source ? { file: source.file, size: source.size, consumable: true } : source);
          this.onStored(name, 'file' in source ? source.size : source.bytes.length);
        } catch (err) {
          this.onFailure(err);
          throw err;
        } finally {
          await release();
        }
      })
      .catch(async (err: unknown) => {
        // No slot was given (the run already failed): the file is dropped all the same.
        await release();
        this.onFailure(err);
      });
  }

  /** Wait for every submitted upload; throws the first error. */
  async drain(): Promise<void> {
    await this.group.wait();
  }

  /** Wait for uploads in flight after a failure, so no temp file is left behind. */
  settle(): Promise<void> {
    return this.group.settle();
  }
}
