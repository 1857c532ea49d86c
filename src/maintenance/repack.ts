import { randomBytes } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError } from '../errors.js';
import { MAX_BLOBS_PER_PACK, encodeTrailer } from '../repo/content-codec.js';
import { encodeBundle, encodeObjectHead, encodeSectionHead } from '../repo/index/blob-list.js';
import { Layout } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { bundlesOf, type Bundle, type ObjectGroup } from './inventory.js';
import { CHOSEN, Loc, locationRecord, parseObjectKey } from './locations.js';
import type { RecordWriter } from './record-stream.js';

/** Wanted bundles closer together than this are fetched in one ranged read (reading through the gap). */
const GAP = 256 * 1024;

/** A new pack being written to a temp file. */
interface NewPack {
  id: string;
  path: string;
  handle: FileHandle;
  size: number;
  blobs: number;
  /** Finished sections' blob-list bytes, how many, and the open one. */
  sections: Buffer[];
  sectionCount: number;
  section: { from: string; keyOffset: number; bundles: Buffer[] } | undefined;
}

/**
 * Copies the live bundles of old content objects into new packs (docs/maintenance.md "Repacking"):
 * whole bundles, ciphertext as stored, each section with the key packets that open it, so no key is
 * needed and nothing is re-encrypted. A bundle with any live blob is kept whole; the new pack gets a
 * trailer like the packer's, and its chosen blobs' entries go to `entries` for the new index.
 */
export class Repacker {
  private pack: NewPack | undefined;
  packs = 0;
  bytes = 0;

  constructor(
    private readonly repo: Repository,
    private readonly tempDir: string,
    private readonly entries: RecordWriter,
    private readonly signal?: AbortSignal,
  ) {}

  /** Copy the live bundles of one old object; resolves when their bytes are in new packs (stored or open). */
  async copy(group: ObjectGroup): Promise<void> {
    const loc = parseObjectKey(group.key);
    const bundles = bundlesOf(group);
    // Key packets end before the first bundle of their section that the index knows of.
    const firstOfSection = new Map<number, number>();
    for (const b of bundles) if (!firstOfSection.has(b.keyOffset)) firstOfSection.set(b.keyOffset, b.offset);
    const headers = new Map<number, Buffer>();
    const live = bundles.filter((b) => b.live);
    for (let i = 0; i < live.length; ) {
      let j = i + 1;
      while (j < live.length && live[j]!.offset - (live[j - 1]!.offset + live[j - 1]!.length) <= GAP) j++;
      const run = live.slice(i, j);
      for (const b of run) if (!headers.has(b.keyOffset)) headers.set(b.keyOffset, await this.repo.keyPackets(loc, b.keyOffset, firstOfSection.get(b.keyOffset)!));
      await this.copyRun(group, loc, run, headers);
      i = j;
    }
  }

  /** One ranged read over `run`, writing the bundles' bytes and skipping what lies between them. */
  private async copyRun(group: ObjectGroup, loc: ReturnType<typeof parseObjectKey>, run: Bundle[], headers: Map<number, Buffer>): Promise<void> {
    const key = group.key;
    const object = loc.kind === 'chunk' ? Layout.chunk(loc.objectId) : Layout.pack(loc.objectId);
    const start = run[0]!.offset;
    const end = run.at(-1)!.offset + run.at(-1)!.length;
    const stream = await this.repo.readRaw(loc, { offset: start, length: end - start });
    let pos = start;
    let b = 0;
    let written = 0;
    try {
      for await (const piece of stream as AsyncIterable<Buffer>) {
        this.signal?.throwIfAborted();
        let at = 0;
        while (at < piece.length && b < run.length) {
          const bundle = run[b]!;
          if (pos < bundle.offset) {
            const skip = Math.min(bundle.offset - pos, piece.length - at);
            at += skip;
            pos += skip;
            continue;
          }
          if (pos === bundle.offset) await this.startBundle(key, bundle, headers.get(bundle.keyOffset)!);
          const take = Math.min(bundle.offset + bundle.length - pos, piece.length - at);
          await this.write(piece.subarray(at, at + take));
          at += take;
          pos += take;
          written += take;
          if (pos === bundle.offset + bundle.length) {
            await this.endBundle(group, bundle);
            b++;
          }
        }
      }
    } finally {
      stream.destroy();
    }
    const wanted = run.reduce((n, x) => n + x.length, 0);
    if (written !== wanted) throw new IntegrityError(object, `is shorter than the index says (${written} of ${wanted} bundle bytes read); nothing was deleted`);
  }

  /** Make room for a bundle: a new pack when the open one is full, a new section when its key packets differ. */
  private async startBundle(key: string, bundle: Bundle, header: Buffer): Promise<void> {
    const config = this.repo.config;
    if (this.pack && (this.pack.size + bundle.length > config.packSize || this.pack.blobs + (bundle.end - bundle.first) > MAX_BLOBS_PER_PACK)) await this.finishPack();
    const pack = this.pack ?? (await this.openPack());
    const from = `${key}@${bundle.keyOffset}`;
    if (pack.section?.from !== from) {
      this.closeSection(pack);
      pack.section = { from, keyOffset: pack.size, bundles: [] };
      await this.write(header);
    }
  }

  /**
   * The bundle's bytes are written: record it in the pack's blob list, and its chosen blobs in the new
   * index's entries (which are used only once every new pack is stored).
   */
  private async endBundle(group: ObjectGroup, bundle: Bundle): Promise<void> {
    const pack = this.pack!;
    const offset = pack.size - bundle.length;
    const seen = new Set<string>();
    const blobs: { id: Buffer; offset: number; length: number }[] = [];
    for (const r of group.records.range(bundle.first, bundle.end)) {
      const where = `${Loc.blobOffset(r)}/${Loc.id(r)}`;
      if (seen.has(where)) continue;
      seen.add(where);
      const id = Buffer.from(Loc.id(r), 'latin1');
      blobs.push({ id, offset: Loc.blobOffset(r), length: Loc.rawLength(r) });
      if (Loc.flags(r) & CHOSEN) {
        const loc = { kind: 'pack' as const, objectId: pack.id, keyOffset: pack.section!.keyOffset, bundleOffset: offset, bundleLength: bundle.length, blobOffset: Loc.blobOffset(r), rawLength: Loc.rawLength(r) };
        await this.entries.write(locationRecord(id, loc, Loc.flags(r)));
      }
    }
    pack.section!.bundles.push(encodeBundle({ offset, length: bundle.length, blobs }));
    pack.blobs += blobs.length;
  }

  private closeSection(pack: NewPack): void {
    if (!pack.section) return;
    pack.sections.push(encodeSectionHead(pack.section.keyOffset, pack.section.bundles.length), ...pack.section.bundles);
    pack.sectionCount++;
    pack.section = undefined;
  }

  private async write(bytes: Buffer, pack = this.pack!): Promise<void> {
    for (let done = 0; done < bytes.length; ) done += (await pack.handle.write(bytes, done, bytes.length - done, pack.size + done)).bytesWritten;
    pack.size += bytes.length;
  }

  private async openPack(): Promise<NewPack> {
    const id = randomBytes(32).toString('hex');
    const path = join(this.tempDir, `repack-${id}`);
    this.pack = { id, path, handle: await open(path, 'wx'), size: 0, blobs: 0, sections: [], sectionCount: 0, section: undefined };
    return this.pack;
  }

  /** Trailer, upload, and the pack's entries to the new index. */
  private async finishPack(): Promise<void> {
    const pack = this.pack;
    if (!pack) return;
    this.pack = undefined;
    try {
      this.closeSection(pack);
      const name = Layout.pack(pack.id);
      const entry = Buffer.concat([encodeObjectHead('pack', pack.id, pack.sectionCount), ...pack.sections]);
      const trailer = encodeTrailer(this.repo.secrets, name, entry, pack.blobs);
      await this.write(trailer, pack);
      await pack.handle.close();
      await this.repo.put(name, { file: pack.path, size: pack.size, consumable: true });
      this.packs++;
      this.bytes += pack.size;
    } finally {
      await pack.handle.close().catch(() => undefined);
      await rm(pack.path, { force: true });
    }
  }

  /** Store the last pack. */
  finish(): Promise<void> {
    return this.finishPack();
  }

  /** Drop the open pack (on error or cancel); packs already stored are garbage a later prune removes. */
  async abort(): Promise<void> {
    const pack = this.pack;
    this.pack = undefined;
    if (!pack) return;
    await pack.handle.close().catch(() => undefined);
    await rm(pack.path, { force: true });
  }
}
