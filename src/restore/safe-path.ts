import { lstatSync, mkdirSync } from 'node:fs';
import { KbrackupError } from '../errors.js';
import { withPath } from '../platform/index.js';
import { childPath, displayName, toBytes, type ByteString } from '../repo/tree/names.js';

/** Folders already checked to be real folders inside the destination; bounded so huge trees don't grow memory. */
const CACHE_LIMIT = 4096;

/**
 * Creates folders inside the restore destination, checking each component is a real folder and not
 * a symlink: a snapshot that restores `a -> /etc` and then `a/passwd` must not write to /etc. Names
 * come from tree entries, which refuse `/`, `.`, `..` and NUL (repo/tree/entry.ts), so a path built
 * here never leaves the destination.
 */
export class SafeDirs {
  private readonly checked = new Set<ByteString>();
  /** Folders this run created (bounded like `checked`; a forgotten one is only looked at again). */
  private readonly made = new Set<ByteString>();

  constructor(private readonly root: ByteString) {}

  /** Make sure the folder `path` (relative, "" = the destination) exists as a real folder; returns its absolute path. */
  ensure(path: ByteString, create: boolean): ByteString {
    let current = this.root;
    if (path === '') return current;
    const parts = path.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..' || p.includes('\0'))) {
      throw new KbrackupError(`refusing the unsafe path ${JSON.stringify(displayName(path))}: it would leave the restore destination`);
    }
    if (!create) return childPath(this.root, path);
    for (const part of parts) {
      current = childPath(current, part);
      if (this.checked.has(current)) continue;
      let stat;
      try {
        stat = withPath(toBytes(current), (p) => lstatSync(p));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (stat === undefined) {
        try {
          withPath(toBytes(current), (p) => mkdirSync(p, 0o700));
          if (this.made.size >= CACHE_LIMIT) this.made.clear();
          this.made.add(current);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        if (!withPath(toBytes(current), (p) => lstatSync(p)).isDirectory()) throw new KbrackupError(`${displayName(current)} is not a folder; refusing to restore through it`);
      } else if (!stat.isDirectory()) {
        throw new KbrackupError(`${displayName(current)} is ${stat.isSymbolicLink() ? 'a symlink' : 'not a folder'}; refusing to restore through it`);
      }
      if (this.checked.size >= CACHE_LIMIT) this.checked.clear();
      this.checked.add(current);
    }
    return current;
  }

  /** Whether this run created the folder `absolute` (as `ensure` returned it), so it held nothing before. */
  madeHere(absolute: ByteString): boolean {
    return this.made.has(absolute);
  }
}
