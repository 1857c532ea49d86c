import { createHmac, randomBytes, type Hmac } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createDeflate, type Deflate } from 'node:zlib';
import type { RepoSecrets } from '../../crypto/kdf.js';
import { Layout } from '../layout.js';
import { META_LEVEL, encodeMeta, encryptCompressedMeta } from '../meta-codec.js';
import { encodeEntry, encodePart, type ContentPart, type TreeEntry } from './entry.js';

/** A finished tree or list object, ready to store under `name`: its bytes, or a temp file for big ones. */
export interface FinishedTree {
  id: string;
  name: string;
  source: { bytes: Buffer } | { file: string; size: number };
}

/** Plaintext kept in memory before a tree streams to a temp file instead. */
const SPILL_AT = 512 * 1024;

/**
 * Writes one tree object (a folder's entries, or a long content list): JSON lines, named by their keyed
 * hash (HMAC-SHA256 under the tree-id key), so an unchanged folder gives the same object and costs
 * nothing. Small objects stay in memory; big ones (a folder of a million entries) are compressed to a
 * temp file as they come and encrypted once the name is known, so memory stays flat.
 */
class ObjectWriter {
  private readonly hmac: Hmac;
  private lines: string[] = [];
  private pending = 0;
  private spill: { path: string; deflate: Deflate; out: WriteStream; done: Promise<void> } | undefined;

  constructor(
    private readonly secrets: RepoSecrets,
    private readonly tempDir: string,
  ) {
    this.hmac = createHmac('sha256', secrets.treeIdKey);
  }

  /** Append one line (without its newline). */
  async line(text: string): Promise<void> {
    const line = `${text}\n`;
    this.hmac.update(line);
    this.lines.push(line);
    this.pending += line.length;
    if (this.pending >= SPILL_AT) await this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.spill) {
      const path = join(this.tempDir, `tree-${randomBytes(8).toString('hex')}.z`);
      const deflate = createDeflate({ level: META_LEVEL });
      const out = createWriteStream(path, { flags: 'wx' });
      this.spill = { path, deflate, out, done: pipeline(deflate, out) };
      this.spill.done.catch(() => undefined);
    }
    const text = this.lines.join('');
    this.lines = [];
    this.pending = 0;
    if (!this.spill.deflate.write(text)) await once(this.spill.deflate, 'drain');
  }

  /** The object's id and bytes (or file). */
  async finish(): Promise<FinishedTree> {
    const id = this.hmac.digest('hex');
    const name = Layout.tree(id);
    if (!this.spill) return { id, name, source: { bytes: encodeMeta(this.secrets, name, Buffer.from(this.lines.join(''))) } };
    await this.flush();
    const { path, deflate, done } = this.spill;
    deflate.end();
    await done;
    const file = `${path.slice(0, -2)}.obj`;
    const out = createWriteStream(file, { flags: 'wx' });
    try {
      await pipeline(encryptCompressedMeta(this.secrets, name, createReadStream(path)), out);
    } finally {
      await rm(path, { force: true });
    }
    return { id, name, source: { file, size: out.bytesWritten } };
  }

  /** Drop what was written (on error or cancel). */
  async abort(): Promise<void> {
    if (!this.spill) return;
    this.spill.deflate.destroy();
    await this.spill.done.catch(() => undefined);
    await rm(this.spill.path, { force: true });
  }
}

/** Writes one folder's tree object; entries must come in name (byte) order. */
export class TreeWriter {
  private readonly object: ObjectWriter;
  private last: string | undefined;
  count = 0;

  constructor(secrets: RepoSecrets, tempDir: string) {
    this.object = new ObjectWriter(secrets, tempDir);
  }

  /** Append an entry. */
  add(entry: TreeEntry): Promise<void> {
    if (this.last !== undefined && entry.name <= this.last) throw new Error(`tree entries out of order: ${JSON.stringify(entry.name)} after ${JSON.stringify(this.last)}`);
    this.last = entry.name;
    this.count++;
    return this.object.line(encodeEntry(entry));
  }

  finish(): Promise<FinishedTree> {
    return this.object.finish();
  }

  abort(): Promise<void> {
    return this.object.abort();
  }
}

/** Writes a long content list (a file with more parts than fit inline) as an object of its own. */
export class ListWriter {
  private readonly object: ObjectWriter;
  count = 0;

  constructor(secrets: RepoSecrets, tempDir: string) {
    this.object = new ObjectWriter(secrets, tempDir);
  }

  add(part: ContentPart): Promise<void> {
    this.count++;
    return this.object.line(encodePart(part));
  }

  finish(): Promise<FinishedTree> {
    return this.object.finish();
  }

  abort(): Promise<void> {
    return this.object.abort();
  }
}
