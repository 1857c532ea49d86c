import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Unsealing } from '../crypto/envelope.js';
import type { Target } from '../targets/target.js';
import { Layout } from './layout.js';
import { getSealed } from './objects.js';
import type { ChunkRef } from './tree.js';
import { parseChunkLine } from './tree-reader.js';

/** A fresh name for the index object of one backup run. */
export function newIndexName(): string {
  return Layout.index(randomBytes(32).toString('hex'));
}

/** Every chunk the repository's index objects list, streamed object by object. */
export async function* readIndexObjects(target: Target, unsealing: Unsealing): AsyncGenerator<ChunkRef> {
  for await (const object of target.list(Layout.indexDir)) {
    const plain: Readable = await getSealed(target, object.name, unsealing);
    for await (const line of createInterface({ input: plain, crlfDelay: Infinity })) {
      if (line !== '') yield parseChunkLine(line, object.name);
    }
  }
}
