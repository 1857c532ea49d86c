import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { IdFilter } from './filter.js';
import { RecentTable } from './recent.js';
import { decodeLocation, encodeRecord, ID_SIZE, RECORD_SIZE, type BlobLocation, type IndexEntry } from './records.js';
import { RunFiles } from './run-files.js';
import { MAX_SORT_RECORDS } from './sort.js';
import { searchAsync, searchSync, type Search, type SortedRun } from './sorted-run.js';

/** Tuning knobs; the defaults suit millions of ids in a few MiB of memory. */
export interface DiskIndexOptions {
  /** Records sorted in memory per run while building (≤ 65536; 80 bytes each). */
  runRecords?: number;
  /** Ids added during the run that are kept in memory before being written out as a sorted run. */
  recentCapacity?: number;
  /** Most runs merged in one pass (each takes a 16 KiB read buffer). */
  fanIn?: number;
}

// 4,096 recent additions (370 KiB): a backup reaches its steady memory after a few thousand new blobs, not 16,384.
const DEFAULTS: Required<DiskIndexOptions> = { runRecords: 16384, recentCapacity: 4096, fanIn: 64 };
// Spilled runs of the same tier are merged once there are this many, so a lookup searches O(log n) runs.
const COMPACT_AT = 8;

function checkId(id: Uint8Array): void {
  if (id.length !== ID_SIZE) throw new RangeError(`chunk id must be ${ID_SIZE} bytes, got ${id.length}`);
}

/**
 * The chunk index of one backup run, on disk in the temp dir: a sorted file built from the repository's
 * index objects, plus the ids stored during this run. Memory stays a few MiB whatever the number of ids:
 * fanout tables (≤ 256 KiB per run file), one bounded table of recent additions, and fixed buffers.
 *
 * When an id occurs more than once in the sources the first location is kept; `add` ignores ids already
 * known. Lookups may run concurrently with each other and with `add`.
 */
export class DiskIndex {
  private recent: RecentTable;
  /** The previous recent table while it is being written out, still searched. */
  private frozen: RecentTable | undefined;
  private spare: RecentTable | undefined;
  /** Runs of ids added in this run, oldest first, with their merge tier. */
  private spilled: { run: SortedRun; tier: number }[] = [];
  /** Ids in `spilled`, so that most misses skip those runs; made at the first spill. */
  private spilledFilter: IdFilter | undefined;
  private adding: Promise<unknown> = Promise.resolve();
  private added = 0;
  private closed = false;

  private constructor(
    private readonly files: RunFiles,
    private readonly main: SortedRun,
    private readonly options: Required<DiskIndexOptions>,
  ) {
    this.recent = new RecentTable(options.recentCapacity);
  }

  /** Build the index in a new folder under `dir` from entries in any order (external sort, bounded memory). */
  static async build(dir: string, sources: AsyncIterable<IndexEntry> | Iterable<IndexEntry>, opts: DiskIndexOptions = {}): Promise<DiskIndex> {
    async function* records(): AsyncGenerator<Buffer> {
      for await (const { id, loc } of sources) {
        const record = Buffer.allocUnsafe(RECORD_SIZE);
        encodeRecord(id, loc, record, 0);
        yield record;
      }
    }
    return DiskIndex.buildFromRecords(dir, records(), opts);
  }

  /**
   * Build from batches of raw records, as index objects hold them: no per-entry objects, so a million
   * ids cost seconds of copying instead of a garbage collector busy with a million small allocations.
   */
  static async buildFromRecords(dir: string, batches: AsyncIterable<Buffer> | Iterable<Buffer>, opts: DiskIndexOptions = {}): Promise<DiskIndex> {
    const options = { ...DEFAULTS, ...opts };
    if (!Number.isInteger(options.runRecords) || options.runRecords < 1 || options.runRecords > MAX_SORT_RECORDS) throw new RangeError(`runRecords must be 1..${MAX_SORT_RECORDS}`);
    if (!Number.isInteger(options.recentCapacity) || options.recentCapacity < 1 || options.recentCapacity > MAX_SORT_RECORDS) throw new RangeError(`recentCapacity must be 1..${MAX_SORT_RECORDS}`);
    if (!Number.isInteger(options.fanIn) || options.fanIn < 2) throw new RangeError('fanIn must be at least 2');
    const files = new RunFiles(await mkdtemp(join(dir, 'kbrackup-index-')), Math.max(options.runRecords, options.recentCapacity));
    try {
      const buf = Buffer.allocUnsafe(options.runRecords * RECORD_SIZE);
      const runs: SortedRun[] = [];
      let n = 0;
      for await (const batch of batches) {
        if (batch.length % RECORD_SIZE !== 0) throw new RangeError(`record batch of ${batch.length} bytes is not a whole number of records`);
        for (let at = 0; at < batch.length; ) {
          const take = Math.min(options.runRecords - n, (batch.length - at) / RECORD_SIZE);
          batch.copy(buf, n * RECORD_SIZE, at, at + take * RECORD_SIZE);
          n += take;
          at += take * RECORD_SIZE;
          if (n === options.runRecords) {
            runs.push(await files.writeSorted(buf, n));
            n = 0;
          }
        }
      }
      if (n > 0 || runs.length === 0) runs.push(await files.writeSorted(buf, n));
      return new DiskIndex(files, await files.mergeAll(runs, options.fanIn), options);
    } catch (err) {
      await files.remove();
      throw err;
    }
  }

  /** Number of distinct ids: those built from the sources plus those added since. */
  get size(): number {
    return this.main.count + this.added;
  }

  /** Where the blob of chunk `id` is stored, or undefined if the repository does not have it. */
  async lookup(id: Uint8Array): Promise<BlobLocation | undefined> {
    if (this.certainlyAbsent(id)) return undefined;
    return this.location(await searchAsync(this.search(id)));
  }

  /** lookup() with blocking reads (see searchSync): for callers that look up thousands of ids in a row. */
  lookupSync(id: Uint8Array): BlobLocation | undefined {
    if (this.certainlyAbsent(id)) return undefined;
    return this.location(searchSync(this.search(id)));
  }

  /** Whether the repository (or this run) has chunk `id`; cheaper than lookup when the location is not needed. */
  async has(id: Uint8Array): Promise<boolean> {
    if (this.certainlyAbsent(id)) return false;
    return (await searchAsync(this.search(id))) !== undefined;
  }

  /**
   * True when memory alone shows `id` is absent: not in the tables of recent additions, the main run is
   * empty (a first backup), and the filter of spilled runs has never seen it. A backup of 100,000 new
   * small files asks this for each, and a generator and a promise per miss made much of its garbage.
   * Checked in one synchronous step, like search(), so an id moving from memory to a run is not missed.
   */
  private certainlyAbsent(id: Uint8Array): boolean {
    checkId(id);
    if (this.main.count > 0 || this.recent.find(id) >= 0 || (this.frozen !== undefined && this.frozen.find(id) >= 0)) return false;
    return this.spilledFilter === undefined || !this.spilledFilter.mayHave(id);
  }

  /** Record a blob stored during this run; resolves to false (and keeps the known location) if `id` was known. */
  add(id: Uint8Array, loc: BlobLocation): Promise<boolean> {
    // Serialized so that the check for a known id and the insert cannot interleave with another add.
    const result = this.adding.then(() => this.addNow(id, loc));
    this.adding = result.catch(() => undefined);
    return result;
  }

  /** Close and delete the index files; call when no lookup is in flight. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.adding;
    await this.files.remove();
  }

  private async addNow(id: Uint8Array, loc: BlobLocation): Promise<boolean> {
    if (this.closed) throw new Error('disk index is closed');
    if (await this.has(id)) return false;
    this.recent.insert(id, loc);
    this.added++;
    if (this.recent.full) await this.spill();
    return true;
  }

  /** Search for the encoded record of `id` (a private copy): memory first, then the run files. */
  private *search(id: Uint8Array): Search<Buffer | undefined> {
    checkId(id);
    for (const table of this.frozen ? [this.recent, this.frozen] : [this.recent]) {
      const at = table.find(id);
      if (at >= 0) return Buffer.from(table.records.subarray(at, at + RECORD_SIZE));
    }
    // Taken in the same step as the memory check, so an id moving from memory to a run is not missed.
    const runs = this.spilledFilter?.mayHave(id) ? [this.main, ...this.spilled.map((s) => s.run)] : [this.main];
    for (const run of runs) run.acquire();
    try {
      for (const run of runs) {
        const record = yield* run.search(id);
        if (record) return record;
      }
      return undefined;
    } finally {
      for (const run of runs) run.release();
    }
  }

  private location(record: Buffer | undefined): BlobLocation | undefined {
    return record && decodeLocation(record, 0, this.files.dir);
  }

  /** Write the full recent table out as a sorted run, then merge runs of equal tier. */
  private async spill(): Promise<void> {
    const table = this.recent;
    this.frozen = table;
    this.recent = this.spare ?? new RecentTable(this.options.recentCapacity);
    this.spare = undefined;
    const run = await this.files.writeSorted(table.records, table.count);
    (this.spilledFilter ??= new IdFilter()).addRecords(table.records, table.count);
    this.spilled.push({ run, tier: 0 });
    this.frozen = undefined;
    table.clear();
    this.spare = table;
    for (;;) {
      const start = this.spilled.length - COMPACT_AT;
      const tier = this.spilled.at(-1)!.tier;
      if (start < 0 || this.spilled[start]!.tier !== tier) return;
      const inputs = this.spilled.slice(start).map((s) => s.run);
      const merged = await this.files.merge(inputs);
      this.spilled.splice(start, COMPACT_AT, { run: merged, tier: tier + 1 });
      await this.files.retire(inputs);
    }
  }
}
