import { compareIds, RECORD_SIZE } from './records.js';
import type { RunWriter, SortedRun } from './sorted-run.js';

const READ_BUFFER_RECORDS = 205;
/** Size of the read buffer each merge input needs: whole records, about 16 KiB. */
export const MERGE_BUFFER_BYTES = READ_BUFFER_RECORDS * RECORD_SIZE;

/** Sequential reader over one run, with its current record's first id word cached for cheap comparisons. */
class Cursor {
  /** Byte offset of the current record in `buf`. */
  at = 0;
  private end = 0;
  private next = 0;
  head = 0;

  constructor(
    private readonly run: SortedRun,
    /** Position of the run among the inputs; the earlier run wins ties. */
    readonly rank: number,
    readonly buf: Buffer,
  ) {}

  /** Move to the next record; false when the run is exhausted. A promise only when the buffer is refilled. */
  advance(): boolean | Promise<boolean> {
    this.at += RECORD_SIZE;
    if (this.at >= this.end) return this.refill();
    this.head = this.buf.readUInt32BE(this.at);
    return true;
  }

  private async refill(): Promise<boolean> {
    const n = Math.min(READ_BUFFER_RECORDS, this.run.count - this.next);
    if (n === 0) return false;
    await this.run.read(this.buf, this.next, n);
    this.next += n;
    this.at = 0;
    this.end = n * RECORD_SIZE;
    this.head = this.buf.readUInt32BE(0);
    return true;
  }
}

function less(a: Cursor, b: Cursor): boolean {
  if (a.head !== b.head) return a.head < b.head;
  const cmp = compareIds(a.buf, a.at, b.buf, b.at);
  return cmp < 0 || (cmp === 0 && a.rank < b.rank);
}

/** Binary min-heap of cursors. */
class CursorHeap {
  private readonly items: Cursor[] = [];

  get size(): number {
    return this.items.length;
  }

  top(): Cursor {
    return this.items[0]!;
  }

  push(c: Cursor): void {
    const items = this.items;
    let i = items.push(c) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(c, items[parent]!)) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = c;
  }

  /** Restore heap order after the top cursor advanced. */
  siftTop(): void {
    const items = this.items;
    const c = items[0]!;
    const n = items.length;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && less(items[child + 1]!, items[child]!)) child++;
      if (!less(items[child]!, c)) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = c;
  }

  /** Remove the top cursor. */
  pop(): void {
    const last = this.items.pop()!;
    if (this.items.length === 0) return;
    this.items[0] = last;
    this.siftTop();
  }
}

/**
 * Merge sorted runs into `out`; for an id present in several runs, the record of the earliest run is kept.
 * `buffers` holds one MERGE_BUFFER_BYTES buffer per input.
 */
export async function mergeRuns(inputs: readonly SortedRun[], out: RunWriter, buffers: readonly Buffer[]): Promise<void> {
  const heap = new CursorHeap();
  for (const [rank, run] of inputs.entries()) {
    const cursor = new Cursor(run, rank, buffers[rank]!);
    if (await cursor.advance()) heap.push(cursor);
  }
  while (heap.size > 0) {
    const c = heap.top();
    const flushing = out.write(c.buf, c.at);
    if (flushing) await flushing;
    const more = c.advance();
    if (more === true || (more !== false && (await more))) heap.siftTop();
    else heap.pop();
  }
}
