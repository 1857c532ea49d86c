import { compareIds, RECORD_SIZE } from './records.js';

/** Most records one in-memory sort handles: the record number must fit in the low 16 bits of a sort key. */
export const MAX_SORT_RECORDS = 65536;
const INDEX_BITS = 2 ** 16;

/** The first 37 bits of the id of record `r`, as a number. */
function prefix37(buf: Buffer, r: number): number {
  const at = r * RECORD_SIZE;
  return buf[at]! * 2 ** 29 + buf[at + 1]! * 2 ** 21 + buf[at + 2]! * 2 ** 13 + buf[at + 3]! * 2 ** 5 + (buf[at + 4]! >>> 3);
}

function compareRecords(buf: Buffer, a: number, b: number): number {
  return compareIds(buf, a * RECORD_SIZE, buf, b * RECORD_SIZE) || a - b;
}

/**
 * Sorts records by id, reusing its scratch arrays so that repeated sorts allocate nothing. Keys pack 37
 * id bits above the record number into a double so the native numeric sort does almost all the work;
 * the rare runs of equal 37-bit prefixes are then ordered by full id.
 */
export class RecordSorter {
  private readonly keys: Float64Array;
  private readonly order: Uint32Array;

  constructor(capacity: number) {
    if (capacity > MAX_SORT_RECORDS) throw new RangeError(`cannot sort more than ${MAX_SORT_RECORDS} records at once, got ${capacity}`);
    this.keys = new Float64Array(capacity);
    this.order = new Uint32Array(capacity);
  }

  /** Record numbers of the first `count` records of `buf` in ascending id order, equal ids in input order; valid until the next call. */
  sort(buf: Buffer, count: number): Uint32Array {
    if (count > this.keys.length) throw new RangeError(`sorter holds ${this.keys.length} records, asked to sort ${count}`);
    const keys = this.keys.subarray(0, count);
    const order = this.order.subarray(0, count);
    for (let r = 0; r < count; r++) keys[r] = prefix37(buf, r) * INDEX_BITS + r;
    keys.sort();
    for (let i = 0; i < count; i++) order[i] = keys[i]! % INDEX_BITS;
    for (let i = 0; i < count; ) {
      let j = i + 1;
      const prefix = Math.floor(keys[i]! / INDEX_BITS);
      while (j < count && Math.floor(keys[j]! / INDEX_BITS) === prefix) j++;
      if (j - i > 1) order.subarray(i, j).sort((a, b) => compareRecords(buf, a, b));
      i = j;
    }
    return order;
  }
}
