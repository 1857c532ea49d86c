import type { RepoSecrets } from '../crypto/kdf.js';
import { decompressSync } from '../compress/codec.js';
import type { SessionKey } from '../crypto/seipd.js';
import { openPacket } from '../crypto/seipd-decrypt.js';
import { IntegrityError } from '../errors.js';
import { encodeBlobListEnd, parseBlobList } from './index/blob-list.js';
import type { IndexEntry } from './index/records.js';
import { decodeMeta, encodeMeta } from './meta-codec.js';

/**
 * Content objects (chunks/ and packs/, docs/ARCHITECTURE.md "Content objects"): sections of key packets
 * (the session key wrapped for the recipients) each followed by encrypted bundles, then a trailer
 * listing the object's blobs (a metadata packet, so `repair index` needs no private key), then a footer:
 * the trailer's length (u32 BE) and the magic "KBPT".
 */
export const FOOTER_LENGTH = 8;
const MAGIC = 'KBPT';
/**
 * Blobs in one pack, at most, for the packer and for prune's repacker alike: the trailer is built in
 * memory (~36 bytes a blob, then a compressed and an encrypted copy), so this keeps it below 1 MiB.
 */
export const MAX_BLOBS_PER_PACK = 16_384;
/** A trailer lists at most a pack's blobs: a few MiB even for a pack of tiny files. */
const MAX_TRAILER = 64 * 1024 * 1024;

/** The trailer's name for key derivation: a trailer opens only in the object it was written for. */
function trailerName(object: string): string {
  return `${object}#blobs`;
}

/** Trailer and footer bytes of a content object whose blob-list entry (encoded) lists `count` blobs. */
export function encodeTrailer(secrets: RepoSecrets, object: string, entry: Buffer, count: number): Buffer {
  const trailer = encodeMeta(secrets, trailerName(object), Buffer.concat([entry, encodeBlobListEnd(count)]));
  const footer = Buffer.alloc(FOOTER_LENGTH);
  footer.writeUInt32BE(trailer.length, 0);
  footer.write(MAGIC, 4, 'latin1');
  return Buffer.concat([trailer, footer]);
}

/** Length of the trailer a content object's footer announces. */
export function trailerLength(footer: Buffer, object: string): number {
  if (footer.length !== FOOTER_LENGTH || footer.toString('latin1', 4) !== MAGIC) throw new IntegrityError(object, 'has no kbrackup trailer (damaged or not a content object)');
  const length = footer.readUInt32BE(0);
  if (length > MAX_TRAILER) throw new IntegrityError(object, `announces a trailer of ${length} bytes; damaged`);
  return length;
}

/** The blobs a content object's trailer lists, checked to name that object. */
export function decodeTrailer(secrets: RepoSecrets, object: string, objectId: string, trailer: Buffer): IndexEntry[] {
  const entries = parseBlobList(decodeMeta(secrets, trailerName(object), trailer, MAX_TRAILER), object);
  for (const e of entries) if (e.loc.objectId !== objectId) throw new IntegrityError(object, 'its trailer lists blobs of another object');
  return entries;
}

/** The plaintext of one bundle (held in memory, at most `maxLength` bytes); fails on any damage. */
export function openBundle(encrypted: Buffer, sessionKey: SessionKey, object: string, maxLength: number): Buffer {
  let codec = '';
  const parts = openPacket(encrypted, sessionKey, object, { onFilename: (name) => (codec = name) });
  return decompressSync(parts.length === 1 ? parts[0]! : Buffer.concat(parts), codec, maxLength, object);
}
