import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KbrackupError } from '../errors.js';

/** A manifest path is trusted only after this: relative, no `.`/`..` segments, no NUL. */
export function checkRelativePath(path: string, object: string): string[] {
  const parts = path.split('/');
  if (path === '' || path.startsWith('/') || path.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new KbrackupError(`${object} lists the unsafe path ${JSON.stringify(path)}; refusing to restore outside --target`);
  }
  return parts;
}

/** Folders already checked to be real folders inside the target; bounded so huge trees don't grow memory. */
const CACHE_LIMIT = 4096;

/**
 * Creates parent folders inside the restore target, checking each component is a real folder and not
 * a symlink — a manifest that restores `a -> /etc` and then `a/passwd` must not write to /etc.
 */
export class SafeDirs {
  private readonly checked = new Set<string>();

  constructor(private readonly root: string) {}

  /** Make sure the folder `parts` (relative to the root) exists as a real folder; returns its absolute path. */
  async ensure(parts: string[], create: boolean): Promise<string> {
    let current = this.root;
    for (const part of parts) {
      current = join(current, part);
      if (this.checked.has(current)) continue;
      const stat = await lstat(current).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (stat === undefined) {
        if (!create) return current;
        await mkdir(current).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EEXIST') throw err;
        });
        const again = await lstat(current);
        if (!again.isDirectory()) throw new KbrackupError(`${current} is not a folder; refusing to restore through it`);
      } else if (!stat.isDirectory()) {
        throw new KbrackupError(`${current} is ${stat.isSymbolicLink() ? 'a symlink' : 'not a folder'}; refusing to restore through it`);
      }
      if (this.checked.size >= CACHE_LIMIT) this.checked.clear();
      this.checked.add(current);
    }
    return current;
  }
}
