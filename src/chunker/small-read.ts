import { createHash, createHmac, type KeyObject } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { fstatFd, readAllXattrs, withPath } from '../platform/index.js';
import { asBuffer } from '../util/bytes.js';

/** A small file to read: its path (bytes), and what the walk's lstat said, to tell a change. */
export interface SmallFile {
  path: Uint8Array;
  size: number;
  /** Nanoseconds, as decimal strings. */
  mtime: string;
  ctime: string;
}

/** A small file read whole: its bytes (a view into the batch's buffer), hashes and attributes. */
export type SmallRead =
  | { offset: number; length: number; sha256: string; id: Uint8Array; changed: boolean; xattrs?: [Uint8Array, Uint8Array][] }
  | { grew: true }
  | { error: { message: string; code?: string } };

/**
 * Read a batch of small files whole with synchronous calls, on the chunk thread (or inline on the main
 * thread under a small memory limit): open, read one byte more than expected (to tell a file that
 * grew), fstat (to tell one that changed), its extended attributes, close; then its SHA-256 and its
 * keyed id. All bytes land in one buffer, so a batch crosses threads as one transfer.
 */
export function readSmallFiles(files: SmallFile[], idKey: KeyObject): { buffer: ArrayBuffer; reads: SmallRead[] } {
  const total = files.reduce((n, f) => n + f.size + 1, 0);
  const buffer = new ArrayBuffer(total);
  const bytes = Buffer.from(buffer);
  const reads: SmallRead[] = [];
  let at = 0;
  for (const f of files) {
    const start = at;
    at += f.size + 1;
    let fd: number | undefined;
    try {
      // withPath: a path longer than PATH_MAX is opened through its folders (platform/long-path.ts).
      fd = withPath(asBuffer(f.path), (p) => openSync(p, 'r'));
      let got = 0;
      for (;;) {
        const n = readSync(fd, bytes, start + got, f.size + 1 - got, got);
        if (n === 0) break;
        got += n;
        if (got === f.size + 1) break;
      }
      if (got > f.size) {
        reads.push({ grew: true });
        continue;
      }
      const after = fstatFd(fd);
      const changed = got !== f.size || after.size !== f.size || after.mtime !== f.mtime || after.ctime !== f.ctime;
      const data = bytes.subarray(start, start + got);
      const xattrs = readAllXattrs(fd);
      reads.push({
        offset: start,
        length: got,
        sha256: createHash('sha256').update(data).digest('hex'),
        id: createHmac('sha256', idKey).update(data).digest(),
        changed,
        ...(xattrs ? { xattrs } : {}),
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      reads.push({ error: { message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) } });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  return { buffer, reads };
}
