import { join } from 'node:path';
import { IntegrityError, NotFoundError } from '../errors.js';
import { FOOTER_LENGTH } from '../repo/content-codec.js';
import { Layout, idOfName } from '../repo/layout.js';
import type { ObjectInfo, Repository } from '../repo/repository.js';
import { CHOSEN, LISTING_WIDTH, LOCATION_WIDTH, Loc, USED, blobOf, isAbsent, fromIndexRecords, listingInfo, listingRecord, toByBlob, toByObject } from './locations.js';
import { Cursor, RecordList, readRecords, sortRecords, writeRecords } from './record-stream.js';

/**
 * What the repository holds, as sorted streams (docs/maintenance.md "How prune works"): the listing of
 * content objects, the index entries by object and by blob, and which copy of each blob is kept. It
 * reads listings and index objects only, never trees; `used.ts` says which ids the snapshots need.
 */

/** A sorted listing file of content (or tree) objects, and what it holds. */
export interface Listing {
  path: string;
  objects: number;
  bytes: number;
  /** Objects whose storage gave no time: treated as young, so never deleted. */
  undated: number;
}

/** Most index entries one content object may have: a pack holds at most 65,536 blobs. */
const MAX_OBJECT_RECORDS = 65_536 * 2;

/** List the objects under `dirs` into a sorted listing file. */
async function listInto(repo: Repository, dirs: readonly (readonly [string, 'chunk' | 'pack' | 'tree'])[], path: string, tempDir: string): Promise<Listing> {
  const listing: Listing = { path, objects: 0, bytes: 0, undated: 0 };
  async function* records(): AsyncGenerator<string> {
    for (const [dir, kind] of dirs) {
      for await (const o of repo.list(dir)) {
        const id = idOfName(dir, o.name);
        if (!id) continue;
        listing.objects++;
        listing.bytes += o.size;
        if (o.modified === undefined) listing.undated++;
        yield listingRecord(kind, id, o.size, o.modified);
      }
    }
  }
  await writeRecords(path, LISTING_WIDTH, sortRecords(records(), tempDir, LISTING_WIDTH));
  return listing;
}

/** Every content object (chunks/, packs/) with its size and time, sorted by kind and id. */
export function listContent(repo: Repository, dir: string): Promise<Listing> {
  return listInto(
    repo,
    [
      [Layout.chunksDir, 'chunk'],
      [Layout.packsDir, 'pack'],
    ],
    join(dir, 'content-listing'),
    dir,
  );
}

/** Every tree and content-list object (trees/), sorted by id. */
export function listTrees(repo: Repository, dir: string): Promise<Listing> {
  return listInto(repo, [[Layout.treesDir, 'tree']], join(dir, 'tree-listing'), dir);
}

/** The index objects, newest first: an entry's rank is its index object's place here. */
export async function rankedIndexObjects(repo: Repository): Promise<ObjectInfo[]> {
  const objects = await repo.indexObjects();
  return objects.sort((a, b) => (b.modified ?? 0) - (a.modified ?? 0) || a.name.localeCompare(b.name));
}

/**
 * Every entry of every index object, as by-object records (unsorted). An index object that cannot be
 * read is reported and skipped (what it listed then counts as not indexed); one removed meanwhile is
 * skipped silently.
 */
export async function* indexEntries(repo: Repository, ranked: readonly ObjectInfo[], problem: (object: string, err: unknown) => void): AsyncGenerator<string> {
  for (const [rank, o] of ranked.entries()) {
    try {
      for await (const batch of repo.indexRecords(o.name)) yield* fromIndexRecords(batch, rank, o.name);
    } catch (err) {
      if (err instanceof NotFoundError) continue;
      if (!(err instanceof IntegrityError)) throw err;
      problem(o.name, err);
    }
  }
}

/** One content object: its listing (undefined when it does not exist) and its index records in bundle order. */
export interface ObjectGroup {
  key: string;
  listing: { size: number; modified: number } | undefined;
  records: RecordList;
}

/** By-object records gathered per object: each run of records with the same object key is one group. */
export async function* consecutiveObjects(records: AsyncIterable<string>): AsyncGenerator<{ key: string; records: RecordList }> {
  let group: { key: string; records: RecordList } | undefined;
  for await (const r of records) {
    if (group && !r.startsWith(group.key)) {
      yield group;
      group = undefined;
    }
    group ??= { key: r.slice(0, 33), records: new RecordList(LOCATION_WIDTH) };
    group.records.push(r);
    if (group.records.length > MAX_OBJECT_RECORDS) throw new IntegrityError('index', `lists more than ${MAX_OBJECT_RECORDS} blobs of one content object; damaged`);
  }
  if (group) yield group;
}

/**
 * Merge by-object records (sorted) with a listing file: one group per object that is listed, indexed,
 * or both, in key order.
 */
export async function* groupByObject(sorted: AsyncIterable<string>, listingPath: string): AsyncGenerator<ObjectGroup> {
  const groups = new Cursor(consecutiveObjects(sorted));
  const listed = new Cursor(readRecords(listingPath, LISTING_WIDTH));
  try {
    for (;;) {
      const g = await groups.peek();
      const l = await listed.peek();
      if (g === undefined && l === undefined) return;
      const lk = l?.slice(0, 33);
      const key = g === undefined ? lk! : lk === undefined || g.key < lk ? g.key : lk;
      const listing = lk === key ? listingInfo((await listed.next())!) : undefined;
      const records = g?.key === key ? (await groups.next())!.records : new RecordList(LOCATION_WIDTH, 1);
      yield { key, listing, records };
    }
  } finally {
    await groups.close();
    await listed.close();
  }
}

/** One bundle of an old object: where it is, its section, and the group's records of its blobs (`first` to `end`). */
export interface Bundle {
  keyOffset: number;
  offset: number;
  length: number;
  first: number;
  end: number;
  live: boolean;
}

/** The bundles of a group, in offset order; a bundle is live when a used blob's chosen copy is in it. */
export function bundlesOf(group: ObjectGroup): Bundle[] {
  const out: Bundle[] = [];
  let i = 0;
  for (const r of group.records) {
    const offset = Loc.bundleOffset(r);
    let b = out.at(-1);
    if (b?.offset !== offset) out.push((b = { keyOffset: Loc.keyOffset(r), offset, length: Loc.bundleLength(r), first: i, end: i, live: false }));
    b.end = ++i;
    if ((Loc.flags(r) & (CHOSEN | USED)) === (CHOSEN | USED)) b.live = true;
  }
  return out;
}



/** The index records sorted by object, ready for groupByObject. */
export function sortByObject(records: AsyncIterable<string>, tempDir: string): AsyncGenerator<string> {
  return sortRecords(records, tempDir, LOCATION_WIDTH);
}

/**
 * The index entries of content objects that exist and are long enough for them, by object; entries of
 * other objects are counted in `dropped` (stale: a later index says better). An index object that
 * cannot be read goes to `indexProblem`, which decides whether to stop.
 */
export async function* existingCopies(repo: Repository, ranked: readonly ObjectInfo[], content: Listing, tempDir: string, indexProblem: (object: string, err: unknown) => void, dropped: (n: number) => void): AsyncGenerator<string> {
  for await (const g of groupByObject(sortByObject(indexEntries(repo, ranked, indexProblem), tempDir), content.path)) {
    if (!g.listing) {
      dropped(g.records.length);
      continue;
    }
    const end = g.listing.size - FOOTER_LENGTH;
    for (const r of g.records) {
      if (Loc.bundleOffset(r) + Loc.bundleLength(r) <= end) yield r;
      else dropped(1);
    }
  }
}

/**
 * Choose one copy of each blob and mark the used ones: records (by-object, any order) are sorted by blob
 * and merged with the sorted used ids. The first copy of a blob (from the newest index object) is
 * CHOSEN; a used blob's chosen copy is also USED. Every record comes out again, by-object with its
 * flags, in blob order. A used id with no copy goes to `missing`, with the copy the index named if
 * that one was marked absent (markAbsent: its object is missing or too short).
 */
export async function* chooseCopies(records: AsyncIterable<string>, usedBlobs: string, tempDir: string, missing: (id: string, lost?: string) => void | Promise<void>): AsyncGenerator<string> {
  async function* byBlob(): AsyncGenerator<string> {
    for await (const r of records) yield toByBlob(r);
  }
  const used = new Cursor(readRecords(usedBlobs, 32));
  try {
    let last = '';
    for await (const r of sortRecords(byBlob(), tempDir, LOCATION_WIDTH)) {
      const blob = blobOf(r);
      if (blob === last) {
        yield toByObject(r, 0);
        continue;
      }
      last = blob;
      for (let u = await used.peek(); u !== undefined && u < blob; u = await used.peek()) await missing((await used.next())!);
      const isUsed = (await used.peek()) === blob;
      if (isUsed) await used.next();
      const record = toByObject(r, 0);
      if (isAbsent(record)) {
        if (isUsed) await missing(blob, record);
        yield record;
        continue;
      }
      yield toByObject(r, CHOSEN | (isUsed ? USED : 0));
    }
    for (let u = await used.next(); u !== undefined; u = await used.next()) await missing(u);
  } finally {
    await used.close();
  }
}

/** One tree object as listed, and whether a snapshot uses it. */
export interface ListedTree {
  /** 32-char id. */
  id: string;
  size: number;
  modified: number;
  used: boolean;
}

/** Merge a tree listing with the sorted used tree ids. */
export async function* treesWithUse(listing: Listing, usedTrees: string): AsyncGenerator<ListedTree> {
  const used = new Cursor(readRecords(usedTrees, 32));
  try {
    for await (const r of readRecords(listing.path, LISTING_WIDTH)) {
      const id = r.slice(1, 33);
      for (let u = await used.peek(); u !== undefined && u < id; u = await used.peek()) await used.next();
      yield { id, ...listingInfo(r), used: (await used.peek()) === id };
    }
  } finally {
    await used.close();
  }
}
