import { IntegrityError } from '../errors.js';

/** A 32-byte id as 64 lower-case hex digits: chunk, pack, tree, index, snapshot and lock ids. */
const ID = /^[0-9a-f]{64}$/;

/** Whether `value` is an id as the layout writes them. */
export function isId(value: unknown): value is string {
  return typeof value === 'string' && ID.test(value);
}

/** `value` as an id, or an IntegrityError naming the object and field it came from. */
export function checkId(value: unknown, object: string, field: string): string {
  if (!isId(value)) throw new IntegrityError(object, `${field} is not an id (64 hex digits): ${JSON.stringify(value)?.slice(0, 80)}`);
  return value;
}

/**
 * The one place that knows object names in a repository (docs/ARCHITECTURE.md "Repository format").
 * Names are built only from ids checked by `checkId`, never taken from metadata as they are, so no
 * stored object can make a reader touch a name outside the layout.
 */
export const Layout = {
  config: 'kbrackup.json',
  repoKey: 'keys/repo-key',
  passphraseKey: 'keys/passphrase',
  signaturesDir: 'keys/signatures',
  chunksDir: 'chunks',
  packsDir: 'packs',
  indexDir: 'index',
  treesDir: 'trees',
  snapshotsDir: 'snapshots',
  locksDir: 'locks',
  signature: (fingerprint: string) => `keys/signatures/${fingerprint}`,
  chunk: (id: string) => `chunks/${id.slice(0, 2)}/${id}`,
  pack: (id: string) => `packs/${id.slice(0, 2)}/${id}`,
  tree: (id: string) => `trees/${id.slice(0, 2)}/${id}`,
  index: (id: string) => `index/${id}`,
  snapshot: (source: string, time: Date, id: string) => `snapshots/${source}/${compactTime(time)}-${id}`,
  lock: (id: string) => `locks/${id}`,
};

/** `20261125T130501Z`: sorts by time and is safe in every backend's object names. */
export function compactTime(time: Date): string {
  return time.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Source names are one path segment: letters, digits, dot, dash, underscore. */
const SOURCE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;

/** Source names become one path segment: letters, digits, dot, dash, underscore. */
export function sanitizeSource(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '');
  return clean === '' ? 'root' : clean.slice(0, 100);
}

/** Whether `name` is a valid source name. */
export function isSource(name: string): boolean {
  return SOURCE.test(name);
}

/** What a snapshot object's name says: source, compact time and id; undefined for foreign objects. */
export function parseSnapshotName(name: string): { source: string; time: string; id: string } | undefined {
  const m = /^snapshots\/([A-Za-z0-9_][A-Za-z0-9._-]{0,99})\/(\d{8}T\d{6}Z)-([0-9a-f]{64})$/.exec(name);
  return m ? { source: m[1]!, time: m[2]!, id: m[3]! } : undefined;
}

/** The id at the end of a chunk, pack, tree, index or lock object name; undefined for foreign objects. */
export function idOfName(dir: string, name: string): string | undefined {
  const fanOut = dir === Layout.chunksDir || dir === Layout.packsDir || dir === Layout.treesDir;
  const m = (fanOut ? /^([a-z]+)\/([0-9a-f]{2})\/([0-9a-f]{64})$/ : /^([a-z]+)\/()([0-9a-f]{64})$/).exec(name);
  if (!m || m[1] !== dir || (fanOut && m[2] !== m[3]!.slice(0, 2))) return undefined;
  return m[3];
}
