import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { isCodec } from '../compress/codec.js';
import { IntegrityError } from '../errors.js';
import type { ChunkLine, ChunkRef, TreeEntry } from './tree.js';

/** One line of a tree: an entry, or a chunk of the last file entry. */
export type TreeLine = { kind: 'entry'; entry: TreeEntry } | { kind: 'chunk'; ref: ChunkRef; line: string };

/** Parse a chunk line (also the format of index objects). */
export function parseChunkLine(line: string, object: string): ChunkRef {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new IntegrityError(object, 'holds a line that is not JSON');
  }
  const a = value as ChunkLine;
  if (!Array.isArray(a) || a.length !== 6 || typeof a[0] !== 'string' || typeof a[1] !== 'string' || !isCodec(String(a[5]))) {
    throw new IntegrityError(object, 'holds a malformed chunk line');
  }
  return { id: a[0], object: a[1], offset: a[2], length: a[3], rawLength: a[4], codec: a[5] };
}

/** Stream the lines of a decrypted tree, checking each file has the chunk lines it announces. */
export async function* readTree(plain: Readable, object: string): AsyncGenerator<TreeLine> {
  let expected = 0;
  for await (const line of createInterface({ input: plain, crlfDelay: Infinity })) {
    if (line === '') continue;
    if (line.startsWith('[')) {
      if (expected === 0) throw new IntegrityError(object, 'has a chunk line outside a file');
      expected--;
      yield { kind: 'chunk', ref: parseChunkLine(line, object), line };
      continue;
    }
    if (expected !== 0) throw new IntegrityError(object, 'has a file with missing chunk lines');
    let entry: TreeEntry;
    try {
      entry = JSON.parse(line) as TreeEntry;
    } catch {
      throw new IntegrityError(object, 'holds a line that is not JSON');
    }
    if (typeof entry.path !== 'string' || !['dir', 'file', 'symlink'].includes(entry.type)) throw new IntegrityError(object, 'holds a malformed entry');
    if (entry.type === 'file') expected = entry.chunks;
    yield { kind: 'entry', entry };
  }
  if (expected !== 0) throw new IntegrityError(object, 'is truncated: a file lacks chunk lines');
}
