import { IntegrityError } from '../errors.js';
import { compactTime, isId, isSource, parseSnapshotName } from './layout.js';

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

const SUMMARY_FIELDS: (keyof SnapshotSummary)[] = [
  'files_new',
  'files_changed',
  'files_unmodified',
  'dirs_new',
  'dirs_changed',
  'dirs_unmodified',
  'data_added',
  'data_added_packed',
  'total_files_processed',
  'total_bytes_processed',
  'bytes_read',
  'error_count',
];

/**
 * A snapshot object: who, when, what, and the id of the root folder's tree. Field names follow
 * restic's JSON. Its id, source and time are also in its object name, and must agree with it.
 */
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

function strings(x: unknown): boolean {
  return Array.isArray(x) && x.every((s) => typeof s === 'string');
}

/**
 * Check a decoded snapshot object field by field, and that it says what its name says: a snapshot
 * copied under another source, time or id is refused, named.
 */
export function checkSnapshot(value: unknown, object: string): StoredSnapshot {
  const fail = (field: string, what: string) => new IntegrityError(object, `field "${field}" ${what}`);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new IntegrityError(object, 'is not a snapshot');
  const s = value as Record<string, unknown>;
  if (!isId(s.id)) throw fail('id', 'is not an id');
  if (typeof s.time !== 'string' || Number.isNaN(Date.parse(s.time))) throw fail('time', 'is not a time');
  if (typeof s.source !== 'string' || !isSource(s.source)) throw fail('source', 'is not a source name');
  if (!strings(s.paths)) throw fail('paths', 'is not a list of strings');
  if (typeof s.hostname !== 'string') throw fail('hostname', 'is not a string');
  if (typeof s.username !== 'string') throw fail('username', 'is not a string');
  if (!strings(s.tags)) throw fail('tags', 'is not a list of strings');
  if (s.parent !== undefined && !isId(s.parent)) throw fail('parent', 'is not an id');
  if (typeof s.program_version !== 'string') throw fail('program_version', 'is not a string');
  if (!isId(s.tree)) throw fail('tree', 'is not a tree id');
  const summary = s.summary as Record<string, unknown> | undefined;
  if (summary === null || typeof summary !== 'object') throw fail('summary', 'is missing');
  for (const f of SUMMARY_FIELDS) if (!Number.isSafeInteger(summary[f])) throw fail(`summary.${f}`, 'is not an integer');
  const named = parseSnapshotName(object);
  if (!named || named.id !== s.id || named.source !== s.source || named.time !== compactTime(new Date(s.time))) {
    throw new IntegrityError(object, `is stored under a name that does not match what it holds (snapshot ${String(s.id).slice(0, 8)} of source ${String(s.source)} at ${String(s.time)})`);
  }
  return { ...(s as unknown as Snapshot), object };
}
