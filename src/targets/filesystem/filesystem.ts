import { createReadStream } from 'node:fs';
import { mkdir, open, opendir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, sep } from 'node:path';
import { Readable } from 'node:stream';
import { NotFoundError, TargetError, describeError } from '../../errors.js';
import { writeAll } from '../../util/write-all.js';
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

/** Move `from` to `to` with one rename; false when they are on different filesystems (or mounts). */
async function moveWithin(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EXDEV') return false;
    throw err;
  }
}

/**
 * Bytes of a copy written between two fdatasyncs. A pod's page cache counts against its memory limit,
 * and under cgroup v1 the kernel does not hold a writer back by its dirty pages (docs/ARCHITECTURE.md
 * "Memory does not grow with the data"): copying a 16 MiB pack at once left that much unreclaimable
 * at the end of a backup inside 64 MiB.
 */
const COPY_WINDOW = 2 * 1024 * 1024;
/** Bytes read and written at once by a copy: few async calls, little memory. */
const COPY_BUFFER = 512 * 1024;

/** Copy `from` into the new file `to`, flushing it to disk a window at a time. */
async function copyFlushed(from: string, to: string): Promise<void> {
  const input = await open(from, 'r');
  try {
    const output = await open(to, 'wx');
    try {
      const buf = Buffer.allocUnsafe(COPY_BUFFER);
      let flushed = 0;
      for (let pos = 0; ; ) {
        const { bytesRead } = await input.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        await writeAll(output, [buf.subarray(0, bytesRead)], pos);
        pos += bytesRead;
        if (pos - flushed >= COPY_WINDOW) {
          await output.datasync();
          flushed = pos;
        }
      }
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
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
    const temp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      await this.ensureDir(dir);
      if ('bytes' in source) await writeFile(temp, source.bytes);
      // A file the caller gives up is moved in where it lies on this filesystem, else copied; either
      // way it is made durable under the temp name, so the object's own name appears only complete.
      else if (!(source.consumable && (await moveWithin(source.file, temp)))) await copyFlushed(source.file, temp);
      await syncFile(temp);
      await rename(temp, final);
    } catch (err) {
      await rm(temp, { force: true }).catch(() => undefined);
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
    // Folders are walked one at a time: Node 20's recursive opendir returns only the first `bufferSize`
    // entries of each subfolder (a source with 300 snapshots listed 256 of them).
    const folders = [this.path(dir)];
    for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
      let handle;
      try {
        handle = await opendir(folder, { bufferSize: 256 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw this.fail(dir, err);
      }
      for await (const entry of handle) {
        const full = join(folder, entry.name);
        if (entry.isDirectory()) folders.push(full);
        if (!entry.isFile() || entry.name.startsWith(TEMP_PREFIX)) continue;
        const s = await stat(full).catch(() => undefined);
        if (s) yield { name: full.slice(this.root.length + 1).split(sep).join('/'), size: s.size, modified: s.mtimeMs };
      }
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
