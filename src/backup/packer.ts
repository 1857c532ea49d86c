import { open, rm, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { compress, type Codec } from '../compress/codec.js';
import type { RepoSecrets } from '../crypto/kdf.js';
import { sealPacket } from '../crypto/seipd.js';
import { MAX_BLOBS_PER_PACK, encodeTrailer } from '../repo/content-codec.js';
import { encodeBundle, encodeObjectHead, encodeSectionHead } from '../repo/index/blob-list.js';
import { Layout } from '../repo/layout.js';
import { WriteBehind } from '../platform/index.js';
import type { ByteBudget } from '../util/byte-budget.js';
import { writeAll } from '../util/write-all.js';
import type { RunIndex } from './run-index.js';
import type { KeyedHeader, SessionKeys } from './session-keys.js';
import type { Uploader } from './uploader.js';

interface OpenPack {
  id: string;
  path: string;
  handle: FileHandle;
  /** A pack grows slowly to 16 MiB: its dirty pages would count against a pod's memory limit all that time (docs/ARCHITECTURE.md "Memory does not grow with the data"). */
  behind: WriteBehind;
  size: number;
  key: KeyedHeader;
  /** The blob-list entries of its bundles, encoded as they are written (~36 bytes a blob). */
  bundles: Buffer[];
  blobs: number;
}

/** Blobs in one bundle, at most. */
const MAX_BLOBS_PER_BUNDLE = 4096;

/**
 * Builds composite objects for small files (brackup's composite chunks): blobs are gathered into a
 * bundle of about `bundleSize` plaintext bytes, which is compressed and encrypted as one OpenPGP packet
 * under the pack's session key and appended to the pack's temp file. One cipher set-up and one deflate
 * per bundle instead of per file; restoring one small file reads and decrypts only its bundle. A full
 * pack gets its trailer (the list of its blobs) and goes to the upload queue.
 */
export class Packer {
  private pack: OpenPack | undefined;
  private parts: Buffer[] = [];
  private bundleBlobs: { id: Buffer; offset: number; length: number }[] = [];
  private bundled = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Blob bytes added, before compression. */
  added = 0;

  constructor(
    private readonly secrets: RepoSecrets,
    private readonly tempDir: string,
    private readonly packSize: number,
    private readonly bundleSize: number,
    private readonly reserve: number,
    private readonly budget: ByteBudget,
    private readonly uploader: Uploader,
    private readonly keys: SessionKeys,
    private readonly index: RunIndex,
  ) {}

  /**
   * Add a blob (its id claimed in the run index by the caller). The packer keeps `data` until the
   * bundle is sealed: the caller must not reuse it. Resolves once the blob is in an open bundle, or,
   * when this blob filled it, once the bundle is written (bundles and packs are written in order).
   */
  add(id: Buffer, data: Buffer): Promise<void> {
    this.bundleBlobs.push({ id, offset: this.bundled, length: data.length });
    this.parts.push(data);
    this.bundled += data.length;
    this.added += data.length;
    if (this.bundled < this.bundleSize && this.bundleBlobs.length < MAX_BLOBS_PER_BUNDLE) return Promise.resolve();
    return this.sealBundle();
  }

  /** Compress and encrypt the open bundle and append it to the pack (serialised behind earlier ones). */
  private sealBundle(): Promise<void> {
    if (this.bundleBlobs.length === 0) return this.queue.then(() => undefined);
    const parts = this.parts;
    const blobs = this.bundleBlobs;
    this.parts = [];
    this.bundleBlobs = [];
    this.bundled = 0;
    // Compression runs on the thread pool while this thread packs on; bundles are appended in order.
    const compressed = compress(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    compressed.catch(() => undefined);
    const done = this.queue.then(async () => this.append(await compressed, blobs));
    this.queue = done.catch(() => undefined);
    return done;
  }

  private async append({ codec, bytes }: { codec: Codec; bytes: Buffer }, blobs: { id: Buffer; offset: number; length: number }[]): Promise<void> {
    const pack = this.pack ?? (await this.openPack());
    const sealed = sealPacket([bytes], { sessionKey: pack.key.sessionKey, filename: codec });
    const length = sealed.reduce((n, b) => n + b.length, 0);
    await writeAll(pack.handle, sealed, pack.size);
    const bundle = { offset: pack.size, length, blobs };
    pack.bundles.push(encodeBundle(bundle));
    pack.blobs += blobs.length;
    pack.size += length;
    pack.behind.written(pack.size);
    await this.index.located(blobs.map((b) => ({ id: b.id, loc: { kind: 'pack', objectId: pack.id, keyOffset: 0, bundleOffset: bundle.offset, bundleLength: length, blobOffset: b.offset, rawLength: b.length } })));
    if (pack.size >= this.packSize || pack.blobs >= MAX_BLOBS_PER_PACK) await this.finishPack();
  }

  private async openPack(): Promise<OpenPack> {
    await this.budget.reserve(this.reserve);
    const id = randomBytes(32).toString('hex');
    const path = join(this.tempDir, `pack-${id}`);
    const key = await this.keys.next();
    const handle = await open(path, 'wx');
    await writeAll(handle, [key.header], 0);
    this.pack = { id, path, handle, behind: new WriteBehind(handle.fd), size: key.header.length, key, bundles: [], blobs: 0 };
    return this.pack;
  }

  private async finishPack(): Promise<void> {
    const pack = this.pack;
    if (!pack) return;
    this.pack = undefined;
    const name = Layout.pack(pack.id);
    const entry = Buffer.concat([encodeObjectHead('pack', pack.id, 1), encodeSectionHead(0, pack.bundles.length), ...pack.bundles]);
    const trailer = encodeTrailer(this.secrets, name, entry, pack.blobs);
    try {
      await writeAll(pack.handle, [trailer], pack.size);
      await pack.handle.close();
    } catch (err) {
      await pack.handle.close().catch(() => undefined);
      await rm(pack.path, { force: true });
      this.budget.release(this.reserve);
      throw err;
    }
    const size = pack.size + trailer.length;
    await this.index.recordObject(entry);
    this.uploader.submit(name, { file: pack.path, size }, this.reserve);
  }

  /** Seal the open bundle and send the last, partly filled pack to the upload queue. */
  async flush(): Promise<void> {
    await this.sealBundle();
    await this.queue;
    await this.finishPack();
  }

  /** Drop the open pack (on error or cancel). */
  async abort(): Promise<void> {
    await this.queue;
    const pack = this.pack;
    this.pack = undefined;
    if (!pack) return;
    await pack.handle.close().catch(() => undefined);
    await rm(pack.path, { force: true });
    this.budget.release(this.reserve);
  }
}
