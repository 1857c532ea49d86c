/** The one place that knows object names in a repository (DESIGN.md "Repository layout"). */
export const Layout = {
  config: 'kbrackup.json',
  repoKey: 'keys/repo-key',
  passphraseKey: 'keys/passphrase',
  keyCheck: 'keys/check',
  chunksDir: 'chunks',
  packsDir: 'packs',
  indexDir: 'index',
  treesDir: 'trees',
  snapshotsDir: 'snapshots',
  locksDir: 'locks',
  chunk: (id: string) => `chunks/${id.slice(0, 2)}/${id}`,
  pack: (id: string) => `packs/${id.slice(0, 2)}/${id}`,
  index: (id: string) => `index/${id}`,
  tree: (id: string) => `trees/${id.slice(0, 2)}/${id}`,
  snapshot: (source: string, time: Date, id: string) => `snapshots/${source}/${compactTime(time)}-${id}`,
  lock: (id: string) => `locks/${id}`,
};

/** `20261125T130501Z`: sorts by time and is safe in every backend's object names. */
function compactTime(time: Date): string {
  return time.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Source names become one path segment: letters, digits, dot, dash, underscore. */
export function sanitizeSource(name: string): string {
  const clean = name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '');
  return clean === '' ? 'root' : clean.slice(0, 100);
}

/** Parse a snapshot object name back into source and id; undefined for foreign objects. */
export function parseSnapshotName(name: string): { source: string; id: string } | undefined {
  const m = /^snapshots\/([^/]+)\/\d{8}T\d{6}Z-([0-9a-f]{64})$/.exec(name);
  return m ? { source: m[1] as string, id: m[2] as string } : undefined;
}
