import { ID_SIZE, RECORD_SIZE, decodeLocation, type BlobLocation, type IndexEntry } from '../repo/index/records.js';
import { readNumber } from './record-stream.js';

/**
 * One index entry as maintenance streams it, in two byte orders so that a plain sort groups it either
 * by content object (to meet the object listing) or by blob (to meet the used ids):
 *
 *   by object:  kind 1 | object id 32 | bundle offset 6 | blob offset 4 | blob id 32 | key offset 6
 *               | bundle length 4 | raw length 4 | rank 4 | flags 1
 *   by blob:    blob id 32 | rank 4 | kind 1 | object id 32 | bundle offset 6 | blob offset 4 | key offset 6
 *               | bundle length 4 | raw length 4 | flags 1
 *
 * `rank` is the position of the index object that listed it, newest first, so that of two copies of a
 * blob the one a later prune wrote is chosen. `flags` say whether this copy was chosen and is used.
 */
export const LOCATION_WIDTH = 94;

/** This copy is the one kept for its blob (the others are duplicates). */
export const CHOSEN = 1;
/** The blob is used by a snapshot. */
export const USED = 2;

/** Kinds of listed objects: content objects (the codes of repo/index/records.ts) and, in listings only, trees. */
export type ListedKind = 'chunk' | 'pack' | 'tree';
const KIND_CODE = { chunk: 1, pack: 2, tree: 3 } as const;
const KINDS = ['', 'chunk', 'pack', 'tree'] as const;

/** The 33-char key of a listed object: its kind and id, as both listings and by-object records begin. */
export function objectKey(kind: ListedKind, objectIdHex: string): string {
  return String.fromCharCode(KIND_CODE[kind]) + Buffer.from(objectIdHex, 'hex').toString('latin1');
}

/** Kind and id of a content object's key. */
export function parseObjectKey(key: string): { kind: 'chunk' | 'pack'; objectId: string } {
  const kind = KINDS[key.charCodeAt(0)];
  if (kind !== 'chunk' && kind !== 'pack') throw new RangeError(`not a content object key (kind ${key.charCodeAt(0)})`);
  return { kind, objectId: Buffer.from(key.slice(1, 33), 'latin1').toString('hex') };
}

// Records are built in these buffers and turned into strings once: a string made with `+` or `slice`
// is a rope or a view that keeps its parts alive, several times the memory of a flat one, and sorting
// holds tens of thousands of them.
const scratch = Buffer.alloc(LOCATION_WIDTH);
const reordered = Buffer.alloc(LOCATION_WIDTH);

/** `r` as a flat string with its bytes moved by `moves` ([from, to, length] in bytes). */
function permute(r: string, moves: readonly (readonly [number, number, number])[]): string {
  scratch.write(r, 0, 'latin1');
  for (const [from, to, length] of moves) scratch.copy(reordered, to, from, from + length);
  return reordered.toString('latin1', 0, LOCATION_WIDTH);
}

/** Write the by-object record of blob `id` (32 bytes at `idAt` of `idBuf`) at `loc` into `scratch`. */
function writeByObject(idBuf: Buffer, idAt: number, loc: BlobLocation, rank: number, flags: number): string {
  scratch[0] = KIND_CODE[loc.kind];
  scratch.write(loc.objectId, 1, 'hex');
  scratch.writeUIntBE(loc.bundleOffset, 33, 6);
  scratch.writeUInt32BE(loc.blobOffset, 39);
  idBuf.copy(scratch, 43, idAt, idAt + ID_SIZE);
  scratch.writeUIntBE(loc.keyOffset, 75, 6);
  scratch.writeUInt32BE(loc.bundleLength, 81);
  scratch.writeUInt32BE(loc.rawLength, 85);
  scratch.writeUInt32BE(rank, 89);
  scratch[93] = flags;
  return scratch.toString('latin1', 0, LOCATION_WIDTH);
}

/** The by-object records of a batch of index records (records.ts), with the rank of their index object. */
export function fromIndexRecords(batch: Buffer, rank: number, source: string): string[] {
  const out: string[] = [];
  for (let at = 0; at < batch.length; at += RECORD_SIZE) out.push(writeByObject(batch, at, decodeLocation(batch, at, source), rank, 0));
  return out;
}

/** A by-object record for a blob at `loc` (a blob copied into a new pack). */
export function locationRecord(id: Buffer, loc: BlobLocation, flags: number): string {
  return writeByObject(id, 0, loc, 0, flags);
}

/** Ranks at or above this mark copies in objects that are missing or too short (check feeds them so it can name them). */
const ABSENT = 2 ** 31;

/** The by-object record of a copy whose object is missing or too short: it sorts after every real copy of its blob. */
export function markAbsent(r: string): string {
  scratch.write(r, 0, 'latin1');
  scratch.writeUInt32BE((scratch.readUInt32BE(89) + ABSENT) >>> 0, 89);
  return scratch.toString('latin1', 0, LOCATION_WIDTH);
}

/** Whether a by-object record was marked absent. */
export function isAbsent(r: string): boolean {
  return readNumber(r, 89, 4) >= ABSENT;
}

/** The rank (index object, newest first) of a by-object record, absent mark removed. */
export function rankOf(r: string): number {
  return readNumber(r, 89, 4) % ABSENT;
}

const TO_BY_BLOB = [
  [43, 0, 32],
  [89, 32, 4],
  [0, 36, 43],
  [75, 79, 14],
  [93, 93, 1],
] as const;
const TO_BY_OBJECT = [
  [36, 0, 43],
  [0, 43, 32],
  [79, 75, 14],
  [32, 89, 4],
] as const;

/** A by-object record reordered by blob. */
export function toByBlob(r: string): string {
  return permute(r, TO_BY_BLOB);
}

/** A by-blob record reordered by object, with new flags. */
export function toByObject(r: string, flags: number): string {
  reordered[93] = flags;
  return permute(r, TO_BY_OBJECT);
}

/** The fields of a by-object record. */
export const Loc = {
  objectKey: (r: string) => r.slice(0, 33),
  bundleOffset: (r: string) => readNumber(r, 33, 6),
  blobOffset: (r: string) => readNumber(r, 39, 4),
  id: (r: string) => r.slice(43, 75),
  keyOffset: (r: string) => readNumber(r, 75, 6),
  bundleLength: (r: string) => readNumber(r, 81, 4),
  rawLength: (r: string) => readNumber(r, 85, 4),
  flags: (r: string) => r.charCodeAt(93),
  /** The index entry a by-object record stands for. */
  entry(r: string): IndexEntry {
    const { kind, objectId } = parseObjectKey(r.slice(0, 33));
    return {
      id: Buffer.from(r.slice(43, 75), 'latin1'),
      loc: { kind, objectId, keyOffset: Loc.keyOffset(r), bundleOffset: Loc.bundleOffset(r), bundleLength: Loc.bundleLength(r), blobOffset: Loc.blobOffset(r), rawLength: Loc.rawLength(r) },
    };
  },
};

/** The blob id (32 chars) of a by-blob record. */
export function blobOf(r: string): string {
  return r.slice(0, 32);
}

/**
 * An object as listed: kind and id (33 chars, the sort key), size (6) and when it was stored (6, ms
 * since the epoch; 0 when the storage does not say).
 */
export const LISTING_WIDTH = 45;

/** The listing record of one object. */
export function listingRecord(kind: ListedKind, objectIdHex: string, size: number, modified: number | undefined): string {
  scratch[0] = KIND_CODE[kind];
  scratch.write(objectIdHex, 1, 'hex');
  scratch.writeUIntBE(size, 33, 6);
  scratch.writeUIntBE(Math.max(0, Math.round(modified ?? 0)), 39, 6);
  return scratch.toString('latin1', 0, LISTING_WIDTH);
}

/** Size and storage time of a listing record. */
export function listingInfo(r: string): { size: number; modified: number } {
  return { size: readNumber(r, 33, 6), modified: readNumber(r, 39, 6) };
}
