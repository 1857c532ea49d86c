import { Readable } from 'node:stream';
import { deflateSync } from 'node:zlib';
import { decompressor, type Codec } from '../compress/codec.js';
import { sealPacket, type SessionKey } from '../crypto/seipd.js';
import { seipdDecryptor } from '../crypto/seipd-decrypt.js';
import { collectBounded } from '../util/bounded.js';
import { openBundle } from './content-codec.js';

/**
 * A blob is one SEIPDv2 packet holding (optionally compressed) plaintext; the Literal Data packet's
 * filename names the codec, so `gpg` output plus the codec name is all a person needs to recover data
 * by hand.
 */
export function sealBytes(data: Buffer, codec: Codec, sessionKey: SessionKey): Buffer {
  return Buffer.concat(sealPacket([codec === 'zlib' ? deflateSync(data, { level: 6 }) : data], { sessionKey, filename: codec }));
}

/** The plaintext of a small blob read from `stream` (at most `max` bytes either way). */
export async function readBlobBytes(stream: Readable, sessionKey: SessionKey, object: string, max: number): Promise<Buffer> {
  return openBundle(await collectBounded(stream, max, object), sessionKey, object, max);
}

/**
 * The plaintext of one blob as it streams in, for blobs too big to hold in memory: decrypted (each AEAD
 * chunk verified before it is released) and decompressed. The caller checks the blob's id at the end.
 */
export async function* blobPlaintext(encrypted: Readable, sessionKey: SessionKey, object: string): AsyncGenerator<Buffer> {
  let codec = '';
  const plain = seipdDecryptor(sessionKey, object, { onFilename: (name) => (codec = name) })(encrypted);
  // The Literal Data filename (the codec) comes before any content.
  const first = await plain.next();
  if (first.done) return;
  if (codec === 'none') {
    yield first.value;
    yield* plain;
    return;
  }
  const inflate = decompressor(codec, object);
  const source = Readable.from(
    (async function* () {
      yield first.value;
      yield* plain;
    })(),
    { objectMode: false },
  );
  source.once('error', (err) => inflate.destroy(err));
  try {
    for await (const piece of source.pipe(inflate)) yield piece as Buffer;
  } finally {
    source.destroy();
    encrypted.destroy();
  }
}
