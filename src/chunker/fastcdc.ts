import { createHash } from 'node:crypto';
import { ConfigError } from '../errors.js';
import type { Cutter } from './cutter.js';

export type { Cutter };

/** Chunk size bounds in bytes: every chunk but a file's last is at least `min` and at most `max` long. */
export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

/** Repository defaults: 512 KiB / 1 MiB / 8 MiB. */
export const DEFAULT_CHUNKER_PARAMS: Readonly<ChunkerParams> = Object.freeze({ min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 });

// Boundaries are part of the repository format: changing the domain string, the table derivation or the
// masks below changes every chunk id, so it needs a new repository format version.
const GEAR_DOMAIN = 'kbrackup fastcdc gear v1';
const DEFAULT_SEED = new TextEncoder().encode('kbrackup fastcdc default seed');
// Normalized chunking level 2 (FastCDC paper): 4 times harder to cut before `avg`, 4 times easier after.
const NORMALIZATION = 2;
// Lengths are stored as 32-bit fields in index records.
const MAX_CHUNK = 2 ** 32 - 1;

/** Throw a ConfigError naming the first invalid chunker parameter. */
export function validateChunkerParams(params: ChunkerParams): void {
  const { min, avg, max } = params;
  for (const [name, value] of Object.entries({ min, avg, max })) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`chunker ${name} must be a positive integer number of bytes, got ${String(value)}`);
  }
  if (avg < 64) throw new ConfigError(`chunker avg must be at least 64 bytes, got ${avg}`);
  if (avg > 2 ** 30) throw new ConfigError(`chunker avg must be at most 1 GiB, got ${avg}`);
  if (!(min < avg && avg < max)) throw new ConfigError(`chunker sizes must satisfy min < avg < max, got min ${min}, avg ${avg}, max ${max}`);
  if (max > MAX_CHUNK) throw new ConfigError(`chunker max must be below 4 GiB, got ${max}`);
}

/** The 256-entry gear table: SHA-256 in counter mode over the seed, 8 entries per block. */
export function gearTable(seed: Uint8Array): Int32Array {
  const table = new Int32Array(256);
  const counter = Buffer.alloc(4);
  for (let block = 0; block < 32; block++) {
    counter.writeUInt32BE(block);
    const digest = createHash('sha256').update(GEAR_DOMAIN).update(counter).update(seed).digest();
    for (let j = 0; j < 8; j++) table[block * 8 + j] = digest.readInt32BE(j * 4);
  }
  return table;
}

/**
 * Mask of the `bits` highest bits of the 32-bit gear hash. High bits are used because bit k of the hash
 * depends on the last k+1 bytes only, so the top bits give the widest content window (32 bytes).
 */
function topBitsMask(bits: number): number {
  return (~0 << (32 - bits)) | 0;
}

/**
 * FastCDC content-defined chunker (Xia et al. 2016/2020) with normalized chunking level 2 and a 32-bit gear
 * rolling hash; the first `min` bytes of each chunk are skipped without hashing.
 *
 * The gear table is derived from `seed`. A repository passes its own secret seed so that chunk boundaries
 * (visible to the storage as object sizes) cannot be matched against the boundaries of known files chunked
 * with a public table. This hides fingerprints from a passive observer; it is not a proof against an
 * attacker who can get chosen content backed up and watch the resulting sizes.
 *
 * Only counters and the hash value are kept between calls, so boundaries do not depend on how the input
 * is split into buffers.
 */
export class FastCdc implements Cutter {
  private readonly gear: Int32Array;
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  private readonly maskS: number;
  private readonly maskL: number;
  /** Bytes of the current chunk consumed so far. */
  private pos = 0;
  private fp = 0;

  constructor(params: ChunkerParams, seed: Uint8Array = DEFAULT_SEED) {
    validateChunkerParams(params);
    this.min = params.min;
    this.avg = params.avg;
    this.max = params.max;
    const bits = Math.round(Math.log2(params.avg));
    this.maskS = topBitsMask(bits + NORMALIZATION);
    this.maskL = topBitsMask(bits - NORMALIZATION);
    this.gear = gearTable(seed);
  }

  update(data: Uint8Array): { consumed: number; boundary: boolean } {
    const n = data.length;
    // data[i] is byte number base + i of the current chunk.
    const base = this.pos;
    let i = this.min - base;
    if (i >= n) {
      this.pos = base + n;
      return { consumed: n, boundary: false };
    }
    if (i < 0) i = 0;
    const gear = this.gear;
    let fp = this.fp;
    const normalEnd = Math.min(n, this.avg - base);
    const maskS = this.maskS;
    for (; i < normalEnd; i++) {
      fp = ((fp << 1) + gear[data[i]!]!) | 0;
      if ((fp & maskS) === 0) return this.cut(i + 1);
    }
    const maxEnd = this.max - base;
    const end = Math.min(n, maxEnd);
    const maskL = this.maskL;
    for (; i < end; i++) {
      fp = ((fp << 1) + gear[data[i]!]!) | 0;
      if ((fp & maskL) === 0) return this.cut(i + 1);
    }
    if (end === maxEnd) return this.cut(end);
    this.fp = fp;
    this.pos = base + n;
    return { consumed: n, boundary: false };
  }

  reset(): void {
    this.pos = 0;
    this.fp = 0;
  }

  private cut(consumed: number): { consumed: number; boundary: boolean } {
    this.pos = 0;
    this.fp = 0;
    return { consumed, boundary: true };
  }
}
