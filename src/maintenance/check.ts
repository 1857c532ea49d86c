import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError, KbrackupError, NotFoundError, describeError } from '../errors.js';
import { FOOTER_LENGTH } from '../repo/content-codec.js';
import type { WantedBlob } from '../repo/content-reader.js';
import { Layout, parseSnapshotName } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { displayName } from '../repo/tree/names.js';
import { chooseCopies, groupByObject, indexEntries, listContent, listTrees, rankedIndexObjects, sortByObject, treesWithUse, type ObjectGroup } from './inventory.js';
import { CHOSEN, Loc, isAbsent, markAbsent, parseObjectKey, rankOf } from './locations.js';
import { loadSnapshots } from './snapshots.js';
import { collectUsed } from './used.js';
import { walkSnapshots, type WalkRoot } from './walk.js';

/** One problem, by object, with the snapshots (and some of the paths) it affects. */
export interface CheckProblem {
  object: string;
  message: string;
  snapshots: string[];
  paths: string[];
}

/** Which content objects `--read-data` decrypts: all, a random share, or part n of t (by object id). */
export type ReadDataSelection = 'all' | { percent: number } | { part: number; of: number };

/** Parse `--read-data-subset`: `N%` or `n/t`; undefined when malformed. */
export function parseReadDataSubset(text: string): ReadDataSelection | undefined {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (pct) {
    const p = Number(pct[1]);
    return p > 0 && p <= 100 ? { percent: p } : undefined;
  }
  const part = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (part) {
    const n = Number(part[1]);
    const t = Number(part[2]);
    return n >= 1 && t >= 1 && n <= t ? { part: n, of: t } : undefined;
  }
  return undefined;
}

/** What check is asked to do. */
export interface CheckOptions {
  tempDir: string;
  /** Decrypt and verify the blobs of these content objects (needs a private key or the passphrase). */
  readData?: ReadDataSelection;
  signal?: AbortSignal;
  log?: (message: string) => void;
}

/** What check found: problems (errors: exit 1), what it looked at, and garbage (not errors: prune removes it). */
export interface CheckResult {
  problems: CheckProblem[];
  /** Problems beyond those listed in `problems`. */
  more_problems: number;
  snapshots: number;
  trees: number;
  blobs: number;
  objects: number;
  index_objects: number;
  garbage: { unindexed_objects: number; unindexed_bytes: number; unused_trees: number; duplicate_copies: number };
  read_data: { objects: number; blobs: number; bytes: number };
}

/** Problems listed one by one; more are counted. */
const MAX_PROBLEMS = 1000;
/** Snapshots and paths named per problem. */
const MAX_NAMES = 20;
/** Blobs of damaged or missing objects that a second walk can attribute to snapshots and files. */
const MAX_BAD_BLOBS = 100_000;
/** Blobs read at once from one pack. */
const READ_BATCH = 4096;

/** check --read-data without a key to decrypt. */
export class CheckNeedsKeyError extends KbrackupError {}

/** Problems and their attribution: which trees lead to a problem, so a snapshot sharing such a tree is named too. */
class Problems {
  readonly list: (CheckProblem & { snapshotSet: Set<string>; pathSet: Set<string> })[] = [];
  more = 0;
  /** Tree id → problems found at or below it. */
  private readonly below = new Map<string, Set<number>>();
  /** Blob id (32 chars) → the problem of the object it was lost with. */
  readonly badBlobs = new Map<string, number>();
  current = '';

  get count(): number {
    return this.list.length + this.more;
  }

  /** Record a problem; returns its number (or -1 when only counted). */
  add(object: string, message: string, snapshot?: string): number {
    if (this.list.length >= MAX_PROBLEMS) {
      this.more++;
      return -1;
    }
    const p = { object, message, snapshots: [], paths: [], snapshotSet: new Set<string>(), pathSet: new Set<string>() };
    if (snapshot) p.snapshotSet.add(snapshot);
    return this.list.push(p) - 1;
  }

  /** The current snapshot (and `path`) is affected by problem `n`, found below the trees of `chain`. */
  affect(n: number, chain: readonly string[], path?: string): void {
    if (n < 0) return;
    const p = this.list[n]!;
    if (p.snapshotSet.size < MAX_NAMES) p.snapshotSet.add(this.current);
    if (path !== undefined && p.pathSet.size < MAX_NAMES) p.pathSet.add(path);
    for (const id of chain) {
      let set = this.below.get(id);
      if (!set) this.below.set(id, (set = new Set()));
      set.add(n);
    }
  }

  /** A tree met again: the problems below it affect the current snapshot too. */
  seen(id: string, chain: readonly string[]): void {
    for (const n of this.below.get(id) ?? []) this.affect(n, chain);
  }

  /** Forget which trees lead where (before a second walk). */
  resetTrees(): void {
    this.below.clear();
  }

  /** The problems as reported. */
  finish(): CheckProblem[] {
    return this.list.map(({ snapshotSet, pathSet, ...p }) => ({ ...p, snapshots: [...snapshotSet], paths: [...pathSet] }));
  }
}

/** The short id of a snapshot object, for messages. */
function shortId(object: string): string {
  return parseSnapshotName(object)?.id.slice(0, 8) ?? object;
}

/** Whether `--read-data` covers this object. */
function selected(selection: ReadDataSelection, objectId: string): boolean {
  if (selection === 'all') return true;
  if ('percent' in selection) return Math.random() * 100 < selection.percent;
  return Number.parseInt(objectId.slice(0, 8), 16) % selection.of === selection.part - 1;
}

/**
 * `check` (docs/maintenance.md "check"): with the repository key alone, the structure — every snapshot
 * opens, every tree it needs exists and verifies, every blob it needs is in the index, in a content object
 * that exists and is long enough; with `readData` and a key that opens contents, every selected blob is
 * decrypted and verified against its id. Each problem names its object and the snapshots (and paths) it
 * affects; objects no index lists and trees nothing uses are garbage, counted apart.
 */
export async function check(repo: Repository, options: CheckOptions): Promise<CheckResult> {
  if (options.readData && !repo.canReadContent) throw new CheckNeedsKeyError('check --read-data decrypts file contents: give a recipient\'s private key with --key (backup credentials cannot decrypt them)');
  const log = options.log ?? (() => undefined);
  const work = await mkdtemp(join(options.tempDir, 'kbrackup-check-'));
  const problems = new Problems();
  const result: CheckResult = {
    problems: [],
    more_problems: 0,
    snapshots: 0,
    trees: 0,
    blobs: 0,
    objects: 0,
    index_objects: 0,
    garbage: { unindexed_objects: 0, unindexed_bytes: 0, unused_trees: 0, duplicate_copies: 0 },
    read_data: { objects: 0, blobs: 0, bytes: 0 },
  };
  try {
    log('loading snapshots');
    const { snapshots, damaged } = await loadSnapshots(repo);
    for (const d of damaged) problems.add(d.object, d.error.message, shortId(d.object));
    result.snapshots = snapshots.length;
    const roots: WalkRoot[] = snapshots.map((s) => ({ object: s.object, tree: s.tree }));
    log(`checking the trees of ${snapshots.length} snapshots`);
    const used = await collectUsed(
      repo,
      roots,
      work,
      {
        root: (r) => (problems.current = shortId(r.object)),
        problem: (object, err, chain, path) => problems.affect(problems.add(object, err instanceof NotFoundError ? 'is missing' : describeError(err).replace(`${object}: `, '')), chain, `/${displayName(path)}`),
        seen: (id, chain) => problems.seen(id, chain),
      },
      { paths: true, signal: options.signal },
    );
    result.trees = used.treeCount;
    result.blobs = used.blobCount;
    log('checking the index against the content objects');
    const content = await listContent(repo, work);
    result.objects = content.objects;
    const ranked = await rankedIndexObjects(repo);
    result.index_objects = ranked.length;
    const indexName = (r: string) => ranked[rankOf(r)]?.name ?? 'index';

    // Problems of content objects by object key; their copies go on marked absent, so a blob with a good
    // copy elsewhere is fine and one without is traced to the snapshots and files that need it.
    const objectProblems = new Map<string, number>();
    const objectProblem = (key: string, message: string) => {
      const n = problems.add(objectName(key), message);
      objectProblems.set(key, n);
    };
    async function* copies(): AsyncGenerator<string> {
      const entries = indexEntries(repo, ranked, (object, err) => problems.add(object, `${describeError(err).replace(`${object}: `, '')}; what it lists counts as not indexed (\`kbrackup repair index\` rebuilds it)`));
      for await (const g of groupByObject(sortByObject(entries, work), content.path)) {
        options.signal?.throwIfAborted();
        if (!g.listing) {
          if (g.records.length === 0) continue;
          objectProblem(g.key, `is missing (${indexName(g.records.get(0))} lists ${g.records.length} blobs in it)`);
          for (const r of g.records) yield markAbsent(r);
          continue;
        }
        if (g.records.length === 0) {
          result.garbage.unindexed_objects++;
          result.garbage.unindexed_bytes += g.listing.size;
          continue;
        }
        const end = g.listing.size - FOOTER_LENGTH;
        const beyond = (r: string) => Loc.bundleOffset(r) + Loc.bundleLength(r) > end;
        let short = 0;
        let firstShort = '';
        for (const r of g.records) if (beyond(r) && short++ === 0) firstShort = r;
        if (short > 0) {
          objectProblem(g.key, `has ${g.listing.size} bytes, but ${indexName(firstShort)} places ${short} blobs beyond that (truncated or replaced)`);
        } else if (options.readData && selected(options.readData, parseObjectKey(g.key).objectId)) {
          const damage = await readObject(repo, g, result);
          if (damage) objectProblem(g.key, damage);
        }
        const damaged = objectProblems.has(g.key) && short === 0;
        for (const r of g.records) yield damaged || beyond(r) ? markAbsent(r) : r;
      }
    }
    let notIndexed = -1;
    let notIndexedCount = 0;
    const lostBlob = (id: string, lost?: string) => {
      let n = lost === undefined ? undefined : objectProblems.get(Loc.objectKey(lost));
      if (n === undefined) {
        if (notIndexedCount++ === 0) notIndexed = problems.add('index', '');
        n = notIndexed;
      }
      if (problems.badBlobs.size < MAX_BAD_BLOBS) problems.badBlobs.set(id, n);
    };
    for await (const r of chooseCopies(copies(), used.blobs, work, lostBlob)) {
      if (!(Loc.flags(r) & CHOSEN) && !isAbsent(r)) result.garbage.duplicate_copies++;
    }
    if (notIndexed >= 0) problems.list[notIndexed]!.message = `lists no copy of ${notIndexedCount} blobs that snapshots use (lost index objects? \`kbrackup repair index\` rebuilds them from the content objects)`;
    result.garbage.unused_trees = await unusedTrees(repo, used.trees, work);
    if (problems.badBlobs.size > 0) {
      log('finding the snapshots and files that need what is missing or damaged');
      problems.resetTrees();
      await walkSnapshots(
        repo,
        roots,
        {
          root: (r) => (problems.current = shortId(r.object)),
          part: (part, _file, path, chain) => {
            if (!('id' in part)) return;
            const n = problems.badBlobs.get(Buffer.from(part.id, 'hex').toString('latin1'));
            if (n !== undefined) problems.affect(n, chain, `/${displayName(path)}`);
          },
          seen: (id, chain) => problems.seen(id, chain),
          problem: () => undefined,
        },
        { tempDir: work, paths: true, signal: options.signal },
      );
    }
    result.problems = problems.finish();
    result.more_problems = problems.more;
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The object name of a group's key. */
function objectName(key: string): string {
  const { kind, objectId } = parseObjectKey(key);
  return kind === 'chunk' ? Layout.chunk(objectId) : Layout.pack(objectId);
}

/** Decrypt and verify every blob of one content object, a batch at a time; returns what is wrong with it, or undefined. */
async function readObject(repo: Repository, g: ObjectGroup, result: CheckResult): Promise<string | undefined> {
  const chunk = parseObjectKey(g.key).kind === 'chunk';
  let last = '';
  let batch: WantedBlob[] = [];
  const read = async () => {
    if (chunk) {
      for (const blob of batch) for await (const piece of await repo.openBlob(blob)) result.read_data.bytes += piece.length;
    } else {
      for await (const blob of repo.readBlobs(batch)) result.read_data.bytes += blob.data.length;
    }
    result.read_data.blobs += batch.length;
    batch = [];
  };
  result.read_data.objects++;
  try {
    for (const r of g.records) {
      // The same copy listed by two index objects is read once.
      const where = r.slice(33, 43);
      if (where === last) continue;
      last = where;
      batch.push(Loc.entry(r));
      if (batch.length >= READ_BATCH) await read();
    }
    if (batch.length > 0) await read();
    return undefined;
  } catch (err) {
    if (!(err instanceof IntegrityError) && !(err instanceof NotFoundError)) throw err;
    return describeError(err).replace(`${objectName(g.key)}: `, '');
  }
}

/** Trees (and content lists) no snapshot uses: garbage prune removes after the grace period. */
async function unusedTrees(repo: Repository, usedTrees: string, work: string): Promise<number> {
  let unused = 0;
  for await (const t of treesWithUse(await listTrees(repo, work), usedTrees)) if (!t.used) unused++;
  return unused;
}

/** One problem as a line for people. */
export function describeProblem(p: CheckProblem): string {
  const who = p.snapshots.length ? `; snapshots affected: ${p.snapshots.join(', ')}` : '';
  const where = p.paths.length ? ` (${p.paths.join(', ')})` : '';
  return `${p.object}: ${p.message}${who}${where}`;
}
