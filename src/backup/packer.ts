import { open, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Codec } from '../compress/codec.js';
import { sealBytes } from '../repo/blob.js';
import { Layout } from '../repo/layout.js';
import type { BlobLocation } from '../repo/tree.js';
import type { ByteBudget } from './budget.js';
import type { KeyedHeader, SessionKeys } from './session-keys.js';
import type { Uploader } from './uploader.js';

interface OpenPack {
  id: string;
  path: string;
  handle: FileHandle;
  size: number;
  key: KeyedHeader;
}

/**
 * Builds composite objects for small files (brackup's composite chunks): each blob is encrypted on its
 * own, under the pack's session key, and appended to the pack's temp file, so restoring one small file
 * reads only its byte range. A full pack goes to the upload queue.
 */
export class Packer {
  private pack: OpenPack | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly tempDir: string,
    private readonly packSize: number,
    private readonly reserve: number,
    private readonly budget: ByteBudget,
    private readonly uploader: Uploader,
    private readonly keys: SessionKeys,
  ) {}

  /** Encrypt a small plaintext (bounded by the small-file threshold) into the current pack. */
  add(plaintext: Uint8Array, codec: Codec): Promise<BlobLocation> {
    // Appends are serialised: blobs land one after another in the pack file.
    const result = this.queue.then(() => this.append(plaintext, codec));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async append(plaintext: Uint8Array, codec: Codec): Promise<BlobLocation> {
    const pack = this.pack ?? (await this.openPack());
    const blob = await sealBytes(plaintext, codec, pack.key.sessionKey);
    await pack.handle.write(blob, 0, blob.length, pack.size);
    const location: BlobLocation = { object: Layout.pack(pack.id), offset: pack.size, length: blob.length, rawLength: plaintext.length, codec };
    pack.size += blob.length;
    if (pack.size >= this.packSize) await this.seal();
    return location;
  }

  private async openPack(): Promise<OpenPack> {
    await this.budget.reserve(this.reserve);
    const id = randomBytes(32).toString('hex');
    const path = join(this.tempDir, `pack-${id}`);
    const key = await this.keys.next();
    const handle = await open(path, 'wx');
    await handle.write(key.header, 0, key.header.length, 0);
    this.pack = { id, path, handle, size: key.header.length, key };
    return this.pack;
  }

  private async seal(): Promise<void> {
    const pack = this.pack;
    if (!pack) return;
    this.pack = undefined;
    await pack.handle.close();
    this.uploader.submit(Layout.pack(pack.id), pack.path, pack.size, this.reserve);
  }

  /** Send the last, partly filled pack to the upload queue. */
  async flush(): Promise<void> {
    await this.queue;
    await this.seal();
  }
}
