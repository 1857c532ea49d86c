import { createReadStream } from 'node:fs';
import { appendFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskIndex } from '../repo/index/disk-index.js';
import { encodeBlobListEnd } from '../repo/index/blob-list.js';
import type { IndexEntry } from '../repo/index/records.js';
import type { Repository } from '../repo/repository.js';

/**
 * Which blobs exist: the repository's (an on-disk index built on first use, so an unchanged run never
 * downloads it), the ones this run stored, and the ones being stored right now. What this run stores
 * is written, object by object, to a temp file that becomes the run's index object at the end.
 */
export class RunIndex {
  /** Ids being stored (in an open bundle or a chunk in flight): bounded by what is in flight. */
  private readonly pending = new Set<string>();
  private readonly path: string;
  private blobs = 0;

  constructor(
    private readonly known: () => Promise<DiskIndex>,
    tempDir: string,
  ) {
    this.path = join(tempDir, 'run-index');
  }

  /** Whether the blob `id` is stored already, or being stored by this run. */
  async has(id: Buffer): Promise<boolean> {
    if (this.pending.has(id.toString('hex'))) return true;
    return (await this.known()).has(id);
  }

  /** Mark `id` as being stored; false when someone in this run is storing it already. */
  claim(id: Buffer): boolean {
    const hex = id.toString('hex');
    if (this.pending.has(hex)) return false;
    this.pending.add(hex);
    return true;
  }

  /** Give up a claim (the chunk was abandoned). */
  unclaim(id: Buffer): void {
    this.pending.delete(id.toString('hex'));
  }

  /** Blobs now sit in a written bundle: they become known where they are. */
  async located(entries: IndexEntry[]): Promise<void> {
    const index = await this.known();
    for (const { id, loc } of entries) {
      await index.add(id, loc);
      this.pending.delete(id.toString('hex'));
    }
    this.blobs += entries.length;
  }

  /** An object is complete and queued for upload: its blob-list entry goes into the run's index object. */
  async recordObject(entry: Buffer): Promise<void> {
    await appendFile(this.path, entry);
  }

  /** Number of blobs this run stored. */
  get count(): number {
    return this.blobs;
  }

  /** Store the run's index object (after every object it lists is stored); nothing when nothing was added. */
  async write(repo: Repository, tempDir: string): Promise<void> {
    if (this.blobs === 0) return;
    const path = this.path;
    const end = encodeBlobListEnd(this.blobs);
    await repo.writeIndex(
      (async function* () {
        yield* createReadStream(path, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>;
        yield end;
      })(),
      tempDir,
    );
    await rm(path, { force: true });
  }
}
