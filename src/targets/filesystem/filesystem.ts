import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, opendir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { NotFoundError, TargetError, describeError } from '../../errors.js';
import type { ByteRange, ObjectInfo, PutSource, Target } from '../target.js';

/** Objects in flight carry this prefix so listings and readers never see half-written files. */
const TEMP_PREFIX = '.tmp-';

/** fsync before rename: after a crash an object is either absent or complete, never empty. */
async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Make `from` durable and rename it to `to`; false when they are on different filesystems. */
async function syncAndMove(from: string, to: string): Promise<boolean> {
  await syncFile(from);
  try {
    await rename(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EXDEV') return false;
    throw err;
  }
}

/** A repository in a local folder (also NFS or a mounted PVC). */
export class FilesystemTarget implements Target {
  readonly description: string;
  private readonly folders = new Set<string>();

  constructor(private readonly root: string) {
    this.description = `file://${root}`;
  }

  private path(name: string): string {
    return join(this.root, ...name.split('/'));
  }

  private fail(name: string | undefined, err: unknown): TargetError {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && name !== undefined) return new NotFoundError(this.description, name, { cause: err });
    const transient = code === 'EAGAIN' || code === 'EBUSY' || code === 'EINTR' || code === 'ESTALE';
    return new TargetError(this.description, name, describeError(err), { transient, cause: err });
  }

  async prepare(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
    } catch (err) {
      throw this.fail(undefined, err);
    }
  }

  async put(name: string, source: PutSource): Promise<void> {
    try {
      await this.store(name, source);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw this.fail(name, err);
      if ('file' in source && !(await stat(source.file).then(() => true, () => false))) {
        throw new TargetError(this.description, name, `the file to store, ${source.file}, is gone`, { cause: err });
      }
      // The folder cache said the fan-out folder exists, but someone removed it: make it again, once.
      this.folders.delete(dirname(this.path(name)));
      try {
        await this.store(name, source);
      } catch (again) {
        // A put has no object to miss: a missing path here is a folder, not "no such object".
        throw new TargetError(this.description, name, describeError(again), { cause: again });
      }
    }
  }

  private async store(name: string, source: PutSource): Promise<void> {
    const final = this.path(name);
    const dir = dirname(final);
    let temp: string | undefined;
    try {
      await this.ensureDir(dir);
      // A file the caller gives up is made durable where it lies and moved in with a single rename.
      if ('file' in source && source.consumable && (await syncAndMove(source.file, final))) return;
      temp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
      if ('file' in source) await copyFile(source.file, temp);
      else await writeFile(temp, source.bytes);
      await syncFile(temp);
      await rename(temp, final);
    } catch (err) {
      if (temp !== undefined) await rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** mkdir -p once per folder: a backup puts thousands of objects into a few hundred fan-out folders. */
  private async ensureDir(dir: string): Promise<void> {
    if (this.folders.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.folders.add(dir);
  }

  async get(name: string, range?: ByteRange): Promise<Readable> {
    const path = this.path(name);
    // Open first so a missing object rejects here rather than as a stream error later.
    const handle = await open(path, 'r').catch((err: unknown) => {
      throw this.fail(name, err);
    });
    if (range && range.length === 0) {
      await handle.close();
      return Readable.from([]);
    }
    return createReadStream('', {
      fd: handle,
      start: range?.offset,
      end: range ? range.offset + range.length - 1 : undefined,
      // A chunk (~1 MiB) in four reads rather than sixteen: each read is an async call with a cost of its own.
      highWaterMark: range && range.length >= 256 * 1024 ? 256 * 1024 : 64 * 1024,
    });
  }

  async head(name: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(name));
      return s.isFile() ? { name, size: s.size, modified: s.mtimeMs } : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.fail(name, err);
    }
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const base = this.path(dir);
    let handle;
    try {
      handle = await opendir(base, { recursive: true, bufferSize: 256 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.fail(dir, err);
    }
    for await (const entry of handle) {
      if (!entry.isFile() || entry.name.startsWith(TEMP_PREFIX)) continue;
      // Node 20 exposes the directory as `path`, newer releases as `parentPath`.
      const parent = (entry as unknown as { parentPath?: string }).parentPath ?? (entry as unknown as { path: string }).path;
      const full = join(parent, entry.name);
      const rel = full.slice(this.root.length + 1).split(sep).join('/');
      const s = await stat(full).catch(() => undefined);
      if (s) yield { name: rel, size: s.size, modified: s.mtimeMs };
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await rm(this.path(name), { force: true });
    } catch (err) {
      throw this.fail(name, err);
    }
  }

  async close(): Promise<void> {}
}
