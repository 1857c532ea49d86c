import type { FileHandle } from 'node:fs/promises';

/** Write every buffer at `position`, with one writev where the OS takes it all (a short write is continued). */
export async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pos = position;
  let rest = buffers.filter((b) => b.length > 0);
  while (rest.length > 0) {
    let { bytesWritten } = await handle.writev(rest.slice(0, 512), pos);
    pos += bytesWritten;
    while (rest.length > 0 && bytesWritten >= rest[0]!.length) bytesWritten -= rest.shift()!.length;
    if (bytesWritten > 0) rest[0] = rest[0]!.subarray(bytesWritten);
  }
}
