/** OpenPGP packet tags used here (RFC 9580 section 5). */
export const PacketTag = {
  pkesk: 1,
  skesk: 3,
  literal: 11,
  seipd: 18,
} as const;

/** A new-format packet header with a definite length. */
export function packetHeader(tag: number, length: number): Buffer {
  return Buffer.concat([Buffer.of(0xc0 | tag), definiteLength(length)]);
}

/** RFC 9580 4.2.1 definite body length encoding. */
export function definiteLength(length: number): Buffer {
  if (length < 192) return Buffer.of(length);
  if (length < 8384) {
    const v = length - 192;
    return Buffer.of((v >> 8) + 192, v & 0xff);
  }
  const b = Buffer.allocUnsafe(5);
  b[0] = 0xff;
  b.writeUInt32BE(length, 1);
  return b;
}

/** log2 of the partial body block size: 64 KiB blocks keep the framer's buffer small. */
const PARTIAL_POWER = 16;
const PARTIAL_SIZE = 1 << PARTIAL_POWER;

/**
 * Frames a packet body of unknown length with partial body lengths (RFC 9580 4.2.1.4), so a packet
 * can be streamed without knowing its size: full 64 KiB blocks, then a definite-length tail.
 */
export class PartialBodyFramer {
  private block = Buffer.allocUnsafe(PARTIAL_SIZE);
  private filled = 0;
  private started = false;

  constructor(private readonly tag: number) {}

  /** Add body bytes; returns the framed bytes ready to be written (possibly none). */
  push(data: Uint8Array): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < data.length) {
      const n = Math.min(PARTIAL_SIZE - this.filled, data.length - pos);
      this.block.set(data.subarray(pos, pos + n), this.filled);
      this.filled += n;
      pos += n;
      if (this.filled === PARTIAL_SIZE) {
        out.push(this.startByte(), Buffer.of(0xe0 | PARTIAL_POWER), this.block);
        this.block = Buffer.allocUnsafe(PARTIAL_SIZE);
        this.filled = 0;
      }
    }
    return out.filter((b) => b.length > 0);
  }

  /** Close the packet: the last block always carries a definite length (possibly zero). */
  finish(): Buffer[] {
    const tail = this.block.subarray(0, this.filled);
    return [this.startByte(), definiteLength(tail.length), tail].filter((b) => b.length > 0);
  }

  private startByte(): Buffer {
    if (this.started) return Buffer.alloc(0);
    this.started = true;
    return Buffer.of(0xc0 | this.tag);
  }
}

/** A parsed packet header: tag, where the body starts, and its length (definite lengths only). */
export interface PacketHeaderInfo {
  tag: number;
  headerLength: number;
  bodyLength: number | undefined;
}

/** Parse the header of the packet at `pos`; undefined when more bytes are needed. Partial lengths give bodyLength undefined. */
export function parsePacketHeader(buf: Uint8Array, pos: number): PacketHeaderInfo | undefined {
  const first = buf[pos];
  if (first === undefined) return undefined;
  if ((first & 0x80) === 0) throw new Error('not an OpenPGP packet');
  if ((first & 0x40) === 0) {
    // Legacy format, as older tools write: tag in bits 5-2, length type in bits 1-0.
    const tag = (first >> 2) & 0x0f;
    const type = first & 0x03;
    const size = [1, 2, 4, 0][type] ?? 0;
    if (size === 0) return { tag, headerLength: 1, bodyLength: undefined };
    if (pos + 1 + size > buf.length) return undefined;
    let len = 0;
    for (let i = 0; i < size; i++) len = len * 256 + (buf[pos + 1 + i] ?? 0);
    return { tag, headerLength: 1 + size, bodyLength: len };
  }
  const tag = first & 0x3f;
  const l0 = buf[pos + 1];
  if (l0 === undefined) return undefined;
  if (l0 < 192) return { tag, headerLength: 2, bodyLength: l0 };
  if (l0 < 224) {
    const l1 = buf[pos + 2];
    if (l1 === undefined) return undefined;
    return { tag, headerLength: 3, bodyLength: ((l0 - 192) << 8) + l1 + 192 };
  }
  if (l0 === 255) {
    if (pos + 6 > buf.length) return undefined;
    return { tag, headerLength: 6, bodyLength: Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).readUInt32BE(pos + 2) };
  }
  return { tag, headerLength: 2, bodyLength: undefined };
}
