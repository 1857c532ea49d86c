import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compressor, decompressor, type Codec } from '../compress/codec.js';
import { decryptPacket } from '../crypto/envelope.js';
import { seipdEncryptor, type SessionKey } from '../crypto/seipd.js';

/**
 * A blob is one SEIPDv2 packet holding compressed plaintext; the Literal Data packet's filename names
 * the codec, so `gpg`/openpgp output plus the codec name is all a person needs to recover data by hand.
 */
export async function writeBlob(source: Readable | AsyncIterable<Uint8Array | string>, codec: Codec, sessionKey: SessionKey, out: Writable): Promise<void> {
  const encrypt = seipdEncryptor({ sessionKey, filename: codec });
  // Stored-as-is data skips the compression stage entirely: one stream hop less per byte.
  if (codec === 'none') await pipeline(source, encrypt, out, { end: false });
  else await pipeline(source, compressor(codec), encrypt, out, { end: false });
}

/** Encrypt a small in-memory payload (bounded by the caller) into blob bytes. */
export async function sealBytes(data: Uint8Array, codec: Codec, sessionKey: SessionKey): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(Readable.from([data]), compressor(codec), seipdEncryptor({ sessionKey, filename: codec }), async (source: AsyncIterable<Buffer>) => {
    for await (const b of source) parts.push(b);
  });
  return Buffer.concat(parts);
}

/** Plaintext of a blob, given its encrypted bytes and session key; the stream fails on tampering. */
export function readBlob(encrypted: Readable, sessionKey: SessionKey, codec: string, object: string): Readable {
  const inflate = decompressor(codec, object);
  const plain = decryptPacket(encrypted, sessionKey, object);
  plain.on('error', (err) => inflate.destroy(err));
  return plain.pipe(inflate);
}
