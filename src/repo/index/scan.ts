import { ID_SIZE, RECORD_SIZE, decodeLocation, type BlobLocation } from './records.js';

/**
 * The locations of a few blobs, found by one pass over the index's records without building the
 * sorted index (disk-index.ts): what restoring one file from a repository of a million blobs needs,
 * where sorting every record costs seconds. Ids not found are absent from the result; where an id is
 * in several index objects, the first record wins.
 */
export async function scanRecords(batches: AsyncIterable<Buffer>, ids: Iterable<Buffer>): Promise<Map<string, BlobLocation>> {
  const wanted = new Set<string>();
  // Most records differ from every wanted id in their first four bytes: checked as a number first.
  const prefixes = new Set<number>();
  for (const id of ids) {
    wanted.add(id.toString('hex'));
    prefixes.add(id.readUInt32BE(0));
  }
  const found = new Map<string, BlobLocation>();
  for await (const batch of batches) {
    for (let at = 0; at + RECORD_SIZE <= batch.length && found.size < wanted.size; at += RECORD_SIZE) {
      if (!prefixes.has(batch.readUInt32BE(at))) continue;
      const hex = batch.toString('hex', at, at + ID_SIZE);
      if (wanted.has(hex) && !found.has(hex)) found.set(hex, decodeLocation(batch, at, 'index'));
    }
    if (found.size === wanted.size) break;
  }
  return found;
}
