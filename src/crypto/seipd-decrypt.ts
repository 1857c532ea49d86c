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
 * Synchronous SEIPDv2 (AES-256, GCM) reader: the bytes of exactly one packet in (split anywhere), the
 * content of the Literal Data packet inside out. Plaintext is released only once its AEAD tag verified;
 * the last chunk's only after the final tag (which covers the total length) verified too. Any damage,
 * truncation, extra bytes or a wrong session key throws IntegrityError naming `object`.
 */
export class SeipdReader {
  private readonly outer = new PacketBodyReader();
  private readonly body = new ByteQueue();
  private readonly literal: LiteralReader;
  private aead: Aead | undefined;
  private index = 0;
  private total = 0;

  constructor(
    private readonly sessionKey: Uint8Array,
    private readonly object: string,
    options: SeipdDecryptOptions = {},
  ) {
    this.literal = new LiteralReader(options.onFilename);
  }

  /** Add packet bytes; returns the content that is verified and ready. */
  push(data: Uint8Array): Buffer[] {
    const bytes = asBuffer(data);
    for (const part of this.parse('encrypted packet', () => this.outer.push(bytes))) this.body.push(part);
    if (this.outer.tag !== undefined && this.outer.tag !== PacketTag.seipd) {
      throw new IntegrityError(this.object, `not an encrypted data packet (tag ${this.outer.tag})`);
    }
    if (this.aead === undefined && this.body.length >= PARAMS_LENGTH + SALT_LENGTH) {
      const params = this.body.takeBuffer(PARAMS_LENGTH);
      const salt = this.body.takeBuffer(SALT_LENGTH);
      this.aead = this.parse('encrypted packet', () => deriveAead(params, salt, this.sessionKey));
    }
    const out: Buffer[] = [];
    // A full chunk is certain only when more than a chunk and the final tag are queued; a shorter
    // remainder may be the last chunk, which is opened at the end.
    while (this.aead !== undefined && this.body.length >= this.aead.chunkSize + 2 * TAG_LENGTH) {
      out.push(...this.openChunk(this.aead, this.aead.chunkSize));
    }
    return out;
  }

  /** The packet is complete: returns the last content, after checking the final tag. */
  end(): Buffer[] {
    const aead = this.aead;
    if (!this.outer.done || aead === undefined) throw new IntegrityError(this.object, 'truncated');
    const last = this.body.length - 2 * TAG_LENGTH;
    if (last < 0 && this.body.length !== TAG_LENGTH) throw new IntegrityError(this.object, 'truncated');
    const tail = last >= 0 ? this.openChunk(aead, last) : [];
    const finalAdata = Buffer.alloc(aead.adata.length + 8);
    aead.adata.copy(finalAdata);
    finalAdata.writeBigUInt64BE(BigInt(this.total), aead.adata.length);
    // The final tag covers the chunk count and total length: it catches truncation at a chunk boundary.
    this.open(aead, [], this.body.takeBuffer(TAG_LENGTH), finalAdata, 'the final tag (truncated or reordered)');
    if (!this.literal.done) throw new IntegrityError(this.object, 'literal data: truncated');
    return tail;
  }

  /** Run a parsing step, turning its plain Error into an IntegrityError about `where`. */
  private parse<T>(where: string, step: () => T): T {
    try {
      return step();
    } catch (err) {
      throw new IntegrityError(this.object, `${where}: ${describeError(err)}`, { cause: err });
    }
  }

  /** Decrypt one chunk (or, with no ciphertext, check a tag) and verify its tag before returning anything. */
  private open(a: Aead, ciphertext: Buffer[], tag: Buffer, adata: Buffer, what: string): Buffer[] {
    setChunkIndex(a.nonce, BigInt(this.index));
    const decipher = createDecipheriv('aes-256-gcm', a.key, a.nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(adata);
    decipher.setAuthTag(tag);
    const plain = ciphertext.map((c) => decipher.update(c));
    try {
      decipher.final();
    } catch (err) {
      throw new IntegrityError(this.object, `authentication failed at ${what}`, { cause: err });
    }
    return plain;
  }

  private openChunk(a: Aead, length: number): Buffer[] {
    const plain = this.open(a, this.body.take(length), this.body.takeBuffer(TAG_LENGTH), a.adata, `chunk ${this.index}`);
    this.index++;
    this.total += length;
    return plain.flatMap((p) => this.parse('literal data', () => this.literal.push(p)));
  }
}

/** Decrypt a whole packet held in memory (bounded by the caller); returns its content. */
export function openPacket(packet: Uint8Array, sessionKey: Uint8Array, object: string, options: SeipdDecryptOptions = {}): Buffer[] {
  const reader = new SeipdReader(sessionKey, object, options);
  const out = reader.push(packet);
  out.push(...reader.end());
  return out;
}

/**
 * SeipdReader as a stream.pipeline stage. Errors of the source itself pass through unchanged.
 */
export function seipdDecryptor(
  sessionKey: Uint8Array,
  object: string,
  options: SeipdDecryptOptions = {},
): (source: AsyncIterable<Uint8Array>) => AsyncGenerator<Buffer> {
  return async function* decrypt(source) {
    const reader = new SeipdReader(sessionKey, object, options);
    for await (const data of source) yield* reader.push(data);
    yield* reader.end();
  };
}
