import { IntegrityError } from '../../errors.js';

/**
 * Where a blob lives (docs/ARCHITECTURE.md "Repository format"): in a content object (a chunk object
 * or a pack), inside an encrypted bundle at `bundleOffset`, whose session key is wrapped by the key
 * packets at `keyOffset`; the blob is `rawLength` bytes from `blobOffset` of the bundle's plaintext.
 */
export interface BlobLocation {
  kind: 'chunk' | 'pack';
  /** The object's id (64 hex digits); its name is Layout.chunk/pack(objectId). */
  objectId: string;
  keyOffset: number;
  bundleOffset: number;
  bundleLength: number;
  blobOffset: number;
  rawLength: number;
}

/** One index entry: a 32-byte blob id and where the blob lives. */
export interface IndexEntry {
  id: Buffer;
  loc: BlobLocation;
}

export const ID_SIZE = 32;

/**
 * Fixed-size binary record of the on-disk index, big-endian, so that sorted records sort by id:
 *   0 id (32) | 32 kind (1) | 33 zero (1) | 34 object id (32) | 66 key offset (6) | 72 bundle offset (6)
 *   | 78 bundle length (4) | 82 blob offset (4) | 86 raw length (4)
 */
export const RECORD_SIZE = 90;
const KIND_AT = 32;
const OBJECT_AT = 34;
const KEY_AT = 66;
const BUNDLE_AT = 72;
const BUNDLE_LENGTH_AT = 78;
const BLOB_AT = 82;
const RAW_AT = 86;

// Codes are part of the format. Kind 0 is invalid so that a zeroed record is caught.
const KINDS = ['', 'chunk', 'pack'] as const;
const HEX_ID = /^[0-9a-f]{64}$/;

const MAX_OFFSET = 2 ** 48;
const MAX_LENGTH = 2 ** 32;

function checkInteger(name: string, value: number, limit: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value >= limit) throw new RangeError(`index record: ${name} must be an integer in [0, ${limit}), got ${value}`);
}

/** Write the record for `id` at `loc` into `out` at byte `at`; throws RangeError for a value the format cannot hold. */
export function encodeRecord(id: Uint8Array, loc: BlobLocation, out: Buffer, at: number): void {
  if (id.length !== ID_SIZE) throw new RangeError(`index record: blob id must be ${ID_SIZE} bytes, got ${id.length}`);
  const kind = KINDS.indexOf(loc.kind);
  if (kind <= 0) throw new RangeError(`index record: unknown object kind ${JSON.stringify(loc.kind)}`);
  if (!HEX_ID.test(loc.objectId)) throw new RangeError(`index record: object id must be 64 hex digits, got ${JSON.stringify(loc.objectId)}`);
  checkInteger('keyOffset', loc.keyOffset, MAX_OFFSET);
  checkInteger('bundleOffset', loc.bundleOffset, MAX_OFFSET);
  checkInteger('bundleLength', loc.bundleLength, MAX_LENGTH);
  checkInteger('blobOffset', loc.blobOffset, MAX_LENGTH);
  checkInteger('rawLength', loc.rawLength, MAX_LENGTH);
  out.set(id, at);
  out[at + KIND_AT] = kind;
  out[at + KIND_AT + 1] = 0;
  out.write(loc.objectId, at + OBJECT_AT, 'hex');
  out.writeUIntBE(loc.keyOffset, at + KEY_AT, 6);
  out.writeUIntBE(loc.bundleOffset, at + BUNDLE_AT, 6);
  out.writeUInt32BE(loc.bundleLength, at + BUNDLE_LENGTH_AT);
  out.writeUInt32BE(loc.blobOffset, at + BLOB_AT);
  out.writeUInt32BE(loc.rawLength, at + RAW_AT);
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
  if (!kind) throw new IntegrityError(source, `invalid index record at byte ${at} (kind ${buf[at + KIND_AT]})`);
  return {
    kind,
    objectId: buf.toString('hex', at + OBJECT_AT, at + OBJECT_AT + ID_SIZE),
    keyOffset: buf.readUIntBE(at + KEY_AT, 6),
    bundleOffset: buf.readUIntBE(at + BUNDLE_AT, 6),
    bundleLength: buf.readUInt32BE(at + BUNDLE_LENGTH_AT),
    blobOffset: buf.readUInt32BE(at + BLOB_AT),
    rawLength: buf.readUInt32BE(at + RAW_AT),
  };
}

/** The entry stored in the record at byte `at` of `buf` (the id is copied). */
export function decodeRecord(buf: Buffer, at: number, source: string): IndexEntry {
  return { id: Buffer.from(buf.subarray(at, at + ID_SIZE)), loc: decodeLocation(buf, at, source) };
}
