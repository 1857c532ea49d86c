import { asBuffer } from '../util/bytes.js';

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

/** FIFO of buffers that hands out exact byte counts as slices, so ciphertext is never copied into chunks. */
export class ByteQueue {
  private readonly parts: Buffer[] = [];
  length = 0;

  /** Append bytes (kept as they are, not copied). */
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }

  /** The next `n` bytes (n <= length), as slices of the queued buffers. */
  take(n: number): Buffer[] {
    const out: Buffer[] = [];
    this.length -= n;
    while (n > 0) {
      const head = this.parts[0] as Buffer;
      if (head.length <= n) {
        out.push(head);
        this.parts.shift();
        n -= head.length;
      } else {
        out.push(head.subarray(0, n));
        this.parts[0] = head.subarray(n);
        n = 0;
      }
    }
    return out;
  }

  /** Replace the queued slices by one copy, so the buffers they came from can be reused. */
  own(): void {
    if (this.parts.length === 0) return;
    const copy = Buffer.concat(this.parts, this.length);
    this.parts.length = 0;
    this.parts.push(copy);
  }

  /** The next `n` bytes as one buffer; for short fields (tags, salt). */
  takeBuffer(n: number): Buffer {
    const out = this.take(n);
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out, n);
  }
}

/** log2 of the partial body block size. */
const PARTIAL_POWER = 16;
const PARTIAL_SIZE = 1 << PARTIAL_POWER;
const PARTIAL_HEADER = Buffer.of(0xe0 | PARTIAL_POWER);

/**
 * Frames a packet body of unknown length with partial body lengths (RFC 9580 4.2.1.4), so a packet
 * can be streamed without knowing its size: full 64 KiB parts, then a definite-length tail. It returns
 * views of the bytes it was given instead of copying them, so callers must not reuse pushed buffers
 * unless they call own() first.
 */
export class PartialBodyFramer {
  private readonly pending = new ByteQueue();
  private started = false;

  constructor(private readonly tag: number) {}

  /** Add body bytes; returns the framed bytes ready to be written (possibly none). */
  push(data: Buffer): Buffer[] {
    if (data.length === 0) return [];
    this.pending.push(data);
    const out: Buffer[] = [];
    while (this.pending.length >= PARTIAL_SIZE) {
      this.start(out);
      out.push(PARTIAL_HEADER, ...this.pending.take(PARTIAL_SIZE));
    }
    return out;
  }

  /** Copy the bytes held back for the next part (less than one part), so callers may reuse what they pushed. */
  own(): void {
    this.pending.own();
  }

  /** Close the packet: the last part always carries a definite length (possibly zero). */
  finish(): Buffer[] {
    const out: Buffer[] = [];
    this.start(out);
    out.push(definiteLength(this.pending.length), ...this.pending.take(this.pending.length));
    return out;
  }

  private start(out: Buffer[]): void {
    if (this.started) return;
    this.started = true;
    out.push(Buffer.of(0xc0 | this.tag));
  }
}

/** A parsed packet header: tag, where the body starts, and its length (definite lengths only). */
export interface PacketHeaderInfo {
  tag: number;
  headerLength: number;
  bodyLength: number | undefined;
  /** Length of the first part when the body uses partial body lengths. */
  partLength?: number;
}

/** A parsed body length field (RFC 9580 4.2.1): its own size in bytes, the length, and whether more parts follow. */
export interface BodyLength {
  size: number;
  length: number;
  partial: boolean;
}

/** Parse the new-format body length field at `pos`; undefined when more bytes are needed. */
export function parseBodyLength(buf: Uint8Array, pos: number): BodyLength | undefined {
  const l0 = buf[pos];
  if (l0 === undefined) return undefined;
  if (l0 < 192) return { size: 1, length: l0, partial: false };
  if (l0 < 224) {
    const l1 = buf[pos + 1];
    if (l1 === undefined) return undefined;
    return { size: 2, length: ((l0 - 192) << 8) + l1 + 192, partial: false };
  }
  if (l0 === 255) {
    if (pos + 5 > buf.length) return undefined;
    return { size: 5, length: asBuffer(buf).readUInt32BE(pos + 1), partial: false };
  }
  return { size: 1, length: 1 << (l0 & 0x1f), partial: true };
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
  const len = parseBodyLength(buf, pos + 1);
  if (len === undefined) return undefined;
  if (len.partial) return { tag, headerLength: 1 + len.size, bodyLength: undefined, partLength: len.length };
  return { tag, headerLength: 1 + len.size, bodyLength: len.length };
}

/** Longest packet header: tag byte plus a five-byte length. */
const MAX_PACKET_HEADER = 6;

/**
 * Streaming reader of one packet, the inverse of PartialBodyFramer: bytes of the packet in (split
 * anywhere), slices of its body out, without copying them. Accepts definite and partial body lengths;
 * throws (plain Error) on bytes after the packet's end or a legacy packet of indeterminate length.
 */
export class PacketBodyReader {
  /** The packet's tag, once its header has been read. */
  tag: number | undefined;
  /** Header or length-field bytes split across pushes (a few bytes at most). */
  private pending = Buffer.alloc(0);
  private remaining = 0;
  private lastPart = false;

  /** True once the whole body has been read. */
  get done(): boolean {
    return this.lastPart && this.remaining === 0;
  }

  /** Add packet bytes; returns the body bytes among them (slices of `data`). */
  push(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < data.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, data.length - pos);
        out.push(data.subarray(pos, pos + n));
        this.remaining -= n;
        pos += n;
        continue;
      }
      if (this.lastPart) throw new Error(`${data.length - pos} bytes after the end of the packet`);
      const avail = data.subarray(pos, pos + MAX_PACKET_HEADER);
      const head = this.pending.length ? Buffer.concat([this.pending, avail]) : avail;
      const used = this.readLength(head);
      // Fewer bytes than a header can need were available, so all of them are in `head`.
      if (used === undefined) {
        this.pending = Buffer.from(head);
        return out;
      }
      pos += used - this.pending.length;
      this.pending = Buffer.alloc(0);
    }
    return out;
  }

  /** Parse the packet header or the next part's length from `head`; returns the bytes it took. */
  private readLength(head: Buffer): number | undefined {
    if (this.tag === undefined) {
      const info = parsePacketHeader(head, 0);
      if (info === undefined) return undefined;
      const length = info.bodyLength ?? info.partLength;
      if (length === undefined) throw new Error('indeterminate packet length');
      this.tag = info.tag;
      this.remaining = length;
      this.lastPart = info.bodyLength !== undefined;
      return info.headerLength;
    }
    const len = parseBodyLength(head, 0);
    if (len === undefined) return undefined;
    this.remaining = len.length;
    this.lastPart = !len.partial;
    return len.size;
  }
}
