import { IntegrityError, NotFoundError } from '../errors.js';
import type { Repository } from '../repo/repository.js';
import type { StoredSnapshot } from '../repo/snapshot.js';

/** Snapshot objects read at once. */
const PARALLEL = 8;

/** Every snapshot object, read and checked; damaged ones are returned apart, named, instead of being skipped. */
export async function loadSnapshots(repo: Repository): Promise<{ snapshots: StoredSnapshot[]; damaged: { object: string; error: IntegrityError }[] }> {
  const names = await repo.snapshotNames();
  const snapshots: StoredSnapshot[] = [];
  const damaged: { object: string; error: IntegrityError }[] = [];
  for (let i = 0; i < names.length; i += PARALLEL) {
    await Promise.all(
      names.slice(i, i + PARALLEL).map(async (object) => {
        try {
          snapshots.push(await repo.readSnapshot(object));
        } catch (err) {
          if (err instanceof NotFoundError) return;
          if (!(err instanceof IntegrityError)) throw err;
          damaged.push({ object, error: err });
        }
      }),
    );
  }
  snapshots.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  return { snapshots, damaged };
}
