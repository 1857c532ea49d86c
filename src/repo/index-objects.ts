import { randomBytes } from 'node:crypto';
import type { Unsealing } from '../crypto/envelope.js';
import type { Target } from '../targets/target.js';
import { decodeIndexRecords } from './index/records.js';
import { Layout } from './layout.js';
import { getSealed } from './objects.js';

/** A fresh name for an index object. */
export function newIndexName(): string {
  return Layout.index(randomBytes(32).toString('hex'));
}

/** The raw records of every index object of the repository, streamed object by object. */
export async function* readIndexObjects(target: Target, unsealing: Unsealing): AsyncGenerator<Buffer> {
  for await (const object of target.list(Layout.indexDir)) {
    yield* decodeIndexRecords(await getSealed(target, object.name, unsealing), object.name);
  }
}
