/**
 * Paths of PATH_MAX (4096) bytes or more, which Linux refuses in a single call (ENAMETOOLONG) although
 * folders may nest deeper. Node has no openat(), so a long path is cut at folders on the way: each is
 * opened (O_PATH: it needs only search permission) and the rest is reached through /proc/self/fd/N.
 *
 *   withPath(bytes, (p) => lstatSync(p));            // any path, short ones at no cost
 *   await withPathAsync(bytes, (p) => open(p, 'r')); // the folders stay open until the call settles
 */
import { closeSync, constants, openSync } from 'node:fs';

/** Paths shorter than this are used as they are; one hop's worth of path stays below PATH_MAX. */
const LIMIT = 4000;
/** open(2)'s O_PATH (the same on x86-64 and arm64); Node's constants do not export it. */
const O_PATH = 0o10000000;
const SLASH = 0x2f;

/** Opens the folders a long path is cut at; returns the path through the last one and the descriptors to close. */
function hop(path: Buffer): { path: Buffer; fds: number[] } {
  const fds: number[] = [];
  let rest = path;
  try {
    while (rest.length >= LIMIT) {
      // The longest run of whole names that fits, leaving at least the last name for the call itself.
      const cut = rest.lastIndexOf(SLASH, LIMIT - 1);
      if (cut <= 0) break;
      const fd = openSync(rest.subarray(0, cut), O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      fds.push(fd);
      rest = Buffer.concat([Buffer.from(`/proc/self/fd/${fd}`), rest.subarray(cut)]);
    }
    return { path: rest, fds };
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    throw err;
  }
}

/** Runs a synchronous file system call on `path`, however long it is. */
export function withPath<T>(path: Buffer, use: (path: Buffer) => T): T {
  if (path.length < LIMIT) return use(path);
  const reached = hop(path);
  try {
    return use(reached.path);
  } finally {
    for (const fd of reached.fds) closeSync(fd);
  }
}

/** Runs an asynchronous file system call on `path`, however long it is; the folders on the way stay open until it settles. */
export async function withPathAsync<T>(path: Buffer, use: (path: Buffer) => Promise<T>): Promise<T> {
  if (path.length < LIMIT) return use(path);
  const reached = hop(path);
  try {
    return await use(reached.path);
  } finally {
    for (const fd of reached.fds) closeSync(fd);
  }
}
