import { createHash, createHmac } from 'node:crypto';
import type { Readable } from 'node:stream';
import { maxChunkSize } from '../chunker/spec.js';
import { MAX_HEADER_LENGTH, headerLength, unsealSessionKey, type Unsealing } from '../crypto/envelope.js';
import { ByteQueue } from '../crypto/packets.js';
import type { RepoSecrets } from '../crypto/kdf.js';
import type { SessionKey } from '../crypto/seipd.js';
import { IntegrityError } from '../errors.js';
import type { Target } from '../targets/target.js';
import { collectBounded } from '../util/bounded.js';
import { blobPlaintext } from './blob.js';
import { FOOTER_LENGTH, decodeTrailer, openBundle, trailerLength } from './content-codec.js';
import type { RepoConfig } from './format.js';
import type { BlobLocation, IndexEntry } from './index/records.js';
import { Layout } from './layout.js';

/** A blob to read: its id and where the index says it lives. */
export interface WantedBlob {
  id: Buffer;
  loc: BlobLocation;
}

/** A blob read and checked against its id. */
export interface VerifiedBlob extends WantedBlob {
  data: Buffer;
}

/** Bytes between two wanted bundles that are read through rather than starting a new request. */
const GAP = 256 * 1024;
/** Distinct key packets remembered: a session key serves many objects (backup/session-keys.ts). */
const KEY_CACHE = 64;

/** The object name of a location. */
export function objectName(loc: Pick<BlobLocation, 'kind' | 'objectId'>): string {
  return loc.kind === 'chunk' ? Layout.chunk(loc.objectId) : Layout.pack(loc.objectId);
}

/** Reads exactly `n` bytes from a stream iterator, keeping the rest for the next read. */
class StreamReader {
  private readonly queue = new ByteQueue();

  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly object: string,
  ) {}

  /** The next `n` bytes as pieces. */
  async take(n: number): Promise<Buffer[]> {
    while (this.queue.length < n) {
      const next = await this.it.next();
      if (next.done) throw new IntegrityError(this.object, 'is shorter than the index says (truncated)');
      this.queue.push(next.value);
    }
    return this.queue.take(n);
  }
}

/**
 * Reads blobs from content objects with the key that opens them (a private key, or the content key of
 * a passphrase repository), and checks each blob's keyed id before handing it out: a swapped,
 * replaced or foreign chunk is refused at that chunk, named.
 */
export class ContentReader {
  /** Session keys by the SHA-256 of the key packets that wrap them. */
  private readonly keys = new Map<string, Promise<SessionKey>>();
  /** Key packets' hash by object and offset, for sections whose header was read before. */
  private readonly headers = new Map<string, string>();
  private readonly maxBundle: number;

  constructor(
    private readonly target: Target,
    private readonly secrets: RepoSecrets,
    private readonly unsealing: Unsealing,
    config: RepoConfig,
  ) {
    this.maxBundle = Math.max(maxChunkSize(config.chunker), config.bundleSize + config.smallFile) + 64 * 1024;
  }

  /** The session key of the key packets in `header` (cached). */
  private sessionKey(header: Buffer, object: string): Promise<SessionKey> {
    const hash = createHash('sha256').update(header).digest('hex');
    let key = this.keys.get(hash);
    if (!key) {
      // The repository was verified to seal its content for the key given: one that does not open is damage, not a wrong key.
      key = unsealSessionKey(header, this.unsealing, object, true);
      key.catch(() => this.keys.delete(hash));
      if (this.keys.size >= KEY_CACHE) this.keys.delete(this.keys.keys().next().value as string);
      this.keys.set(hash, key);
    }
    return key;
  }

  /** The session key of a section whose key packets start at `keyOffset` and end before `limit`. */
  private async sectionKey(object: string, keyOffset: number, limit: number): Promise<SessionKey> {
    const at = `${object}@${keyOffset}`;
    const known = this.headers.get(at);
    if (known !== undefined && this.keys.has(known)) return this.keys.get(known)!;
    const length = Math.min(limit - keyOffset, MAX_HEADER_LENGTH);
    const start = await collectBounded(await this.target.get(object, { offset: keyOffset, length }), MAX_HEADER_LENGTH, object);
    return this.keyFromHeader(object, keyOffset, start.subarray(0, headerLength(start, object)));
  }

  private keyFromHeader(object: string, keyOffset: number, header: Buffer): Promise<SessionKey> {
    this.headers.set(`${object}@${keyOffset}`, createHash('sha256').update(header).digest('hex'));
    if (this.headers.size > 4096) this.headers.delete(this.headers.keys().next().value as string);
    return this.sessionKey(header, object);
  }

  /** Check a blob's bytes against its id. */
  private verify(blob: WantedBlob, data: Buffer, object: string): void {
    if (data.length !== blob.loc.rawLength) throw new IntegrityError(object, `blob ${blob.id.toString('hex').slice(0, 16)}… has ${data.length} bytes, the index says ${blob.loc.rawLength}`);
    const id = createHmac('sha256', this.secrets.chunkIdKey).update(data).digest();
    if (!id.equals(blob.id)) throw new IntegrityError(object, `chunk ${blob.id.toString('hex')} does not match its id (a swapped, replaced or foreign chunk); refusing it`);
  }

  /** The wanted blobs of one object (sorted by bundle, then offset), verified, in that order. */
  async *readBlobs(wanted: WantedBlob[]): AsyncGenerator<VerifiedBlob> {
    if (wanted.length === 0) return;
    const object = objectName(wanted[0]!.loc);
    let i = 0;
    while (i < wanted.length) {
      // One ranged read covers bundles closer together than GAP.
      let j = i + 1;
      let end = wanted[i]!.loc.bundleOffset + wanted[i]!.loc.bundleLength;
      while (j < wanted.length && wanted[j]!.loc.bundleOffset - end <= GAP) {
        end = Math.max(end, wanted[j]!.loc.bundleOffset + wanted[j]!.loc.bundleLength);
        j++;
      }
      yield* this.readRun(object, wanted.slice(i, j), end);
      i = j;
    }
  }

  private async *readRun(object: string, run: WantedBlob[], end: number): AsyncGenerator<VerifiedBlob> {
    const first = run[0]!.loc;
    // The key packets come along in the same read when they sit just before the first bundle (a chunk).
    const withHeader = first.bundleOffset - first.keyOffset <= GAP && !this.headers.has(`${object}@${first.keyOffset}`);
    const start = withHeader ? first.keyOffset : first.bundleOffset;
    const stream: Readable = await this.target.get(object, { offset: start, length: end - start });
    const reader = new StreamReader(stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>, object);
    try {
      let pos = start;
      if (withHeader) {
        const head = Buffer.concat(await reader.take(first.bundleOffset - first.keyOffset));
        await this.keyFromHeader(object, first.keyOffset, head.subarray(0, headerLength(head, object)));
        pos = first.bundleOffset;
      }
      let b = 0;
      while (b < run.length) {
        const loc = run[b]!.loc;
        let c = b;
        while (c < run.length && run[c]!.loc.bundleOffset === loc.bundleOffset) c++;
        if (loc.bundleOffset < pos) throw new IntegrityError(object, 'index locations overlap');
        if (loc.bundleOffset > pos) await reader.take(loc.bundleOffset - pos);
        const key = await this.sectionKey(object, loc.keyOffset, loc.bundleOffset);
        const encrypted = await reader.take(loc.bundleLength);
        pos = loc.bundleOffset + loc.bundleLength;
        const plain = openBundle(encrypted.length === 1 ? encrypted[0]! : Buffer.concat(encrypted), key, object, this.maxBundle);
        for (; b < c; b++) {
          const blob = run[b]!;
          const data = plain.subarray(blob.loc.blobOffset, blob.loc.blobOffset + blob.loc.rawLength);
          this.verify(blob, data, object);
          yield { ...blob, data };
        }
      }
    } finally {
      stream.destroy();
    }
  }

  /**
   * One blob that is a whole bundle (a large file's chunk), as a stream of verified-so-far pieces, so it
   * need not fit in memory: the request is made now (so callers can open the next chunks ahead), and its
   * length and keyed id are checked when the last piece has been taken, throwing IntegrityError naming
   * the chunk on a mismatch. A caller must not publish what it received before the generator ends.
   */
  async openBlob(blob: WantedBlob): Promise<AsyncGenerator<Buffer>> {
    const { loc } = blob;
    const object = objectName(loc);
    if (loc.blobOffset !== 0) throw new IntegrityError(object, 'a streamed blob must be a whole bundle');
    const key = await this.sectionKey(object, loc.keyOffset, loc.bundleOffset);
    const encrypted = await this.target.get(object, { offset: loc.bundleOffset, length: loc.bundleLength });
    const idKey = this.secrets.chunkIdKey;
    return (async function* () {
      const hmac = createHmac('sha256', idKey);
      let length = 0;
      try {
        for await (const piece of blobPlaintext(encrypted, key, object)) {
          length += piece.length;
          if (length > loc.rawLength) throw new IntegrityError(object, `blob ${blob.id.toString('hex').slice(0, 16)}… is longer than the ${loc.rawLength} bytes the index says`);
          hmac.update(piece);
          yield piece;
        }
      } finally {
        encrypted.destroy();
      }
      if (length !== loc.rawLength) throw new IntegrityError(object, `blob ${blob.id.toString('hex').slice(0, 16)}… has ${length} bytes, the index says ${loc.rawLength}`);
      if (!hmac.digest().equals(blob.id)) throw new IntegrityError(object, `chunk ${blob.id.toString('hex')} does not match its id (a swapped, replaced or foreign chunk); refusing it`);
    })();
  }

  /** The blobs a content object's trailer lists; `size` saves a HEAD when the caller knows it. */
  static async trailer(target: Target, secrets: RepoSecrets, kind: 'chunk' | 'pack', objectId: string, size?: number): Promise<IndexEntry[]> {
    const object = objectName({ kind, objectId });
    const total = size ?? (await target.head(object))?.size;
    if (total === undefined) throw new IntegrityError(object, 'is missing');
    if (total < FOOTER_LENGTH) throw new IntegrityError(object, 'is too short to be a content object');
    const footer = await collectBounded(await target.get(object, { offset: total - FOOTER_LENGTH, length: FOOTER_LENGTH }), FOOTER_LENGTH, object);
    const length = trailerLength(footer, object);
    if (length > total - FOOTER_LENGTH) throw new IntegrityError(object, 'announces a trailer longer than itself');
    const trailer = await collectBounded(await target.get(object, { offset: total - FOOTER_LENGTH - length, length }), length, object);
    const entries = decodeTrailer(secrets, object, objectId, trailer);
    for (const e of entries) if (e.loc.kind !== kind) throw new IntegrityError(object, 'its trailer names another kind of object');
    return entries;
  }
}
