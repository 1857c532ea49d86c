import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { sealSessionKey, splitHeader, unsealSessionKey, type Sealing, type Unsealing } from '../crypto/envelope.js';
import { newSessionKey } from '../crypto/seipd.js';
import { IntegrityError, describeError } from '../errors.js';
import type { Target } from '../targets/target.js';
import { collectBounded } from '../util/bounded.js';
import { readBlob, sealBytes, writeBlob } from './blob.js';

/** Metadata (snapshots, trees, indexes, keys) is always zlib-compressed: it is JSON and compresses well. */
const META_CODEC = 'zlib';

/** Store a small payload (bounded by the caller) as an encrypted object. */
export async function putSealedBytes(target: Target, name: string, payload: Uint8Array, sealing: Sealing): Promise<void> {
  const sessionKey = newSessionKey();
  const header = await sealSessionKey(sessionKey, sealing);
  await target.put(name, { bytes: Buffer.concat([header, await sealBytes(payload, META_CODEC, sessionKey)]) });
}

/** Stream a payload of any size through compression and encryption into a new file at `path`; returns its size. */
export async function sealToFile(path: string, payload: Readable | AsyncIterable<Uint8Array | string>, sealing: Sealing): Promise<number> {
  const sessionKey = newSessionKey();
  const out = createWriteStream(path, { flags: 'wx' });
  try {
    out.write(await sealSessionKey(sessionKey, sealing));
    await writeBlob(payload, META_CODEC, sessionKey, out);
    out.end();
    await once(out, 'finish');
    return out.bytesWritten;
  } catch (err) {
    out.destroy();
    throw err;
  }
}

/** Plaintext stream of an encrypted metadata object. */
export async function getSealed(target: Target, name: string, unsealing: Unsealing): Promise<Readable> {
  const { header, rest } = await splitHeader(await target.get(name), name);
  return readBlob(rest, await unsealSessionKey(header, unsealing, name), META_CODEC, name);
}

/** Most bytes a JSON metadata object may have once decrypted (snapshots, keys: a few KiB). */
const MAX_JSON = 4 * 1024 * 1024;

/** Read a small encrypted JSON object. */
export async function getSealedJson<T>(target: Target, name: string, unsealing: Unsealing): Promise<T> {
  const bytes = await collectBounded(await getSealed(target, name, unsealing), MAX_JSON, name);
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new IntegrityError(name, `is not valid JSON (${describeError(err)})`);
  }
}
