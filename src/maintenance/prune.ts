import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KbrackupError, describeError } from '../errors.js';
import { Layout } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { bundlesOf, chooseCopies, existingCopies, groupByObject, listContent, listTrees, rankedIndexObjects, sortByObject, treesWithUse, type Listing, type ObjectGroup } from './inventory.js';
import { CHOSEN, LOCATION_WIDTH, Loc, parseObjectKey } from './locations.js';
import { RecordWriter, idHex, numberChars, readNumber, readRecords, sortRecords } from './record-stream.js';
import { Repacker } from './repack.js';
import { loadSnapshots } from './snapshots.js';
import { collectUsed } from './used.js';
import { writeCompactIndex } from './compact-index.js';
import { deleteAll } from './delete.js';

/** restic's --max-unused: how much unused space may remain after prune. */
export type MaxUnused = { percent: number } | { bytes: number } | 'unlimited';

/** Parse `--max-unused`: `5%`, a size such as `1GiB` (via `parseSize`), or `unlimited`; undefined when malformed. */
export function parseMaxUnused(text: string, parseSize: (s: string) => number | undefined): MaxUnused | undefined {
  const t = text.trim();
  if (t === 'unlimited') return 'unlimited';
  if (t.endsWith('%')) {
    const p = Number(t.slice(0, -1));
    return t.length > 1 && Number.isFinite(p) && p >= 0 && p < 100 ? { percent: p } : undefined;
  }
  const bytes = parseSize(t);
  return bytes === undefined ? undefined : { bytes };
}

/** The most unused bytes that may stay, given the bytes in use (restic: p / (100 - p) of the used size). */
function maxUnusedBytes(m: MaxUnused, used: number): number {
  if (m === 'unlimited') return Number.POSITIVE_INFINITY;
  if ('bytes' in m) return m.bytes;
  return (m.percent / (100 - m.percent)) * used;
}

/** What prune is asked to do. */
export interface PruneOptions {
  tempDir: string;
  /** Objects stored less than this long ago are never deleted or repacked (ms). */
  graceMs: number;
  maxUnused: MaxUnused;
  /** False (`--no-repack`): only whole unused objects are deleted, no object is read. */
  repack: boolean;
  dryRun: boolean;
  now?: number;
  signal?: AbortSignal;
  /** Progress, one line per step. */
  log?: (message: string) => void;
}

/** Counts and bytes, restic's prune statistics in our words. */
export interface PruneStats {
  dry_run: boolean;
  snapshots: number;
  used_blobs: number;
  used_trees: number;
  objects: { total: number; used: number; partly_used: number; unused: number; unindexed: number; young: number; delete: number; repack: number; keep: number };
  bytes: { total: number; used: number; unused: number; delete: number; repack: number; repack_reclaimed: number; remaining_unused: number; young_unused: number };
  trees: { total: number; unused: number; delete: number; young: number };
  index: { objects_before: number; objects_after: number; entries: number; dropped: number };
  packs_written: number;
  bytes_written: number;
  failed_deletes: number;
}

/** Prune could not run safely: nothing was deleted. */
export class PruneRefusedError extends KbrackupError {}

/** Index entries per new index object (~36 bytes each, ~1.8 MiB): larger objects cost more transient memory to encrypt, not fewer reads. */
const INDEX_ENTRIES_PER_OBJECT = 50_000;
/** Examples named in a refusal. */
const EXAMPLES = 3;

/** A sortable key of a repack candidate: a smaller used share sorts first, then its object key. */
function candidateKey(used: number, unused: number, key: string): string {
  return numberChars(Math.floor((used / Math.max(1, used + unused)) * 2 ** 40), 6) + key;
}

/**
 * "Delete what is unused" (docs/maintenance.md "How prune works"); it never reads a tree, it takes the
 * used ids from used.ts. Plan, from sorted streams on disk:
 *   - every content object is kept (a used blob's chosen copy is in it, or it is younger than the grace
 *     period), deleted (nothing used, old enough), or, with repack, a candidate: a pack holding dead
 *     bundles; candidates with the most garbage are repacked until at most --max-unused remains;
 *   - a tree no snapshot uses and older than the grace period is deleted.
 * Then, in the only order that keeps every remaining snapshot restorable whenever it stops: new packs
 * → new index objects (kept objects' chosen copies + the new packs) → old index objects deleted →
 * unused content objects and trees deleted. A stop before the end leaves garbage, never a hole.
 */
export async function prune(repo: Repository, options: PruneOptions): Promise<PruneStats> {
  const now = options.now ?? Date.now();
  const log = options.log ?? (() => undefined);
  const signal = options.signal;
  const work = await mkdtemp(join(options.tempDir, 'kbrackup-prune-'));
  const isYoung = (modified: number) => modified === 0 || now - modified < options.graceMs;
  const stats: PruneStats = {
    dry_run: options.dryRun,
    snapshots: 0,
    used_blobs: 0,
    used_trees: 0,
    objects: { total: 0, used: 0, partly_used: 0, unused: 0, unindexed: 0, young: 0, delete: 0, repack: 0, keep: 0 },
    bytes: { total: 0, used: 0, unused: 0, delete: 0, repack: 0, repack_reclaimed: 0, remaining_unused: 0, young_unused: 0 },
    trees: { total: 0, unused: 0, delete: 0, young: 0 },
    index: { objects_before: 0, objects_after: 0, entries: 0, dropped: 0 },
    packs_written: 0,
    bytes_written: 0,
    failed_deletes: 0,
  };
  try {
    log('loading snapshots');
    const { snapshots, damaged } = await loadSnapshots(repo);
    if (damaged.length > 0) {
      throw new PruneRefusedError(`snapshot ${damaged[0]!.object} cannot be read (${damaged[0]!.error.message}); prune cannot tell what it needs, so nothing was deleted. Run \`kbrackup check\`, and forget it by id if it cannot be recovered`);
    }
    stats.snapshots = snapshots.length;
    log(`finding the data ${snapshots.length} snapshots use`);
    const used = await collectUsed(
      repo,
      snapshots.map((s) => ({ object: s.object, tree: s.tree })),
      work,
      {
        problem: (object, err) => {
          throw new PruneRefusedError(`${object} cannot be read (${describeError(err)}); prune cannot tell what it references, so nothing was deleted. Run \`kbrackup check\` to see the snapshots affected`);
        },
      },
      { signal },
    );
    stats.used_blobs = used.blobCount;
    stats.used_trees = used.treeCount;
    log(`${used.treeCount} trees and ${used.blobCount} blobs in use; listing the repository`);
    const content = await listContent(repo, work);
    const trees = await listTrees(repo, work);
    const ranked = await rankedIndexObjects(repo);
    stats.index.objects_before = ranked.length;
    stats.objects.total = content.objects;
    stats.bytes.total = content.bytes;

    // Stage 1: index entries of objects that exist, within their object.
    const existing = existingCopies(
      repo,
      ranked,
      content,
      work,
      (object, err) => {
        throw new PruneRefusedError(`${object} cannot be read (${describeError(err)}); run \`kbrackup repair index\` first, nothing was deleted`);
      },
      (n) => (stats.index.dropped += n),
    );
    // Stage 2: one chosen copy per blob; stage 3: by object again, to decide.
    const missing: string[] = [];
    let missingCount = 0;
    const chosen = chooseCopies(existing, used.blobs, work, (id) => {
      if (missing.length < EXAMPLES) missing.push(idHex(id));
      missingCount++;
    });
    const plan = await Plan.create(work);
    try {
      log('planning');
      for await (const g of groupByObject(sortByObject(chosen, work), content.path)) {
        signal?.throwIfAborted();
        await plan.decide(g, isYoung, options.repack, stats);
      }
      if (missingCount > 0) {
        throw new PruneRefusedError(
          `${missingCount} blob(s) that snapshots use are in no content object (e.g. ${missing.join(', ')}); nothing was deleted. Run \`kbrackup check\` to see the snapshots affected (and \`kbrackup repair index\` if index objects were lost)`,
        );
      }
      const cutoff = await plan.selectRepacks(maxUnusedBytes(options.maxUnused, stats.bytes.used), stats, work);
      await planTrees(trees, used.trees, isYoung, plan, stats);
      await plan.closePlanning();
      if (options.dryRun) {
        stats.objects.keep += plan.candidateCount - stats.objects.repack;
        return stats;
      }

      log(`repacking ${stats.objects.repack} packs`);
      const newEntries = await RecordWriter.create(join(work, 'new-entries'), LOCATION_WIDTH);
      const repacker = new Repacker(repo, work, newEntries, signal);
      try {
        for await (const g of groupByObject(readRecords(plan.candidatesPath, LOCATION_WIDTH), content.path)) {
          if (g.records.length === 0) continue;
          const { used: u, unused } = Plan.usage(g);
          if (cutoff !== undefined && candidateKey(u, unused, g.key) <= cutoff) {
            await repacker.copy(g);
            await plan.remove(g.key);
          } else {
            await plan.keep(g, stats);
          }
        }
        await repacker.finish();
        await newEntries.finish();
      } catch (err) {
        await repacker.abort();
        await newEntries.abort();
        throw err;
      }
      stats.packs_written = repacker.packs;
      stats.bytes_written = repacker.bytes;
      await plan.closeExecution();

      stats.index.entries += newEntries.count;
      const rewrite = stats.objects.delete > 0 || stats.objects.repack > 0 || stats.index.dropped > 0 || ranked.length > Math.max(1, Math.ceil(stats.index.entries / INDEX_ENTRIES_PER_OBJECT));
      if (rewrite) {
        log('writing the new index');
        async function* entries(): AsyncGenerator<string> {
          yield* readRecords(plan.keepPath, LOCATION_WIDTH);
          yield* readRecords(newEntries.path, LOCATION_WIDTH);
        }
        stats.index.objects_after = (await writeCompactIndex(repo, entries(), work, INDEX_ENTRIES_PER_OBJECT)).length;
        log(`deleting ${ranked.length} old index objects`);
        stats.failed_deletes += await deleteAll(repo, ranked.map((o) => o.name), signal, log);
      } else {
        stats.index.objects_after = ranked.length;
      }
      log(`deleting ${stats.objects.delete + stats.objects.repack} content objects and ${stats.trees.delete} trees`);
      stats.failed_deletes += await deleteAll(repo, plan.deletions(), signal, log);
      return stats;
    } finally {
      await plan.abort();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Unused old trees are deleted, unused young ones stay. */
async function planTrees(trees: Listing, usedTrees: string, isYoung: (modified: number) => boolean, plan: Plan, stats: PruneStats): Promise<void> {
  stats.trees.total = trees.objects;
  for await (const t of treesWithUse(trees, usedTrees)) {
    if (t.used) continue;
    stats.trees.unused++;
    if (isYoung(t.modified)) stats.trees.young++;
    else {
      stats.trees.delete++;
      await plan.removeTree(t.id);
    }
  }
}

/** The plan's files: entries of kept objects, repack candidates (entries and summaries), names to delete. */
class Plan {
  private constructor(
    private readonly keepIndex: RecordWriter,
    private readonly candidates: RecordWriter,
    private readonly summaries: RecordWriter,
    private readonly removals: RecordWriter,
  ) {}

  static async create(work: string): Promise<Plan> {
    return new Plan(
      await RecordWriter.create(join(work, 'keep-index'), LOCATION_WIDTH),
      await RecordWriter.create(join(work, 'candidates'), LOCATION_WIDTH),
      await RecordWriter.create(join(work, 'candidate-summaries'), 6 + 33 + 12),
      await RecordWriter.create(join(work, 'removals'), REMOVAL_WIDTH),
    );
  }

  get keepPath(): string {
    return this.keepIndex.path;
  }

  get candidatesPath(): string {
    return this.candidates.path;
  }

  /** Repack candidates found while planning. */
  get candidateCount(): number {
    return this.summaries.count;
  }

  /** Bytes of an object's live and dead bundles (key packets and trailer count as neither), and how many. */
  static usage(g: ObjectGroup): { used: number; unused: number; dead: number; live: number } {
    const u = { used: 0, unused: 0, dead: 0, live: 0 };
    for (const b of bundlesOf(g)) {
      if (b.live) {
        u.used += b.length;
        u.live++;
      } else {
        u.unused += b.length;
        u.dead++;
      }
    }
    return u;
  }

  /** Decide one object (of stage 3): keep, delete, or repack candidate. */
  decide(g: ObjectGroup, isYoung: (modified: number) => boolean, repack: boolean, stats: PruneStats): Promise<void> | undefined {
    if (!g.listing) return undefined;
    const size = g.listing.size;
    const young = isYoung(g.listing.modified);
    if (g.records.length === 0) {
      stats.objects.unindexed++;
      if (young) {
        stats.objects.young++;
        stats.bytes.young_unused += size;
        return undefined;
      }
      return this.remove(g.key, stats, size);
    }
    const u = Plan.usage(g);
    if (u.live === 0) stats.objects.unused++;
    else if (u.dead > 0) stats.objects.partly_used++;
    else stats.objects.used++;
    stats.bytes.used += u.used;
    if (young) {
      stats.objects.young++;
      stats.bytes.young_unused += u.unused;
      return this.keep(g, stats);
    }
    if (u.live === 0) return this.remove(g.key, stats, size);
    if (repack && u.dead > 0 && parseObjectKey(g.key).kind === 'pack') return this.candidate(g, u.used, u.unused, stats);
    // Dead bundles that stay (--no-repack): garbage left behind.
    stats.bytes.remaining_unused += u.unused;
    return this.keep(g, stats);
  }

  /** Keep an object: its chosen entries go to the new index. */
  async keep(g: ObjectGroup, stats: PruneStats): Promise<void> {
    stats.objects.keep++;
    for (const r of g.records) {
      if (Loc.flags(r) & CHOSEN) {
        stats.index.entries++;
        await this.keepIndex.write(r);
      } else stats.index.dropped++;
    }
  }

  private async candidate(g: ObjectGroup, used: number, unused: number, stats: PruneStats): Promise<void> {
    stats.bytes.unused += unused;
    for (const r of g.records) await this.candidates.write(r);
    await this.summaries.write(candidateKey(used, unused, g.key) + numberChars(used, 6) + numberChars(unused, 6));
  }

  /** Delete a content object (its key) after the new index is stored. */
  async remove(key: string, stats?: PruneStats, size = 0): Promise<void> {
    if (stats) {
      stats.objects.delete++;
      stats.bytes.delete += size;
    }
    await this.removals.write(`c${key}`);
  }

  /** Delete a tree (its 32-char id) after the new index is stored. */
  async removeTree(id: string): Promise<void> {
    await this.removals.write(`t${id}\0`);
  }

  /**
   * restic's selection: candidates with the largest unused share first, until the unused bytes left
   * are below `limit`. Returns the key of the last candidate to repack (every candidate whose key sorts
   * at or before it is repacked), or undefined when none is.
   */
  async selectRepacks(limit: number, stats: PruneStats, work: string): Promise<string | undefined> {
    await this.summaries.finish();
    let remaining = stats.bytes.unused + stats.bytes.remaining_unused + stats.bytes.young_unused;
    let cutoff: string | undefined;
    for await (const s of sortRecords(readRecords(this.summaries.path, 51), work, 51)) {
      if (remaining <= limit) break;
      const used = readNumber(s, 39, 6);
      const unused = readNumber(s, 45, 6);
      remaining -= unused;
      cutoff = s.slice(0, 39);
      stats.objects.repack++;
      stats.bytes.repack += used + unused;
      stats.bytes.repack_reclaimed += unused;
    }
    stats.bytes.remaining_unused = remaining;
    return cutoff;
  }

  /** Planning is over: what is not repacked of the candidates is kept later, in the execution pass. */
  async closePlanning(): Promise<void> {
    await this.candidates.finish();
  }

  /** Execution is over: the new index can be read. */
  async closeExecution(): Promise<void> {
    await this.keepIndex.finish();
    await this.removals.finish();
  }

  /** Names to delete, content objects before trees. */
  async *deletions(): AsyncGenerator<string> {
    for await (const r of readRecords(this.removals.path, REMOVAL_WIDTH)) {
      if (r[0] === 'c') {
        const { kind, objectId } = parseObjectKey(r.slice(1, 34));
        yield kind === 'chunk' ? Layout.chunk(objectId) : Layout.pack(objectId);
      }
    }
    for await (const r of readRecords(this.removals.path, REMOVAL_WIDTH)) if (r[0] === 't') yield Layout.tree(idHex(r, 1));
  }

  /** Close whatever is still open (after an error, or a dry run). */
  async abort(): Promise<void> {
    for (const w of [this.keepIndex, this.candidates, this.summaries, this.removals]) await w.abort();
  }
}

/** A removal: `c` + content object key, or `t` + tree id (padded). */
const REMOVAL_WIDTH = 34;
