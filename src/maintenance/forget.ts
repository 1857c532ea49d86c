import { KbrackupError, describeError } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import type { StoredSnapshot } from '../repo/snapshot.js';
import { applyPolicy, groupSnapshots, matchesFilter, type GroupField, type GroupKey, type KeepPolicy, type KeepReason, type SnapshotFilter } from './policy.js';

/** One group's decision: what stays, what goes, and why each kept snapshot stays. */
export interface ForgetGroup {
  key: GroupKey;
  keep: StoredSnapshot[];
  remove: StoredSnapshot[];
  reasons: KeepReason<StoredSnapshot>[];
}

/** A policy that would remove every snapshot of a group: restic refuses it, and so do we. */
export class ForgetRefusedError extends KbrackupError {}

/** Apply a policy to the filtered snapshots, group by group; a group left without any snapshot is refused. */
export function planForget(snapshots: readonly StoredSnapshot[], policy: KeepPolicy, groupBy: readonly GroupField[], filter: SnapshotFilter, now = Date.now()): ForgetGroup[] {
  const groups = groupSnapshots(
    snapshots.filter((s) => matchesFilter(s, filter)),
    groupBy,
  );
  return groups.map(({ key, snapshots: list }) => {
    const result = applyPolicy(list, policy, now);
    if (result.keep.length === 0) {
      throw new ForgetRefusedError(`refusing to remove every snapshot of group ${JSON.stringify(key)} (${list.length} snapshots): no rule keeps any of them; nothing was removed`);
    }
    return { key, ...result };
  });
}

/** What removing snapshots did: the objects removed, and those that could not be (named, with why). */
export interface RemoveResult {
  removed: string[];
  failed: { object: string; error: string }[];
}

/** Delete snapshot objects (forget); only maintenance deletes. The data they used stays until prune. */
export async function removeSnapshots(repo: Repository, snapshots: readonly Pick<StoredSnapshot, 'object'>[]): Promise<RemoveResult> {
  const result: RemoveResult = { removed: [], failed: [] };
  for (const s of snapshots) {
    try {
      await repo.delete(s.object);
      result.removed.push(s.object);
    } catch (err) {
      result.failed.push({ object: s.object, error: describeError(err) });
    }
  }
  return result;
}
