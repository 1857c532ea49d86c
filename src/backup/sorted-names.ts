import { opendir } from 'node:fs/promises';
import { withPathAsync } from '../platform/index.js';
import { fromBytes, type ByteString } from '../repo/tree/names.js';
import { sortStrings } from '../util/external-sort.js';

/**
 * The names in a folder, sorted as bytes. A folder of a million entries would need ~100 MB to sort in
 * memory, so a big one is sorted on disk in `tempDir`. Throws what opendir throws; `dir` may be of any length.
 */
export async function* sortedNames(dir: Buffer, tempDir: string): AsyncGenerator<ByteString> {
  // Names as bytes: Linux names need not be UTF-8 (the typings only know text encodings).
  const handle = await withPathAsync(dir, (p) => opendir(p, { encoding: 'buffer' as BufferEncoding, bufferSize: 256 }));
  async function* names(): AsyncGenerator<ByteString> {
    for await (const entry of handle) yield fromBytes(entry.name as unknown as Buffer);
  }
  yield* sortStrings(names(), tempDir);
}
