import { RECORD_SIZE } from './records.js';

const BITS_LOG2 = 23; // 1 MiB
const PROBES = 4;

/**
 * A fixed-size Bloom filter over ids (1 MiB; 4 probes taken straight from id bytes 4..19, which are
 * uniformly random for HMAC ids). False positives stay below 3% up to a million ids and only cost a
 * needless pread; it never grows, however many ids it holds.
 */
export class IdFilter {
  private readonly bits = new Uint8Array(2 ** (BITS_LOG2 - 3));

  /** Add the ids of the first `count` records of `records`. */
  addRecords(records: Buffer, count: number): void {
    for (let at = 0; at < count * RECORD_SIZE; at += RECORD_SIZE) {
      for (let p = 0; p < PROBES; p++) {
        const bit = records.readUInt32BE(at + 4 + 4 * p) >>> (32 - BITS_LOG2);
        this.bits[bit >>> 3]! |= 1 << (bit & 7);
      }
    }
  }

  /** False when `id` was certainly never added. */
  mayHave(id: Uint8Array): boolean {
    for (let p = 0; p < PROBES; p++) {
      const at = 4 + 4 * p;
      const bit = (((id[at]! << 24) | (id[at + 1]! << 16) | (id[at + 2]! << 8) | id[at + 3]!) >>> 0) >>> (32 - BITS_LOG2);
      if ((this.bits[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    }
    return true;
  }
}
