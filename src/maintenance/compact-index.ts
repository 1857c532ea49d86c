import { encodeBlobList } from '../repo/index/blob-list.js';
import type { Repository } from '../repo/repository.js';
import { Loc } from './locations.js';
import { Cursor } from './record-stream.js';

/**
 * Store by-object records (each object's records together) as new index objects of about `perObject`
 * entries each, split only between objects; returns their names. Each is complete before the next
 * starts, so a stop leaves whole index objects beside the old ones, never a torn one.
 */
export async function writeCompactIndex(repo: Repository, records: AsyncIterable<string>, tempDir: string, perObject: number): Promise<string[]> {
  const cursor = new Cursor(records[Symbol.asyncIterator]());
  const names: string[] = [];
  try {
    while ((await cursor.peek()) !== undefined) {
      const part = async function* () {
        let n = 0;
        let key = '';
        for (let r = await cursor.peek(); r !== undefined; r = await cursor.peek()) {
          const k = Loc.objectKey(r);
          if (n >= perObject && k !== key) return;
          key = k;
          n++;
          yield Loc.entry((await cursor.next())!);
        }
      };
      names.push(await repo.writeIndex(encodeBlobList(part()), tempDir));
    }
  } finally {
    await cursor.close();
  }
  return names;
}
