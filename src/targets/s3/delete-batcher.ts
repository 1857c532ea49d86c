/** S3 deletes at most this many keys per DeleteObjects request. */
export const MAX_DELETE_BATCH = 1000;

interface Pending {
  key: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Coalesces deletes issued in the same turn of the event loop (e.g. `gc` deleting a list of objects
 * with Promise.all) into batches of up to 1,000 keys, so removing many objects costs few requests.
 * `send` returns the per-key failures of a batch; a rejection fails every key of it.
 */
export class DeleteBatcher {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly send: (keys: string[]) => Promise<Map<string, unknown>>) {}

  /** Resolves once `key` is gone (or was absent). */
  delete(key: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ key, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_DELETE_BATCH);
      this.send(batch.map((p) => p.key)).then(
        (failures) => {
          for (const p of batch) {
            if (failures.has(p.key)) p.reject(failures.get(p.key));
            else p.resolve();
          }
        },
        (err: unknown) => {
          for (const p of batch) p.reject(err);
        },
      );
    }
  }
}
