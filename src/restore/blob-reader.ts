import type { Readable } from 'node:stream';
import { MAX_HEADER_LENGTH, headerLength, unsealSessionKey, type Unsealing } from '../crypto/envelope.js';
import type { SessionKey } from '../crypto/seipd.js';
import { readBlob } from '../repo/blob.js';
import type { BlobLocation } from '../repo/tree.js';
import type { Target } from '../targets/target.js';
import { collectBounded } from '../util/bounded.js';

/** Session keys of recently read objects; a pack holds many blobs under one key. */
const CACHE_LIMIT = 256;

/** Reads single blobs by range, unwrapping each object's session key once. */
export class BlobReader {
  private readonly keys = new Map<string, Promise<SessionKey>>();

  constructor(
    private readonly target: Target,
    private readonly unsealing: Unsealing,
  ) {}

  private sessionKey(object: string, blobOffset: number): Promise<SessionKey> {
    let key = this.keys.get(object);
    if (!key) {
      key = (async () => {
        const length = Math.min(blobOffset, MAX_HEADER_LENGTH);
        const start = await collectBounded(await this.target.get(object, { offset: 0, length }), MAX_HEADER_LENGTH, object);
        return unsealSessionKey(start.subarray(0, headerLength(start, object)), this.unsealing, object);
      })();
      key.catch(() => this.keys.delete(object));
      if (this.keys.size >= CACHE_LIMIT) this.keys.delete(this.keys.keys().next().value as string);
      this.keys.set(object, key);
    }
    return key;
  }

  /** The plaintext of one blob; the stream fails with IntegrityError if the blob was altered. */
  async open(location: BlobLocation): Promise<Readable> {
    const key = await this.sessionKey(location.object, location.offset);
    const encrypted = await this.target.get(location.object, { offset: location.offset, length: location.length });
    return readBlob(encrypted, key, location.codec, location.object);
  }
}
