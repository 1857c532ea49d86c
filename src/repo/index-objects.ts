import { randomBytes } from 'node:crypto';
import type { Unsealing } from '../crypto/envelope.js';
import type { Target } from '../targets/target.js';
import { decodeIndexEntries, type IndexEntry } from './index/records.js';
import { Layout } from './layout.js';
import { getSealed } from './objects.js';

/** A fresh name for an index object. */
export function newIndexName(): string {
  return Layout.index(randomBytes(32).toString('hex'));
}

/** Every entry of the repository's index objects, streamed object by object. */
export async function* readIndexObjects(target: Target, unsealing: Unsealing): AsyncGenerator<IndexEntry> {
  for await (const object of target.list(Layout.indexDir)) {
    yield* decodeIndexEntries(await getSealed(target, object.name, unsealing), object.name);
  }
}
