import { ByteBudget } from './byte-budget.js';

/**
 * Tasks run at most `concurrency` at a time; the first failure aborts the group's signal, so the
 * others stop at their next check, and `wait()` rethrows it. Nothing fails silently: an error that
 * happens while nobody waits is kept for the next `run` or `wait`.
 */
export class TaskGroup {
  private readonly controller = new AbortController();
  private readonly slots: ByteBudget;
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(concurrency: number, parent?: AbortSignal) {
    this.signal = parent ? AbortSignal.any([parent, this.controller.signal]) : this.controller.signal;
    this.slots = new ByteBudget(Math.max(1, concurrency), this.signal);
  }

  /** Aborted when a task failed or the parent signal fired; tasks should pass it on. */
  readonly signal: AbortSignal;

  /** Start `task` when a slot is free (waiting for one); throws the group's first failure. */
  async run(task: (signal: AbortSignal) => Promise<void>): Promise<void> {
    this.check();
    await this.slots.reserve(1);
    const job = (async () => {
      try {
        await task(this.signal);
      } catch (error) {
        if (this.failure === undefined) {
          this.failure = { error };
          this.controller.abort(error);
        }
      } finally {
        this.slots.release(1);
      }
    })();
    this.running.add(job);
    void job.finally(() => this.running.delete(job));
  }

  /** Throw the first failure, if any task failed. */
  check(): void {
    if (this.failure) throw this.failure.error;
    this.signal.throwIfAborted();
  }

  /** Wait until every started task has ended; throws the first failure. */
  async wait(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    this.check();
  }

  /** Wait for every started task, ignoring failures (for cleanup paths). */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
