import { IntegrityError } from '../../errors.js';
import { ID_SIZE, RECORD_SIZE, decodeRecord, encodeRecord, type BlobLocation, type IndexEntry } from './records.js';

/**
 * The compact list of the blobs in content objects, grouped by object, section (one set of key
 * packets) and bundle; it is both a pack's own trailer and the body of an index object
 * (docs/ARCHITECTURE.md "Index"). Numbers are unsigned LEB128 varints:
 *   object:  kind (1 byte: 1 chunk, 2 pack; 0 ends the list) | object id (32) | sections
 *   section: key offset | bundles        bundle: offset | length | blobs
 *   blob:    id (32) | offset in the bundle's plaintext | length
 * followed, after the end byte, by the number of blobs listed.
 */
export interface ObjectBlobs {
  kind: 'chunk' | 'pack';
  objectId: string;
  sections: { keyOffset: number; bundles: { offset: number; length: number; blobs: { id: Buffer; offset: number; length: number }[] }[] }[];
}

const KINDS = ['', 'chunk', 'pack'] as const;

function putVarint(out: number[], value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`blob list: ${value} is not a non-negative integer`);
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

/** One bundle's part of an object's entry: its offset, length and blobs. */
export function encodeBundle(b: ObjectBlobs['sections'][number]['bundles'][number]): Buffer {
  const parts: Buffer[] = [];
  let head: number[] = [];
  putVarint(head, b.offset);
  putVarint(head, b.length);
  putVarint(head, b.blobs.length);
  for (const blob of b.blobs) {
    parts.push(Buffer.from(head), blob.id);
    head = [];
    putVarint(head, blob.offset);
    putVarint(head, blob.length);
  }
  parts.push(Buffer.from(head));
  return Buffer.concat(parts);
}

/** The start of an object's entry: kind, id and number of sections. */
export function encodeObjectHead(kind: ObjectBlobs['kind'], objectId: string, sections: number): Buffer {
  const head = [KINDS.indexOf(kind)];
  const tail: number[] = [];
  putVarint(tail, sections);
  return Buffer.concat([Buffer.from(head), Buffer.from(objectId, 'hex'), Buffer.from(tail)]);
}

/** The start of a section: where its key packets are and how many bundles follow. */
export function encodeSectionHead(keyOffset: number, bundles: number): Buffer {
  const out: number[] = [];
  putVarint(out, keyOffset);
  putVarint(out, bundles);
  return Buffer.from(out);
}

/** Bytes of one object's entry in a blob list. */
export function encodeObjectBlobs(o: ObjectBlobs): Buffer {
  const parts = [encodeObjectHead(o.kind, o.objectId, o.sections.length)];
  for (const s of o.sections) {
    parts.push(encodeSectionHead(s.keyOffset, s.bundles.length));
    for (const b of s.bundles) parts.push(encodeBundle(b));
  }
  return Buffer.concat(parts);
}

/** The bytes that end a blob list that listed `count` blobs. */
export function encodeBlobListEnd(count: number): Buffer {
  const out = [0];
  putVarint(out, count);
  return Buffer.from(out);
}

/** Not enough bytes yet: the parser waits for more. */
class NeedMore extends Error {}
const NEED_MORE = new NeedMore();

/** Reads fields from a buffer; throws NEED_MORE when it runs out. */
class Cursor {
  constructor(
    readonly buf: Buffer,
    public at = 0,
  ) {}

  byte(): number {
    if (this.at >= this.buf.length) throw NEED_MORE;
    return this.buf[this.at++]!;
  }

  varint(): number {
    let value = 0;
    for (let scale = 1; ; scale *= 0x80) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      if (scale > 2 ** 49) throw new Error('varint too long');
    }
  }

  id(): number {
    if (this.at + ID_SIZE > this.buf.length) throw NEED_MORE;
    const at = this.at;
    this.at += ID_SIZE;
    return at;
  }
}

type Phase = 'object' | 'section' | 'bundle' | 'blob' | 'ended';

/**
 * Streaming parser of a blob list: bytes in (split anywhere), fixed index records (RECORD_SIZE each,
 * records.ts) out. Each step reads one whole item or nothing, so a split item is parsed again once its
 * bytes are there. Throws IntegrityError naming `object` on malformed input or a wrong blob count.
 */
export class BlobListParser {
  private pending = Buffer.alloc(0);
  private phase: Phase = 'object';
  private sectionsLeft = 0;
  private bundlesLeft = 0;
  private blobsLeft = 0;
  private count = 0;
  private loc: BlobLocation = { kind: 'pack', objectId: '', keyOffset: 0, bundleOffset: 0, bundleLength: 0, blobOffset: 0, rawLength: 0 };

  constructor(private readonly object: string) {}

  /** Add bytes; returns the complete records among them (whole records, possibly none). */
  push(data: Buffer): Buffer {
    const buf = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    const out = new RecordBatch();
    const c = new Cursor(buf);
    let mark = 0;
    try {
      for (;;) {
        mark = c.at;
        this.step(c, out);
      }
    } catch (err) {
      if (err !== NEED_MORE) {
        if (err instanceof IntegrityError) throw err;
        throw new IntegrityError(this.object, `malformed blob list (${err instanceof Error ? err.message : String(err)})`);
      }
    }
    this.pending = Buffer.from(buf.subarray(mark));
    return out.bytes();
  }

  /** The list is complete; throws if it was truncated. */
  end(): void {
    if (this.phase !== 'ended' || this.pending.length > 0) throw new IntegrityError(this.object, 'blob list is truncated');
  }

  /** Read one item; state changes only once the whole item was read. */
  private step(c: Cursor, out: RecordBatch): void {
    switch (this.phase) {
      case 'object': {
        const kind = c.byte();
        if (kind === 0) {
          const stated = c.varint();
          if (stated !== this.count) throw new IntegrityError(this.object, `blob list holds ${this.count} blobs but its end says ${stated}`);
          this.phase = 'ended';
          return;
        }
        const name = KINDS[kind];
        if (!name) throw new Error(`unknown object kind ${kind}`);
        const idAt = c.id();
        const sections = c.varint();
        this.loc = { ...this.loc, kind: name, objectId: c.buf.toString('hex', idAt, idAt + ID_SIZE) };
        this.sectionsLeft = sections;
        break;
      }
      case 'section': {
        const keyOffset = c.varint();
        const bundles = c.varint();
        this.loc.keyOffset = keyOffset;
        this.bundlesLeft = bundles;
        this.sectionsLeft--;
        break;
      }
      case 'bundle': {
        const offset = c.varint();
        const length = c.varint();
        const blobs = c.varint();
        this.loc.bundleOffset = offset;
        this.loc.bundleLength = length;
        this.blobsLeft = blobs;
        this.bundlesLeft--;
        break;
      }
      case 'blob': {
        const idAt = c.id();
        const offset = c.varint();
        const length = c.varint();
        this.loc.blobOffset = offset;
        this.loc.rawLength = length;
        const slot = out.reserve();
        encodeRecord(c.buf.subarray(idAt, idAt + ID_SIZE), this.loc, slot.buf, slot.at);
        this.count++;
        this.blobsLeft--;
        break;
      }
      case 'ended':
        if (c.at < c.buf.length) throw new IntegrityError(this.object, 'blob list: bytes after its end');
        throw NEED_MORE;
    }
    this.phase = this.blobsLeft > 0 ? 'blob' : this.bundlesLeft > 0 ? 'bundle' : this.sectionsLeft > 0 ? 'section' : 'object';
  }
}

/** Records gathered by one push, in buffers of 512. */
class RecordBatch {
  private readonly full: Buffer[] = [];
  private buf = Buffer.alloc(0);
  private used = 0;

  /** Room for one more record: the buffer and the offset to write it at. */
  reserve(): { buf: Buffer; at: number } {
    if (this.used + RECORD_SIZE > this.buf.length) {
      if (this.used > 0) this.full.push(this.buf.subarray(0, this.used));
      this.buf = Buffer.allocUnsafe(RECORD_SIZE * 512);
      this.used = 0;
    }
    const at = this.used;
    this.used += RECORD_SIZE;
    return { buf: this.buf, at };
  }

  /** Every record reserved, as one buffer. */
  bytes(): Buffer {
    const parts = this.used > 0 ? [...this.full, this.buf.subarray(0, this.used)] : this.full;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }
}

/** Every entry of a complete blob list held in memory (a pack trailer). */
export function parseBlobList(bytes: Buffer, object: string): IndexEntry[] {
  const parser = new BlobListParser(object);
  const records = parser.push(bytes);
  parser.end();
  const out: IndexEntry[] = [];
  for (let at = 0; at < records.length; at += RECORD_SIZE) out.push(decodeRecord(records, at, object));
  return out;
}

/** Group the entries of one object (as a trailer lists them) back into an ObjectBlobs. */
export function objectBlobsOf(entries: IndexEntry[]): ObjectBlobs {
  const first = entries[0];
  if (!first) throw new RangeError('objectBlobsOf needs at least one entry');
  const out: ObjectBlobs = { kind: first.loc.kind, objectId: first.loc.objectId, sections: [] };
  for (const { id, loc } of entries) {
    let section = out.sections.at(-1);
    if (section?.keyOffset !== loc.keyOffset) out.sections.push((section = { keyOffset: loc.keyOffset, bundles: [] }));
    let bundle = section.bundles.at(-1);
    if (bundle?.offset !== loc.bundleOffset) section.bundles.push((bundle = { offset: loc.bundleOffset, length: loc.bundleLength, blobs: [] }));
    bundle.blobs.push({ id, offset: loc.blobOffset, length: loc.rawLength });
  }
  return out;
}

/** A whole blob list (with its end) from entries in which each object's entries come together. */
export async function* encodeBlobList(entries: AsyncIterable<IndexEntry> | Iterable<IndexEntry>): AsyncGenerator<Buffer> {
  let group: IndexEntry[] = [];
  let count = 0;
  for await (const e of entries) {
    if (group.length > 0 && (group[0]!.loc.objectId !== e.loc.objectId || group[0]!.loc.kind !== e.loc.kind)) {
      yield encodeObjectBlobs(objectBlobsOf(group));
      group = [];
    }
    group.push(e);
    count++;
  }
  if (group.length > 0) yield encodeObjectBlobs(objectBlobsOf(group));
  yield encodeBlobListEnd(count);
}
