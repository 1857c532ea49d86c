import { compareIds, encodeRecord, RECORD_SIZE, type BlobLocation } from './records.js';

/**
 * A fixed-capacity table of encoded records with open addressing on the id's first word (ids are HMACs,
 * so uniformly spread). No per-entry JS objects: memory is capacity × (80 + 8) bytes, whatever is stored.
 */
export class RecentTable {
  readonly records: Buffer;
  count = 0;
  private readonly slots: Int32Array;
  private readonly slotMask: number;

  constructor(readonly capacity: number) {
    this.records = Buffer.allocUnsafe(capacity * RECORD_SIZE);
    let slots = 1;
    while (slots < capacity * 2) slots *= 2;
    this.slots = new Int32Array(slots);
    this.slotMask = slots - 1;
  }

  get full(): boolean {
    return this.count === this.capacity;
  }

  /** Byte offset in `records` of the record for `id`, or -1. */
  find(id: Uint8Array): number {
    for (let s = this.home(id); ; s = (s + 1) & this.slotMask) {
      const r = this.slots[s]! - 1;
      if (r < 0) return -1;
      const at = r * RECORD_SIZE;
      if (compareIds(id, 0, this.records, at) === 0) return at;
    }
  }

  /** Add a record for an id that is not in the table; the table must not be full. */
  insert(id: Uint8Array, loc: BlobLocation): void {
    if (this.full) throw new Error('recent index table is full');
    encodeRecord(id, loc, this.records, this.count * RECORD_SIZE);
    let s = this.home(id);
    while (this.slots[s] !== 0) s = (s + 1) & this.slotMask;
    this.slots[s] = ++this.count;
  }

  /** Empty the table for reuse. */
  clear(): void {
    this.slots.fill(0);
    this.count = 0;
  }

  private home(id: Uint8Array): number {
    return ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!) & this.slotMask;
  }
}
