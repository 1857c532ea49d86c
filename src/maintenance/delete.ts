import { describeError } from '../errors.js';
import type { Repository } from '../repo/repository.js';

/** Deletes issued at once: S3 joins them into one request (targets/s3/delete-batcher.ts). */
const BATCH = 256;
/** Failures named one by one in the log; the rest are counted. */
const NAMED_FAILURES = 10;

/**
 * Delete objects, a batch at a time; only maintenance deletes (docs/ARCHITECTURE.md "Layers"). A failed
 * delete leaves garbage, never a hole, so it is logged and counted rather than stopping the rest.
 * Returns the number of objects that could not be deleted.
 */
export async function deleteAll(repo: Repository, names: AsyncIterable<string> | Iterable<string>, signal: AbortSignal | undefined, log: (message: string) => void): Promise<number> {
  let failed = 0;
  let batch: string[] = [];
  const flush = async () => {
    signal?.throwIfAborted();
    const results = await Promise.allSettled(batch.map((name) => repo.delete(name)));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      failed++;
      if (failed <= NAMED_FAILURES) log(`could not delete ${batch[i]}: ${describeError(r.reason)}`);
    });
    batch = [];
  };
  for await (const name of names) {
    batch.push(name);
    if (batch.length >= BATCH) await flush();
  }
  if (batch.length > 0) await flush();
  if (failed > NAMED_FAILURES) log(`… and ${failed - NAMED_FAILURES} more objects could not be deleted`);
  return failed;
}
