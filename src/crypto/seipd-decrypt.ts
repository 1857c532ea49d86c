import { createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { IntegrityError, describeError } from '../errors.js';
import { ByteQueue, PacketBodyReader, PacketTag } from './packets.js';
import { AEAD_GCM, CIPHER_AES256, SALT_LENGTH, SEIPD_VERSION, TAG_LENGTH, deriveMessageKey, setChunkIndex } from './seipd-format.js';
import { asBuffer } from '../util/bytes.js';

/**
 * Streaming RFC 9580 SEIPDv2 decryptor with node:crypto, the counterpart of seipd.ts: openpgp.js ran
 * at ~30 MB/s and held much memory in restores. Holds at most about two AEAD chunks, and releases a
 * chunk's plaintext only after its tag verified (the last chunk's only after the final tag too).
 */
/** RFC 9580 5.13.2: chunk size bytes 0..16 (64 B .. 4 MiB) must be accepted. */
const MAX_CHUNK_SIZE_BYTE = 16;
/** Version, cipher, AEAD algorithm, chunk size byte. */
const PARAMS_LENGTH = 4;
/** Literal Data prefix before the filename: format byte and filename length. */
const LITERAL_FIXED = 2;
const LITERAL_DATE = 4;

/** Options of seipdDecryptor; `onFilename` receives the Literal Data filename (our codec name) before any content. */
export interface SeipdDecryptOptions {
  onFilename?: (name: string) => void;
}

/** The AEAD layer's state, known once the packet's parameters and salt are read. */
interface Aead {
  key: KeyObject;
  nonce: Buffer;
  /** Packet tag, version, cipher, AEAD, chunk size byte: both the HKDF info and every chunk's associated data. */
  adata: Buffer;
  chunkSize: number;
}

/** Check the version and algorithms and derive the key and IV (RFC 9580 5.13.2). */
function deriveAead(params: Buffer, salt: Buffer, sessionKey: Uint8Array): Aead {
  const version = params.readUInt8(0);
  const cipher = params.readUInt8(1);
  const aead = params.readUInt8(2);
  const chunkSizeByte = params.readUInt8(3);
  if (version !== SEIPD_VERSION) throw new Error(`unsupported encrypted data version ${version}`);
  if (cipher !== CIPHER_AES256) throw new Error(`unsupported cipher algorithm ${cipher}`);
  if (aead !== AEAD_GCM) throw new Error(`unsupported AEAD algorithm ${aead}`);
  if (chunkSizeByte > MAX_CHUNK_SIZE_BYTE) throw new Error(`unsupported AEAD chunk size byte ${chunkSizeByte}`);
  // The info uses the new-format tag byte whatever header form the packet came in.
  const adata = Buffer.concat([Buffer.of(0xc0 | PacketTag.seipd), params]);
  const { key, nonce } = deriveMessageKey(sessionKey, salt, adata);
  return { key: createSecretKey(key), nonce, adata, chunkSize: 1 << (chunkSizeByte + 6) };
}

/** Strips the Literal Data packet around the content: its header, partial lengths, format, filename and date. */
class LiteralReader {
  private readonly packet = new PacketBodyReader();
  /** Format, filename length, filename and date, gathered until complete (at most 261 bytes). */
  private prefix: Buffer | undefined = Buffer.alloc(0);

  constructor(private readonly onFilename: ((name: string) => void) | undefined) {}

  get done(): boolean {
    return this.packet.done && this.prefix === undefined;
  }

  /** Add AEAD plaintext; returns the content bytes among it. */
  push(plain: Buffer): Buffer[] {
    const parts = this.packet.push(plain);
    if (this.packet.tag !== undefined && this.packet.tag !== PacketTag.literal) {
      throw new Error(`unexpected packet tag ${this.packet.tag} in the encrypted data`);
    }
    if (this.prefix === undefined) return parts;
    const out: Buffer[] = [];
    for (const part of parts) {
      if (this.prefix === undefined) {
        out.push(part);
        continue;
      }
      const rest = this.readPrefix(part);
      if (rest.length) out.push(rest);
    }
    return out;
  }

  /** Consume prefix bytes from the start of `part`; returns the content that follows them. */
  private readPrefix(part: Buffer): Buffer {
    let prefix = this.prefix as Buffer;
    let pos = 0;
    // Two rounds at most: the fixed bytes give the filename length, which gives the rest.
    for (let need = missingPrefix(prefix); need > 0 && pos < part.length; need = missingPrefix(prefix)) {
      const n = Math.min(need, part.length - pos);
      prefix = Buffer.concat([prefix, part.subarray(pos, pos + n)]);
      pos += n;
    }
    if (missingPrefix(prefix) > 0) {
      this.prefix = prefix;
    } else {
      this.onFilename?.(prefix.toString('utf8', LITERAL_FIXED, prefix.length - LITERAL_DATE));
      this.prefix = undefined;
    }
    return part.subarray(pos);
  }
}

/** Bytes of the Literal Data prefix still missing, as far as the bytes gathered so far tell. */
function missingPrefix(prefix: Buffer): number {
  const nameLength = prefix[LITERAL_FIXED - 1];
  if (nameLength === undefined) return LITERAL_FIXED - prefix.length;
  return LITERAL_FIXED + nameLength + LITERAL_DATE - prefix.length;
}

/**
 * A stream.pipeline stage: the bytes of exactly one SEIPDv2 packet (AES-256, GCM) in, the content of
 * the Literal Data packet inside out. Any damage, truncation, extra bytes or a wrong session key throws
 * IntegrityError naming `object`; errors of the source itself pass through unchanged.
 */
export function seipdDecryptor(
  sessionKey: Uint8Array,
  object: string,
  options: SeipdDecryptOptions = {},
): (source: AsyncIterable<Uint8Array>) => AsyncGenerator<Buffer> {
  /** Run a parsing step, turning its plain Error into an IntegrityError about `where`. */
  function parse<T>(where: string, step: () => T): T {
    try {
      return step();
    } catch (err) {
      throw new IntegrityError(object, `${where}: ${describeError(err)}`, { cause: err });
    }
  }

  return async function* decrypt(source) {
    const outer = new PacketBodyReader();
    const body = new ByteQueue();
    const literal = new LiteralReader(options.onFilename);
    let aead: Aead | undefined;
    let index = 0;
    let total = 0;

    /** Decrypt one chunk (or, with no ciphertext, check a tag) and verify its tag before returning anything. */
    const open = (a: Aead, ciphertext: Buffer[], tag: Buffer, adata: Buffer, what: string): Buffer[] => {
      setChunkIndex(a.nonce, BigInt(index));
      const decipher = createDecipheriv('aes-256-gcm', a.key, a.nonce, { authTagLength: TAG_LENGTH });
      decipher.setAAD(adata);
      decipher.setAuthTag(tag);
      const plain = ciphertext.map((c) => decipher.update(c));
      try {
        decipher.final();
      } catch (err) {
        throw new IntegrityError(object, `authentication failed at ${what}`, { cause: err });
      }
      return plain;
    };
    const openChunk = (a: Aead, length: number): Buffer[] => {
      const plain = open(a, body.take(length), body.takeBuffer(TAG_LENGTH), a.adata, `chunk ${index}`);
      index++;
      total += length;
      return plain.flatMap((p) => parse('literal data', () => literal.push(p)));
    };

    for await (const data of source) {
      const bytes = asBuffer(data);
      for (const part of parse('encrypted packet', () => outer.push(bytes))) body.push(part);
      if (outer.tag !== undefined && outer.tag !== PacketTag.seipd) {
        throw new IntegrityError(object, `not an encrypted data packet (tag ${outer.tag})`);
      }
      if (aead === undefined && body.length >= PARAMS_LENGTH + SALT_LENGTH) {
        const params = body.takeBuffer(PARAMS_LENGTH);
        const salt = body.takeBuffer(SALT_LENGTH);
        aead = parse('encrypted packet', () => deriveAead(params, salt, sessionKey));
      }
      // A full chunk is certain only when more than a chunk and the final tag are queued; a shorter
      // remainder may be the last chunk, which is opened after the source ends.
      while (aead !== undefined && body.length >= aead.chunkSize + 2 * TAG_LENGTH) {
        for (const content of openChunk(aead, aead.chunkSize)) yield content;
      }
    }
    if (!outer.done || aead === undefined) throw new IntegrityError(object, 'truncated');
    const last = body.length - 2 * TAG_LENGTH;
    if (last < 0 && body.length !== TAG_LENGTH) throw new IntegrityError(object, 'truncated');
    const tail = last >= 0 ? openChunk(aead, last) : [];
    const finalAdata = Buffer.alloc(aead.adata.length + 8);
    aead.adata.copy(finalAdata);
    finalAdata.writeBigUInt64BE(BigInt(total), aead.adata.length);
    // The final tag covers the chunk count and total length: it catches truncation at a chunk boundary.
    open(aead, [], body.takeBuffer(TAG_LENGTH), finalAdata, 'the final tag (truncated or reordered)');
    for (const content of tail) yield content;
    if (!literal.done) throw new IntegrityError(object, 'literal data: truncated');
  };
}
