import type { StoredSnapshot } from '../repo/snapshot.js';
import { displayName, fromText } from '../repo/tree/names.js';

/** Text from a snapshot as the terminal may show it: control characters escaped, as ls shows names (whoever holds backup credentials can write snapshots). */
function shown(text: string): string {
  return displayName(fromText(text));
}

/** A snapshot as restic's `snapshots --json` prints it (plus our `source`). */
export function snapshotJson(s: StoredSnapshot): Record<string, unknown> {
  return {
    id: s.id,
    short_id: s.id.slice(0, 8),
    time: s.time,
    source: s.source,
    paths: s.paths,
    hostname: s.hostname,
    username: s.username,
    tags: s.tags,
    ...(s.parent ? { parent: s.parent } : {}),
    program_version: s.program_version,
    summary: s.summary,
  };
}

/** The header of the snapshot table; `extra` names a last column (e.g. forget's reasons). */
export function snapshotHeader(extra = 'Paths'): string {
  return `${'ID'.padEnd(10)}${'Time'.padEnd(22)}${'Host'.padEnd(20)}${'Source'.padEnd(20)}${'Files'.padStart(9)}  ${extra}`;
}

/** One row of the snapshot table; `extra` fills the last column (the paths by default). */
export function snapshotRow(s: StoredSnapshot, extra = s.paths.map(shown).join(', ')): string {
  return `${s.id.slice(0, 8).padEnd(10)}${s.time.slice(0, 19).replace('T', ' ').padEnd(22)}${shown(s.hostname).slice(0, 19).padEnd(20)}${s.source.slice(0, 19).padEnd(20)}${String(s.summary.total_files_processed).padStart(9)}  ${extra}`;
}
