import { createHash } from 'node:crypto';
import type { Codec } from '../../compress/codec.js';
import { IntegrityError } from '../../errors.js';
import type { BlobLocation } from '../tree.js';
import { asBuffer } from '../../util/bytes.js';

export type { BlobLocation, Codec };

/**
 * One index entry: a 32-byte chunk id and where its blob lives. The object is `<chunks|packs>/<hex[0:2]>/<64
 * hex digits>` (Layout.chunk / Layout.pack), offset < 2^48, length and rawLength < 2^32.
 */
export interface IndexEntry {
  id: Buffer;
  loc: BlobLocation;
}

export const ID_SIZE = 32;

/**
 * Fixed-size binary record, big-endian, so that sorted records sort by id:
 *   0 id (32) | 32 object kind (1) | 33 codec (1) | 34 offset (6) | 40 length (4) | 44 rawLength (4) | 48 object id (32)
 */
export const RECORD_SIZE = 80;
const KIND_AT = 32;
const CODEC_AT = 33;
const OFFSET_AT = 34;
const LENGTH_AT = 40;
const RAW_LENGTH_AT = 44;
const OBJECT_AT = 48;

// Codes are part of the format. Kind 0 is invalid so that a zeroed record is caught.
const KINDS = ['', 'chunks', 'packs'] as const;
const CODECS: readonly Codec[] = ['none', 'zlib'];
const OBJECT_NAME = /^([a-z]+)\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

const MAX_OFFSET = 2 ** 48;
const MAX_LENGTH = 2 ** 32;

function checkInteger(name: string, value: number, limit: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value >= limit) throw new RangeError(`index record: ${name} must be an integer in [0, ${limit}), got ${value}`);
}

// Consecutive entries usually name the same pack, so the last parsed object name is kept.
let lastObject = '';
let lastKind = 0;
const lastObjectId = Buffer.alloc(ID_SIZE);

/** Kind code of an object name, leaving its raw id in lastObjectId. */
function parseObject(object: string): number {
  if (object === lastObject) return lastKind;
  const name = OBJECT_NAME.exec(object);
  const kind = name ? KINDS.indexOf(name[1] as (typeof KINDS)[number]) : -1;
  if (!name || kind <= 0 || name[2] !== name[3]!.slice(0, 2)) throw new RangeError(`index record: object name must be <chunks|packs>/<hex[0:2]>/<64 hex digits>, got ${JSON.stringify(object)}`);
  lastObjectId.write(name[3]!, 'hex');
  lastObject = object;
  lastKind = kind;
  return kind;
}

/** Write the record for `id` at `loc` into `out` at byte `at`; throws RangeError for a value the format cannot hold. */
export function encodeRecord(id: Uint8Array, loc: BlobLocation, out: Buffer, at: number): void {
  if (id.length !== ID_SIZE) throw new RangeError(`index record: chunk id must be ${ID_SIZE} bytes, got ${id.length}`);
  const kind = parseObject(loc.object);
  const codec = CODECS.indexOf(loc.codec);
  if (codec < 0) throw new RangeError(`index record: unknown codec ${JSON.stringify(loc.codec)}`);
  checkInteger('offset', loc.offset, MAX_OFFSET);
  checkInteger('length', loc.length, MAX_LENGTH);
  checkInteger('rawLength', loc.rawLength, MAX_LENGTH);
  out.set(id, at);
  out[at + KIND_AT] = kind;
  out[at + CODEC_AT] = codec;
  out.writeUIntBE(loc.offset, at + OFFSET_AT, 6);
  out.writeUInt32BE(loc.length, at + LENGTH_AT);
  out.writeUInt32BE(loc.rawLength, at + RAW_LENGTH_AT);
  out.set(lastObjectId, at + OBJECT_AT);
}

/** Order of the ids at `a[aAt]` and `b[bAt]` (negative, 0, positive); random ids differ in the first byte or two. */
export function compareIds(a: Uint8Array, aAt: number, b: Uint8Array, bAt: number): number {
  for (let k = 0; k < ID_SIZE; k++) {
    const d = a[aAt + k]! - b[bAt + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** The location stored in the record at byte `at` of `buf`; `source` names the file or object in errors. */
export function decodeLocation(buf: Buffer, at: number, source: string): BlobLocation {
  const kind = KINDS[buf[at + KIND_AT]!];
  const codec = CODECS[buf[at + CODEC_AT]!];
  if (!kind || !codec) throw new IntegrityError(source, `invalid index record at byte ${at} (kind ${buf[at + KIND_AT]}, codec ${buf[at + CODEC_AT]})`);
  const hex = buf.toString('hex', at + OBJECT_AT, at + RECORD_SIZE);
  return {
    object: `${kind}/${hex.slice(0, 2)}/${hex}`,
    offset: buf.readUIntBE(at + OFFSET_AT, 6),
    length: buf.readUInt32BE(at + LENGTH_AT),
    rawLength: buf.readUInt32BE(at + RAW_LENGTH_AT),
    codec,
  };
}

/** The entry stored in the record at byte `at` of `buf` (the id is copied). */
export function decodeRecord(buf: Buffer, at: number, source: string): IndexEntry {
  return { id: Buffer.from(buf.subarray(at, at + ID_SIZE)), loc: decodeLocation(buf, at, source) };
}

// Repository index object: header, records, trailer (record count + SHA-256 of header and records).
const MAGIC = 'KBIX';
const VERSION = 1;
const HEADER_SIZE = 8;
const TRAILER_SIZE = 8 + 32;
const RECORDS_PER_PIECE = 819; // ~64 KiB pieces

/** Serialize entries as the bytes of a repository index object, in pieces of about 64 KiB. */
export async function* encodeIndexEntries(entries: AsyncIterable<IndexEntry> | Iterable<IndexEntry>): AsyncIterable<Uint8Array> {
  const hash = createHash('sha256');
  let count = 0;
  let piece = Buffer.alloc(HEADER_SIZE + RECORDS_PER_PIECE * RECORD_SIZE);
  piece.write(MAGIC, 0, 'latin1');
  piece.writeUInt16BE(VERSION, 4);
  piece.writeUInt16BE(RECORD_SIZE, 6);
  let used = HEADER_SIZE;
  for await (const { id, loc } of entries) {
    if (used + RECORD_SIZE > piece.length) {
      hash.update(piece);
      yield piece;
      piece = Buffer.alloc(RECORDS_PER_PIECE * RECORD_SIZE);
      used = 0;
    }
    encodeRecord(id, loc, piece, used);
    used += RECORD_SIZE;
    count++;
  }
  const last = piece.subarray(0, used);
  hash.update(last);
  const trailer = Buffer.alloc(TRAILER_SIZE);
  trailer.writeBigUInt64BE(BigInt(count), 0);
  hash.digest().copy(trailer, 8);
  yield Buffer.concat([last, trailer]);
}

/**
 * Parse the bytes of a repository index object into batches of raw records (each a whole number of
 * RECORD_SIZE records). A truncated, extended or altered object throws IntegrityError naming `object`
 * when the end is reached, so a consumer must not act on the records before the iteration completes.
 */
export async function* decodeIndexRecords(bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, object = 'index object'): AsyncIterable<Buffer> {
  const hash = createHash('sha256');
  let pending: Buffer = Buffer.alloc(0);
  let headerSeen = false;
  let count = 0;
  for await (const piece of bytes) {
    pending = pending.length ? Buffer.concat([pending, piece]) : asBuffer(piece);
    if (!headerSeen) {
      if (pending.length < HEADER_SIZE) continue;
      checkHeader(pending, object);
      hash.update(pending.subarray(0, HEADER_SIZE));
      pending = pending.subarray(HEADER_SIZE);
      headerSeen = true;
    }
    // The last TRAILER_SIZE bytes may be the trailer, so records are only taken before them.
    const whole = Math.max(0, Math.floor((pending.length - TRAILER_SIZE) / RECORD_SIZE));
    if (whole > 0) {
      const records = pending.subarray(0, whole * RECORD_SIZE);
      hash.update(records);
      count += whole;
      yield records;
    }
    pending = Buffer.from(pending.subarray(whole * RECORD_SIZE));
  }
  if (!headerSeen) throw new IntegrityError(object, `truncated index object: ${pending.length} bytes, no complete header`);
  if (pending.length !== TRAILER_SIZE) throw new IntegrityError(object, `truncated or corrupt index object: ${pending.length} bytes after the last whole record, expected a ${TRAILER_SIZE}-byte trailer`);
  const stated = pending.readBigUInt64BE(0);
  if (stated !== BigInt(count)) throw new IntegrityError(object, `index object holds ${count} records but its trailer says ${stated}`);
  if (!hash.digest().equals(pending.subarray(8))) throw new IntegrityError(object, 'index object checksum mismatch (altered or corrupt)');
}

/** Parse the bytes of a repository index object into entries (same checks as decodeIndexRecords). */
export async function* decodeIndexEntries(bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, object = 'index object'): AsyncIterable<IndexEntry> {
  for await (const records of decodeIndexRecords(bytes, object)) {
    for (let at = 0; at < records.length; at += RECORD_SIZE) yield decodeRecord(records, at, object);
  }
}

function checkHeader(buf: Buffer, object: string): void {
  if (buf.toString('latin1', 0, 4) !== MAGIC) throw new IntegrityError(object, 'not a kbrackup index object (bad magic)');
  const version = buf.readUInt16BE(4);
  if (version !== VERSION) throw new IntegrityError(object, `unsupported index object version ${version} (this kbrackup reads version ${VERSION})`);
  const size = buf.readUInt16BE(6);
  if (size !== RECORD_SIZE) throw new IntegrityError(object, `index object record size ${size}, expected ${RECORD_SIZE}`);
}
