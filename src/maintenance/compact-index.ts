import { encodeBlobListEnd, encodeBundle, encodeObjectHead, encodeSectionHead } from '../repo/index/blob-list.js';
import type { Repository } from '../repo/repository.js';
import { bundlesOf, consecutiveObjects, type ObjectGroup } from './inventory.js';
import { Loc, parseObjectKey } from './locations.js';
import { Cursor } from './record-stream.js';

/** One object's blob-list entry (index/blob-list.ts) from its records, and how many blobs it lists. */
function encodeGroup(g: Pick<ObjectGroup, 'key' | 'records'>): { bytes: Buffer; blobs: number } {
  const { kind, objectId } = parseObjectKey(g.key);
  const sections: { keyOffset: number; parts: Buffer[] }[] = [];
  let blobs = 0;
  for (const b of bundlesOf({ key: g.key, listing: undefined, records: g.records })) {
    let section = sections.at(-1);
    if (section?.keyOffset !== b.keyOffset) sections.push((section = { keyOffset: b.keyOffset, parts: [] }));
    const list: { id: Buffer; offset: number; length: number }[] = [];
    let last = '';
    for (const r of g.records.range(b.first, b.end)) {
      // A copy listed by two old index objects is listed once.
      const where = r.slice(39, 75);
      if (where === last) continue;
      last = where;
      list.push({ id: Buffer.from(Loc.id(r), 'latin1'), offset: Loc.blobOffset(r), length: Loc.rawLength(r) });
    }
    section.parts.push(encodeBundle({ offset: b.offset, length: b.length, blobs: list }));
    blobs += list.length;
  }
  const parts = [encodeObjectHead(kind, objectId, sections.length)];
  for (const s of sections) parts.push(encodeSectionHead(s.keyOffset, s.parts.length), ...s.parts);
  return { bytes: Buffer.concat(parts), blobs };
}

/**
 * Store by-object records (each object's records together, in bundle order) as new index objects of
 * about `perObject` entries each, split only between objects; returns their names. Each is complete
 * before the next starts, so a stop leaves whole index objects beside the old ones, never a torn one.
 */
export async function writeCompactIndex(repo: Repository, records: AsyncIterable<string>, tempDir: string, perObject: number): Promise<string[]> {
  const groups = new Cursor(consecutiveObjects(records));
  const names: string[] = [];
  try {
    while ((await groups.peek()) !== undefined) {
      const part = async function* () {
        let count = 0;
        while (count < perObject) {
          const g = await groups.next();
          if (!g) break;
          const { bytes, blobs } = encodeGroup(g);
          count += blobs;
          yield bytes;
        }
        yield encodeBlobListEnd(count);
      };
      names.push(await repo.writeIndex(part(), tempDir));
    }
  } finally {
    await groups.close();
  }
  return names;
}
