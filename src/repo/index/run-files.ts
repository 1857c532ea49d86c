import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MERGE_BUFFER_BYTES, mergeRuns } from './merge.js';
import { RECORD_SIZE } from './records.js';
import { RecordSorter } from './sort.js';
import { RunWriter, WRITE_BUFFER_BYTES, type SortedRun } from './sorted-run.js';

/**
 * Creates and deletes the run files of one index in its folder. The sort, write and merge buffers are
 * allocated once and reused, so memory does not depend on how many runs are written or merged; callers
 * must therefore not write or merge two runs at the same time.
 */
export class RunFiles {
  private seq = 0;
  /** Runs created here that are not retired yet, so that remove() can close them. */
  private readonly live = new Set<SortedRun>();
  private readonly sorter: RecordSorter;
  private readonly writeBuffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private readonly mergeBuffers: Buffer[] = [];

  constructor(
    readonly dir: string,
    sortCapacity: number,
  ) {
    this.sorter = new RecordSorter(sortCapacity);
  }

  /** Write the first `count` records of `buf` as a sorted run. */
  async writeSorted(buf: Buffer, count: number): Promise<SortedRun> {
    const order = this.sorter.sort(buf, count);
    const writer = await RunWriter.create(this.nextPath(), count, this.writeBuffer);
    for (let i = 0; i < count; i++) {
      const flushing = writer.write(buf, order[i]! * RECORD_SIZE);
      if (flushing) await flushing;
    }
    return this.track(await writer.finish());
  }

  /** Merge `inputs` into one new run; the earlier input wins for repeated ids. */
  async merge(inputs: readonly SortedRun[]): Promise<SortedRun> {
    while (this.mergeBuffers.length < inputs.length) this.mergeBuffers.push(Buffer.allocUnsafe(MERGE_BUFFER_BYTES));
    const writer = await RunWriter.create(this.nextPath(), inputs.reduce((n, r) => n + r.count, 0), this.writeBuffer);
    try {
      await mergeRuns(inputs, writer, this.mergeBuffers);
    } catch (err) {
      await writer.abort();
      throw err;
    }
    return this.track(await writer.finish());
  }

  /** Merge runs, `fanIn` at a time and keeping their order, until one is left. */
  async mergeAll(runs: SortedRun[], fanIn: number): Promise<SortedRun> {
    while (runs.length > 1) {
      const next: SortedRun[] = [];
      for (let i = 0; i < runs.length; i += fanIn) {
        const group = runs.slice(i, i + fanIn);
        if (group.length === 1) {
          next.push(group[0]!);
          continue;
        }
        next.push(await this.merge(group));
        await this.retire(group);
      }
      runs = next;
    }
    return runs[0]!;
  }

  /** Delete runs that were merged; lookups still reading them finish first. */
  async retire(runs: readonly SortedRun[]): Promise<void> {
    for (const run of runs) {
      this.live.delete(run);
      await run.retire();
    }
  }

  /** Close every live run and delete the folder. */
  async remove(): Promise<void> {
    await Promise.allSettled([...this.live].map((run) => run.close()));
    this.live.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  private track(run: SortedRun): SortedRun {
    this.live.add(run);
    return run;
  }

  private nextPath(): string {
    return join(this.dir, `run-${this.seq++}`);
  }
}
