import { writevSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/** At most this many buffers go to one writev (Linux takes 1,024). */
const MAX_BUFFERS = 512;

/** The buffers left after `written` bytes of `rest` went out (a short write is continued where it stopped). */
function after(rest: Buffer[], written: number): Buffer[] {
  let n = written;
  while (rest.length > 0 && n >= rest[0]!.length) n -= rest.shift()!.length;
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

/** Write every buffer at `position`, with one writev where the OS takes it all (a short write is continued). */
export async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = buffers.filter((b) => b.length > 0);
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest.slice(0, MAX_BUFFERS), pos);
    pos += bytesWritten;
    rest = after(rest, bytesWritten);
  }
}

/** writeAll with blocking calls, on a descriptor; returns where the bytes end. */
export function writeAllSync(fd: number, buffers: Buffer[], position: number): number {
  let pos = position;
  let rest = buffers.filter((b) => b.length > 0);
  while (rest.length > 0) {
    const written = writevSync(fd, rest.slice(0, MAX_BUFFERS), pos);
    pos += written;
    rest = after(rest, written);
  }
  return pos;
}
