/**
 * Finding the holes of sparse files (VM images, databases) so backup reads and stores only their data.
 * lseek moves the file offset: read such files by position (fs.readSync with a position), not in order.
 */
import { constants } from 'node:os';
import { native, requireNative, type Native } from './addon.js';
import { describeFd, SystemError } from './errors.js';

/** A byte range of a file that holds data. */
export interface Extent {
  offset: number;
  length: number;
}

const WHAT = 'SEEK_DATA / SEEK_HOLE is';
// What lseek answers where a file system or file kind (procfs, some FUSE) cannot say where data is.
const CANNOT_TELL = new Set(['EINVAL', 'ENOTSUP']);

/** Whether holes can be found in this build (the native addon loaded); without it a file is one extent. */
export function sparseSupported(): boolean {
  return native !== undefined;
}

/** Offset of the first data at or after `offset` (lseek SEEK_DATA), or -1 when only holes follow up to the end. */
export function seekData(fd: number, offset: number): number {
  const n = requireNative(WHAT);
  return seek(n, fd, offset, n.SEEK_DATA, 'SEEK_DATA');
}

/** Offset of the first hole at or after `offset` (lseek SEEK_HOLE; the end of the file counts as one), or -1 past the end. */
export function seekHole(fd: number, offset: number): number {
  const n = requireNative(WHAT);
  return seek(n, fd, offset, n.SEEK_HOLE, 'SEEK_HOLE');
}

function seek(n: Native, fd: number, offset: number, whence: number, whenceName: string): number {
  const at = n.lseek(fd, offset, whence);
  if (at >= 0) return at;
  if (at === -constants.errno.ENXIO) return -1;
  throw new SystemError(n, -at, 'lseek', describeFd(fd), `(${whenceName} from ${offset})`);
}

/**
 * The data extents of an open file of `size` bytes, in order, holes left out; one extent [0, size)
 * where holes cannot be found. Nothing past `size`, nor past the end of a file that shrank meanwhile.
 */
export function* dataExtents(fd: number, size: number): Generator<Extent, void, undefined> {
  if (size <= 0) return;
  const first = firstData(fd);
  if (first === undefined) {
    yield { offset: 0, length: size };
    return;
  }
  for (let data = first; data >= 0 && data < size; ) {
    const hole = seekHole(fd, data);
    if (hole < 0) return;
    const end = Math.min(hole, size);
    yield { offset: data, length: end - data };
    // Saves the SEEK_DATA that would only find the end: most files are one extent.
    if (end === size) return;
    data = seekData(fd, end);
  }
}

/** Where the first data is, or undefined where holes cannot be found (no addon, or a file system that cannot tell). */
function firstData(fd: number): number | undefined {
  if (!native) return undefined;
  try {
    return seekData(fd, 0);
  } catch (err) {
    if (err instanceof SystemError && CANNOT_TELL.has(err.code)) return undefined;
    throw err;
  }
}
