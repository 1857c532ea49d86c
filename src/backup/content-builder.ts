import type { RepoSecrets } from '../crypto/kdf.js';
import { MAX_INLINE_PARTS, type Content, type ContentPart } from '../repo/tree/entry.js';
import { ListWriter, type FinishedTree } from '../repo/tree/tree-writer.js';

/**
 * A file's content parts as they are stored, in order. Up to MAX_INLINE_PARTS stay in memory and go
 * inline into the file's entry; a longer list (a 1 TiB file has a million chunks) streams into a list
 * object of its own, so memory stays flat. Adjacent holes are merged.
 */
export class ContentBuilder {
  private parts: ContentPart[] = [];
  private list: ListWriter | undefined;
  private last: ContentPart | undefined;

  constructor(
    private readonly secrets: RepoSecrets,
    private readonly tempDir: string,
  ) {}

  /** Append a data part. */
  async data(id: Buffer, length: number): Promise<void> {
    await this.push({ id: id.toString('hex'), length });
  }

  /** Append a hole of `length` zero bytes. */
  async hole(length: number): Promise<void> {
    if (length === 0) return;
    if (this.last && 'hole' in this.last) {
      this.last.hole += length;
      return;
    }
    await this.push({ hole: length });
  }

  private async push(part: ContentPart): Promise<void> {
    // The last part is held back so a following hole can still grow it.
    if (this.last) await this.emit(this.last);
    this.last = part;
  }

  private async emit(part: ContentPart): Promise<void> {
    if (this.list) return this.list.add(part);
    this.parts.push(part);
    if (this.parts.length > MAX_INLINE_PARTS) {
      this.list = new ListWriter(this.secrets, this.tempDir);
      for (const p of this.parts) await this.list.add(p);
      this.parts = [];
    }
  }

  /** The content for the file's entry, and the list object to store when the list is long. */
  async finish(): Promise<{ content: Content; list?: FinishedTree }> {
    if (this.last) await this.emit(this.last);
    this.last = undefined;
    if (!this.list) return { content: { parts: this.parts } };
    const list = await this.list.finish();
    return { content: { list: list.id, count: this.list.count }, list };
  }

  /** Drop a spilled list (on error). */
  async abort(): Promise<void> {
    await this.list?.abort();
  }
}
