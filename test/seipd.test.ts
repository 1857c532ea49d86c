import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import * as openpgp from 'openpgp';
import { decryptPacket } from '../src/crypto/envelope.js';
import { PacketTag, definiteLength, packetHeader, parsePacketHeader } from '../src/crypto/packets.js';
import { seipdDecryptor } from '../src/crypto/seipd-decrypt.js';
import { newSessionKey, seipdEncryptor } from '../src/crypto/seipd.js';
import { IntegrityError } from '../src/errors.js';
import { Prng, pseudoRandomBytes } from './fixtures/prng.js';
import { definitePacket, packetBody } from './helpers/forge.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Our encryptor's AEAD chunk (chunk size byte 12). */
const CHUNK = 256 * KiB;
const TAG = 16;
/** Version, cipher, AEAD, chunk size byte, then the 32-byte salt. */
const BODY_HEADER = 4 + 32;
const SIZES = [0, 1, 255, 65535, 65536, 262144, 262145, 3 * MiB + 7];
const OBJECT = 'data/ab/abcdef';

/** Slices of `data` with lengths drawn from 1..max, reproducible per seed. */
function* splits(data: Buffer, seed: string, max: number): Generator<Buffer> {
  const prng = new Prng(seed);
  for (let pos = 0; pos < data.length; ) {
    const n = 1 + (prng.next(4).readUInt32BE(0) % max);
    yield data.subarray(pos, pos + n);
    pos += n;
  }
}

/** One SEIPDv2 packet from our encryptor. */
async function encrypt(plain: Buffer, sessionKey: Uint8Array, filename = 'zlib'): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([plain]), seipdEncryptor({ sessionKey, filename }), async (source: AsyncIterable<Buffer>) => {
    for await (const b of source) out.push(b);
  });
  return Buffer.concat(out);
}

/** Run the decryptor over `chunks`; returns the plaintext and the literal filename. */
async function decrypt(chunks: Iterable<Buffer>, sessionKey: Uint8Array): Promise<{ plain: Buffer; filename: string | undefined }> {
  let filename: string | undefined;
  const out: Buffer[] = [];
  const decryptor = seipdDecryptor(sessionKey, OBJECT, { onFilename: (name) => (filename = name) });
  for await (const b of decryptor(Readable.from(chunks, { objectMode: true }))) out.push(b);
  return { plain: Buffer.concat(out), filename };
}

/** Plaintext emitted before the decryptor failed, and the error. */
async function decryptUntilError(packet: Buffer, sessionKey: Uint8Array): Promise<{ emitted: Buffer; error: unknown }> {
  const out: Buffer[] = [];
  try {
    for await (const b of seipdDecryptor(sessionKey, OBJECT)(Readable.from(splits(packet, 'until error', 100 * KiB)))) out.push(b);
  } catch (error) {
    return { emitted: Buffer.concat(out), error };
  }
  assert.fail('decryption of damaged data succeeded');
}

/** Assert that decrypting `packet` fails with IntegrityError naming the object (and matching `reason`). */
async function rejects(packet: Buffer, sessionKey: Uint8Array, reason?: RegExp): Promise<void> {
  await assert.rejects(decrypt(splits(packet, 'rejects', 70 * KiB), sessionKey), (err: unknown) => {
    assert.ok(err instanceof IntegrityError, `expected IntegrityError, got ${String(err)}`);
    assert.equal(err.object, OBJECT);
    if (reason) assert.match(err.message, reason);
    return true;
  });
}

/** A SEIPD packet around `body` framed with partial lengths of the given powers of two (cycled), then a definite tail. */
function partialPacket(body: Buffer, powers: number[]): Buffer {
  const out: Buffer[] = [Buffer.of(0xc0 | PacketTag.seipd)];
  let pos = 0;
  for (let i = 0; body.length - pos > 1 << powers[i % powers.length]!; i++) {
    const n = 1 << powers[i % powers.length]!;
    out.push(Buffer.of(0xe0 | powers[i % powers.length]!), body.subarray(pos, pos + n));
    pos += n;
  }
  out.push(definiteLength(body.length - pos), body.subarray(pos));
  return Buffer.concat(out);
}

/** A copy of `bytes` with one bit flipped. */
function flip(bytes: Buffer, offset: number, bit = 0): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset] = (copy[offset] as number) ^ (1 << bit);
  return copy;
}

/** The SEIPD packet of a whole OpenPGP message, skipping its PKESK/SKESK packets. */
function seipdPacket(message: Uint8Array): Buffer {
  const bytes = Buffer.from(message);
  for (let pos = 0; ; ) {
    const info = parsePacketHeader(bytes, pos);
    assert.ok(info);
    if (info.tag === PacketTag.seipd) return bytes.subarray(pos);
    assert.ok(info.bodyLength !== undefined);
    pos += info.headerLength + info.bodyLength;
  }
}

/** How openpgpEncrypt seals a message: config overrides, literal filename, AEAD mode. */
interface OpenpgpOptions {
  config?: openpgp.PartialConfig;
  filename?: string;
  aeadAlgorithm?: openpgp.enums.aeadNames;
}

/** openpgp.js encryption to a password with a known session key (SEIPDv2, GCM unless told, no compression). */
async function openpgpEncrypt(plain: Buffer, sessionKey: Uint8Array, options: OpenpgpOptions = {}): Promise<Buffer> {
  const message = await openpgp.createMessage({ binary: plain, filename: options.filename ?? 'none' });
  const encrypted = await openpgp.encrypt({
    message,
    passwords: ['a password'],
    sessionKey: { data: sessionKey, algorithm: 'aes256', aeadAlgorithm: options.aeadAlgorithm ?? 'gcm' },
    format: 'binary',
    config: {
      aeadProtect: true,
      preferredAEADAlgorithm: openpgp.enums.aead.gcm,
      preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed,
      // The password only wraps the session key here: skip Argon2's 64 MiB.
      s2kType: openpgp.enums.s2k.iterated,
      ...options.config,
    },
  });
  return seipdPacket(encrypted as Uint8Array);
}

/** Content length whose Literal Data packet (our framing, filename 'zlib') makes exactly `target` AEAD plaintext bytes. */
function contentFilling(target: number): number {
  for (let n = target; n > 0; n--) {
    const body = 2 + 'zlib'.length + 4 + n;
    const framed = 1 + Math.floor(body / (64 * KiB)) + definiteLength(body % (64 * KiB)).length + body;
    if (framed === target) return n;
  }
  throw new Error(`no content length fills ${target} bytes`);
}

describe('SEIPDv2 decryptor', () => {
  describe('our encryptor → openpgp.js and our decryptor', () => {
    for (const size of SIZES) {
      it(`${size} bytes`, async () => {
        const key = newSessionKey();
        const plain = pseudoRandomBytes(`ours ${size}`, size);
        const packet = await encrypt(plain, key);

        const message = await openpgp.readMessage({ binaryMessage: packet });
        const theirs = await openpgp.decrypt({ message, sessionKeys: { data: key, algorithm: 'aes256' }, format: 'binary' });
        assert.ok(Buffer.from(theirs.data as Uint8Array).equals(plain), 'openpgp.js plaintext differs');

        const max = size < 70 * KiB ? 7 : 100 * KiB;
        const ours = await decrypt(splits(packet, `split ${size}`, max), key);
        assert.ok(ours.plain.equals(plain), 'our plaintext differs');
        assert.equal(ours.filename, 'zlib');
      });
    }

    it('AEAD plaintext of exactly one and two chunks', async () => {
      for (const chunks of [1, 2]) {
        const key = newSessionKey();
        const plain = pseudoRandomBytes(`exact ${chunks}`, contentFilling(chunks * CHUNK));
        const packet = await encrypt(plain, key);
        assert.equal(packetBody(packet).length, BODY_HEADER + chunks * (CHUNK + TAG) + TAG);
        assert.ok((await decrypt([packet], key)).plain.equals(plain));
      }
    });

    it('accepts any partial/definite framing of the packet', async () => {
      const key = newSessionKey();
      const plain = pseudoRandomBytes('framing', 700 * KiB + 3);
      const body = packetBody(await encrypt(plain, key));
      const framings = [definitePacket(body), partialPacket(body, [9]), partialPacket(body, [0, 13, 1, 20, 9]), partialPacket(body, [30])];
      for (const packet of framings) {
        assert.ok((await decrypt(splits(packet, 'framing', 3000), key)).plain.equals(plain));
      }
      // Body lengths needing one- and two-byte definite length fields.
      const small = pseudoRandomBytes('small', 100);
      const smallBody = packetBody(await encrypt(small, key));
      assert.ok((await decrypt([definitePacket(smallBody)], key)).plain.equals(small));
      assert.ok((await decrypt([partialPacket(smallBody, [4])], key)).plain.equals(small));
    });
  });

  describe('openpgp.js encryption → our decryptor', () => {
    for (const size of SIZES) {
      it(`${size} bytes, chunk size byte 12`, async () => {
        const key = newSessionKey();
        const plain = pseudoRandomBytes(`theirs ${size}`, size);
        const packet = await openpgpEncrypt(plain, key, { config: { aeadChunkSizeByte: 12 } });
        const max = size < 70 * KiB ? 7 : 100 * KiB;
        const ours = await decrypt(splits(packet, `theirs split ${size}`, max), key);
        assert.ok(ours.plain.equals(plain));
        assert.equal(ours.filename, 'none');
      });
    }

    for (const chunkSizeByte of [0, 1, 6, 10, 16]) {
      it(`chunk size byte ${chunkSizeByte}`, async () => {
        for (const size of [0, 1, 255, 65536, 262145, chunkSizeByte < 6 ? 100 * KiB + 1 : 5 * MiB + 3]) {
          const key = newSessionKey();
          const plain = pseudoRandomBytes(`byte ${chunkSizeByte} ${size}`, size);
          const packet = await openpgpEncrypt(plain, key, { config: { aeadChunkSizeByte: chunkSizeByte } });
          assert.equal(packetBody(packet).readUInt8(3), chunkSizeByte);
          assert.ok((await decrypt(splits(packet, `byte ${chunkSizeByte}`, 50 * KiB), key)).plain.equals(plain), `size ${size}`);
        }
      });
    }

    it('a message for a v6 key, with a streamed (partially framed) literal packet', async () => {
      const { privateKey } = await openpgp.generateKey({
        type: 'curve25519',
        userIDs: [{ name: 'restore' }],
        format: 'object',
        config: { v6Keys: true, aeadProtect: true, preferredAEADAlgorithm: openpgp.enums.aead.gcm },
      });
      const key = newSessionKey();
      const plain = pseudoRandomBytes('v6 key', MiB + 11);
      const message = await openpgp.createMessage({ binary: Readable.toWeb(Readable.from(splits(plain, 'v6 in', 40 * KiB))) as ReadableStream<Uint8Array>, filename: 'zlib' });
      const encrypted = await openpgp.encrypt({
        message,
        encryptionKeys: privateKey.toPublic(),
        sessionKey: { data: key, algorithm: 'aes256', aeadAlgorithm: 'gcm' },
        format: 'binary',
        config: { aeadProtect: true, preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed },
      });
      const parts: Uint8Array[] = [];
      for await (const b of encrypted as unknown as AsyncIterable<Uint8Array>) parts.push(b);
      const packet = seipdPacket(Buffer.concat(parts));
      assert.ok(parsePacketHeader(packet, 0)?.partLength, 'openpgp.js wrote a definite length');
      const ours = await decrypt(splits(packet, 'v6', 30 * KiB), key);
      assert.ok(ours.plain.equals(plain));
      assert.equal(ours.filename, 'zlib');
    });

    it('rejects compressed data and OCB with IntegrityError', async () => {
      const key = newSessionKey();
      const plain = Buffer.alloc(10_000, 'a');
      await rejects(await openpgpEncrypt(plain, key, { config: { preferredCompressionAlgorithm: openpgp.enums.compression.zlib } }), key, /unexpected packet tag 8/);
      await rejects(await openpgpEncrypt(plain, key, { aeadAlgorithm: 'ocb' }), key, /unsupported AEAD algorithm 2/);
    });
  });

  describe('damage', async () => {
    const key = newSessionKey();
    const plain = pseudoRandomBytes('damage', 3 * MiB + 7);
    const packet = await encrypt(plain, key);
    const body = packetBody(packet);
    const chunks = Math.floor((body.length - BODY_HEADER - TAG) / (CHUNK + TAG)) + 1;
    /** Body offset of AEAD chunk `i`. */
    const chunkAt = (i: number): number => BODY_HEADER + i * (CHUNK + TAG);

    it('the intact packet decrypts', async () => {
      assert.equal(chunks, 13);
      assert.ok((await decrypt([definitePacket(body)], key)).plain.equals(plain));
    });

    it('wrong session key', async () => {
      await rejects(packet, newSessionKey(), /authentication failed at chunk 0/);
    });

    it('truncation anywhere', async () => {
      const offsets = [0, 1, 2, 10, 40, 64 * KiB, CHUNK, packet.length - 17, packet.length - 16, packet.length - 1];
      for (const n of offsets) await rejects(packet.subarray(0, n), key, /truncated/);
      await rejects(definitePacket(body).subarray(0, 6 + chunkAt(3)), key, /truncated/);
    });

    it('truncation at a chunk boundary with consistent framing', async () => {
      // Whole chunks dropped and the length fixed up: only the AEAD layer can notice.
      await rejects(definitePacket(body.subarray(0, chunkAt(3))), key, /authentication failed at chunk 2/);
      await rejects(partialPacket(Buffer.concat([body.subarray(0, chunkAt(3)), body.subarray(body.length - TAG)]), [16]), key, /final tag/);
      await rejects(definitePacket(Buffer.concat([body.subarray(0, chunkAt(chunks - 1)), body.subarray(body.length - TAG)])), key, /final tag/);
      await rejects(definitePacket(body.subarray(0, body.length - TAG)), key, /authentication failed at chunk 12/);
      await rejects(definitePacket(body.subarray(0, BODY_HEADER + TAG)), key, /final tag/);
      await rejects(definitePacket(body.subarray(0, BODY_HEADER + 20)), key, /truncated/);
    });

    it('an exactly-full last chunk, truncated before the final tag', async () => {
      const exact = pseudoRandomBytes('exact', contentFilling(2 * CHUNK));
      const exactBody = packetBody(await encrypt(exact, key));
      await rejects(definitePacket(exactBody.subarray(0, exactBody.length - TAG)), key, /authentication failed at chunk 1/);
      await rejects(definitePacket(Buffer.concat([exactBody.subarray(0, chunkAt(1)), exactBody.subarray(exactBody.length - TAG)])), key, /final tag/);
    });

    it('reordered, duplicated and dropped chunks', async () => {
      const chunk = (i: number): Buffer => body.subarray(chunkAt(i), chunkAt(i + 1));
      const swapped = Buffer.concat([body.subarray(0, chunkAt(2)), chunk(3), chunk(2), body.subarray(chunkAt(4))]);
      await rejects(definitePacket(swapped), key, /authentication failed at chunk 2/);
      const duplicated = Buffer.concat([body.subarray(0, chunkAt(2)), chunk(1), body.subarray(chunkAt(2))]);
      await rejects(definitePacket(duplicated), key, /authentication failed at chunk 2/);
      const dropped = Buffer.concat([body.subarray(0, chunkAt(4)), body.subarray(chunkAt(5))]);
      await rejects(definitePacket(dropped), key, /authentication failed at chunk 4/);
      const lastSwapped = Buffer.concat([body.subarray(0, chunkAt(chunks - 2)), body.subarray(chunkAt(chunks - 1), body.length - TAG), chunk(chunks - 2), body.subarray(body.length - TAG)]);
      await rejects(definitePacket(lastSwapped), key, /authentication failed/);
    });

    it('a bit flipped in each region', async () => {
      const regions: [string, number, RegExp][] = [
        ['version', 0, /unsupported encrypted data version 3/],
        ['cipher', 1, /unsupported cipher algorithm 8/],
        ['AEAD algorithm', 2, /unsupported AEAD algorithm 2/],
        ['chunk size byte', 3, /authentication failed/],
        ['salt', 4, /authentication failed at chunk 0/],
        ['salt end', BODY_HEADER - 1, /authentication failed at chunk 0/],
        ['first ciphertext byte', BODY_HEADER, /authentication failed at chunk 0/],
        ['ciphertext of chunk 7', chunkAt(7) + 1000, /authentication failed at chunk 7/],
        ['tag of chunk 7', chunkAt(8) - 1, /authentication failed at chunk 7/],
        ['last chunk', chunkAt(chunks - 1) + 3, /authentication failed at chunk 12/],
        ['final tag', body.length - 5, /final tag/],
      ];
      for (const [region, offset, reason] of regions) {
        await assert.rejects(decrypt([definitePacket(flip(body, offset))], key), (err: unknown) => {
          assert.ok(err instanceof IntegrityError, region);
          assert.match(err.message, reason, region);
          return true;
        });
      }
      const bigChunks = Buffer.from(body);
      bigChunks[3] = 17;
      await rejects(definitePacket(bigChunks), key, /unsupported AEAD chunk size byte 17/);
      // The framing: the packet tag, a partial length, the first byte of the definite tail.
      await rejects(flip(packet, 0, 0), key, /not an encrypted data packet/);
      await rejects(flip(packet, 1, 0), key);
      await rejects(flip(packet, 1 + 64 * KiB + 1, 3), key);
    });

    it('every single bit flip of a small packet', async () => {
      const small = pseudoRandomBytes('every bit', 700);
      const smallPacket = await encrypt(small, key);
      for (let offset = 0; offset < smallPacket.length; offset++) {
        for (let bit = 0; bit < 8; bit++) await rejects(flip(smallPacket, offset, bit), key);
      }
    });

    it('extra bytes after the packet', async () => {
      await rejects(Buffer.concat([packet, Buffer.of(0)]), key, /bytes after the end of the packet/);
      await rejects(Buffer.concat([packet, packet]), key, /bytes after the end of the packet/);
      await rejects(Buffer.concat([definitePacket(body), Buffer.of(0xd2, 0)]), key, /bytes after the end of the packet/);
    });

    it('not an encrypted data packet', async () => {
      await rejects(Buffer.concat([packetHeader(PacketTag.literal, 3), Buffer.from('b\0\0')]), key, /not an encrypted data packet \(tag 11\)/);
      await rejects(Buffer.of(0x12, 0x34), key, /not an OpenPGP packet/);
    });

    it('never emits the plaintext of a tampered chunk', async () => {
      const { emitted, error } = await decryptUntilError(definitePacket(flip(body, chunkAt(5) + 77)), key);
      assert.ok(error instanceof IntegrityError);
      assert.match(error.message, /chunk 5/);
      assert.ok(emitted.length <= 5 * CHUNK, `${emitted.length} bytes emitted`);
      assert.ok(plain.subarray(0, emitted.length).equals(emitted));
      assert.ok(!emitted.includes(plain.subarray(5 * CHUNK, 5 * CHUNK + 1024)), 'plaintext of chunk 5 was emitted');
    });

    it('withholds the last chunk until the final tag verifies', async () => {
      const { emitted, error } = await decryptUntilError(definitePacket(flip(body, body.length - 1)), key);
      assert.ok(error instanceof IntegrityError);
      assert.ok(emitted.length <= (chunks - 1) * CHUNK, `${emitted.length} bytes emitted`);
      assert.ok(!emitted.includes(plain.subarray(plain.length - 1024)));
    });
  });

  describe('decryptPacket (restore path)', () => {
    it('decrypts a stream and fails the stream on damage', async () => {
      const key = newSessionKey();
      const plain = pseudoRandomBytes('decryptPacket', MiB + 5);
      const packet = await encrypt(plain, key);
      const out: Buffer[] = [];
      for await (const b of decryptPacket(Readable.from(splits(packet, 'dp', 64 * KiB)), key, OBJECT)) out.push(b as Buffer);
      assert.ok(Buffer.concat(out).equals(plain));

      const damaged = decryptPacket(Readable.from([flip(packet, 300_000)]), key, OBJECT);
      await assert.rejects(async () => {
        for await (const _ of damaged);
      }, IntegrityError);
    });

    it('releases the encrypted stream when the reader stops early', async () => {
      const key = newSessionKey();
      const packet = await encrypt(pseudoRandomBytes('early', 2 * MiB), key);
      const encrypted = Readable.from(splits(packet, 'early', 64 * KiB));
      const plain = decryptPacket(encrypted, key, OBJECT);
      for await (const _ of plain) break;
      await new Promise((resolve) => setImmediate(resolve));
      assert.ok(encrypted.destroyed);
    });
  });
});
