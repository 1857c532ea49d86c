import type { Readable } from 'node:stream';

/** What a stored object is called (relative to the repository root, `/`-separated), its size and when it was stored. */
export interface ObjectInfo {
  name: string;
  size: number;
  /** When the object was stored (ms since the epoch, the storage's clock): prune's grace period counts from it. */
  modified?: number;
}

/** A byte range of an object; `length` bytes starting at `offset`. */
export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * Where the bytes of a put come from. Large objects always come from a local (temp) file so a retry
 * can simply re-open it; `bytes` is only for small objects whose size is bounded by a constant
 * (repository config, keys, locks). `consumable` says the caller deletes the file afterwards, so a
 * backend on the same filesystem may move it instead of copying.
 */
export type PutSource = { file: string; size?: number; consumable?: boolean } | { bytes: Uint8Array };

/**
 * The storage interface every backend implements. It knows nothing of encryption or of the
 * repository layout: names are opaque `/`-separated strings relative to the repository root.
 * Writes are atomic (an object is either absent or complete) and objects are immutable.
 */
export interface Target {
  /** Human-readable location used in messages, e.g. `file:///backups/repo` (never contains secrets). */
  readonly description: string;
  /** Store an object atomically; an existing object of the same name is replaced. */
  put(name: string, source: PutSource): Promise<void>;
  /** Stream an object, or a byte range of it. Rejects with NotFoundError when absent. */
  get(name: string, range?: ByteRange): Promise<Readable>;
  /** Size of an object, or undefined when absent. */
  head(name: string): Promise<ObjectInfo | undefined>;
  /** Every object whose name starts with `dir/` (recursively), in no particular order. */
  list(dir: string): AsyncIterable<ObjectInfo>;
  /** Remove an object; removing an absent object is not an error. */
  delete(name: string): Promise<void>;
  /** Make sure the repository root exists (called by `init`); explains why when it cannot. */
  prepare(): Promise<void>;
  /** Release connections. */
  close(): Promise<void>;
}
