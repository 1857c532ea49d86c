import { IntegrityError, KbrackupError, NotFoundError } from '../errors.js';
import type { Target } from '../targets/target.js';
import type { Unsealing } from '../crypto/envelope.js';
import { Layout, parseSnapshotName } from './layout.js';
import { getSealedJson, putSealedBytes } from './objects.js';
import type { Repository } from './repository.js';

/** The counters restic prints in its backup summary and stores with each snapshot. */
export interface SnapshotSummary {
  backup_start: string;
  backup_end: string;
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  dirs_new: number;
  dirs_changed: number;
  dirs_unmodified: number;
  data_added: number;
  data_added_packed: number;
  total_files_processed: number;
  total_bytes_processed: number;
  bytes_read: number;
  error_count: number;
}

/** A snapshot object: who, when, what, and which tree lists the files. Field names follow restic's JSON. */
export interface Snapshot {
  id: string;
  time: string;
  source: string;
  paths: string[];
  hostname: string;
  username: string;
  tags: string[];
  parent?: string;
  program_version: string;
  tree: string;
  summary: SnapshotSummary;
}

/** A snapshot together with the object name it was read from. */
export interface StoredSnapshot extends Snapshot {
  object: string;
}

/** Store a snapshot: the last write of a backup, after everything it references. */
export async function writeSnapshot(repo: Repository, snapshot: Snapshot): Promise<string> {
  const name = Layout.snapshot(snapshot.source, new Date(snapshot.time), snapshot.id);
  await putSealedBytes(repo.target, name, Buffer.from(JSON.stringify(snapshot)), repo.metaSealing);
  return name;
}

/** Every snapshot in the repository (optionally of one source), oldest first. */
export async function listSnapshots(target: Target, unsealing: Unsealing, source?: string): Promise<StoredSnapshot[]> {
  const names: string[] = [];
  for await (const object of target.list(source ? `${Layout.snapshotsDir}/${source}` : Layout.snapshotsDir)) {
    if (parseSnapshotName(object.name)) names.push(object.name);
  }
  const out: StoredSnapshot[] = [];
  // A few reads at a time: a repository may hold thousands of snapshots.
  for (let i = 0; i < names.length; i += 8) {
    const batch = await Promise.all(
      names.slice(i, i + 8).map(async (object) => {
        try {
          return { ...(await getSealedJson<Snapshot>(target, object, unsealing)), object };
        } catch (err) {
          // Deleted by a concurrent forget between list and read: not an error.
          if (err instanceof NotFoundError) return undefined;
          throw err;
        }
      }),
    );
    for (const s of batch) if (s) out.push(s);
  }
  return out.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}

/** The newest snapshot of one source, read alone: object names start with the UTC time, so they sort by it. */
export async function latestSnapshot(target: Target, unsealing: Unsealing, source: string): Promise<StoredSnapshot | undefined> {
  let newest: string | undefined;
  for await (const object of target.list(`${Layout.snapshotsDir}/${source}`)) {
    if (parseSnapshotName(object.name) && (newest === undefined || object.name > newest)) newest = object.name;
  }
  if (newest === undefined) return undefined;
  return { ...(await getSealedJson<Snapshot>(target, newest, unsealing)), object: newest };
}

/** Find a snapshot by id, unique id prefix, or `latest` (optionally of one source). */
export async function findSnapshot(target: Target, unsealing: Unsealing, ref: string, source?: string): Promise<StoredSnapshot> {
  const all = await listSnapshots(target, unsealing, source);
  if (ref === 'latest') {
    const latest = all.at(-1);
    if (!latest) throw new KbrackupError(`${target.description} has no snapshots${source ? ` of source ${source}` : ''} yet`);
    return latest;
  }
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new KbrackupError(`"${ref}" is not a snapshot id; use an id (or unique prefix) from \`kbrackup snapshots\`, or latest`);
  const matches = all.filter((s) => s.id.startsWith(ref));
  if (matches.length === 0) throw new KbrackupError(`no snapshot ${ref} in ${target.description}; \`kbrackup snapshots\` lists them`);
  if (matches.length > 1) throw new KbrackupError(`snapshot id prefix ${ref} is ambiguous (${matches.length} snapshots); give more characters`);
  const found = matches[0] as StoredSnapshot;
  if (!found.tree) throw new IntegrityError(found.object, 'names no tree');
  return found;
}
