// A large repository made fast, with the project's own modules: real packs and chunk objects (real
// bundles, keyed ids, trailers), real trees, index objects and snapshots, written without fsync. Used by
// bench/lifecycle-scale.ts. Layout per generation k (one "backup" each):
//   - a pack of `perGeneration - CHUNKS` small files in 4 bundles, and CHUNKS chunk objects of 4 KiB;
//   - tree T_k listing all its files, and T'_k listing the files of bundles 0-1 and half the chunks;
//   - one index object for the generation's objects;
//   - snapshot k, 6 hours after k-1, whose root lists the last `window` generations (30 unless told): the
//     newest third in full (T), older ones trimmed (T'), so old packs end up partly used once snapshots
//     are forgotten.
import { createHmac } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { compress } from '../src/compress/codec.js';
import { sealSessionKey } from '../src/crypto/envelope.js';
import { newSessionKey, sealPacket, type SessionKey } from '../src/crypto/seipd.js';
import { encodeTrailer } from '../src/repo/content-codec.js';
import { encodeBlobListEnd, encodeObjectBlobs, type ObjectBlobs } from '../src/repo/index/blob-list.js';
import { Layout } from '../src/repo/layout.js';
import type { Repository } from '../src/repo/repository.js';
import type { FileEntry } from '../src/repo/tree/entry.js';
import { fromText } from '../src/repo/tree/names.js';
import { TreeWriter } from '../src/repo/tree/tree-writer.js';
import { FilesystemTarget } from '../src/targets/filesystem/filesystem.js';
import type { PutSource } from '../src/targets/target.js';

const CHUNKS = 10;
const BUNDLES = 4;

/**
 * The filesystem target without fsync: the bench writes tens of thousands of objects it can make again,
 * and a crash of the generator only means generating again.
 */
export class UnsyncedTarget extends FilesystemTarget {
  constructor(private readonly dir: string) {
    super(dir);
  }

  override async put(name: string, source: PutSource): Promise<void> {
    if (!('bytes' in source)) return super.put(name, source);
    const path = join(this.dir, ...name.split('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, source.bytes);
  }
}

/** Key packets and the session key they wrap, shared by every object (as backups share one per 1,024 objects). */
interface Keyed {
  sessionKey: SessionKey;
  header: Buffer;
}

/** What a generation wrote: its two trees. */
interface Generation {
  full: string;
  trimmed: string;
}

/** Store one content object: key packets, bundles of `blobs`, trailer; returns its blob-list entry. */
async function contentObject(repo: Repository, keyed: Keyed, kind: 'chunk' | 'pack', objectId: string, bundles: Buffer[][]): Promise<{ entry: ObjectBlobs; ids: Buffer[][] }> {
  const parts: Buffer[] = [keyed.header];
  let offset = keyed.header.length;
  const entry: ObjectBlobs = { kind, objectId, sections: [{ keyOffset: 0, bundles: [] }] };
  const ids: Buffer[][] = [];
  for (const blobs of bundles) {
    const { codec, bytes } = await compress(Buffer.concat(blobs));
    const sealed = Buffer.concat(sealPacket([bytes], { sessionKey: keyed.sessionKey, filename: codec }));
    let at = 0;
    const bundleIds = blobs.map((b) => createHmac('sha256', repo.secrets.chunkIdKey).update(b).digest());
    entry.sections[0]!.bundles.push({ offset, length: sealed.length, blobs: blobs.map((b, i) => ({ id: bundleIds[i]!, offset: (at += b.length) - b.length, length: b.length })) });
    ids.push(bundleIds);
    parts.push(sealed);
    offset += sealed.length;
  }
  const name = kind === 'chunk' ? Layout.chunk(objectId) : Layout.pack(objectId);
  const count = bundles.reduce((n, b) => n + b.length, 0);
  parts.push(encodeTrailer(repo.secrets, name, encodeObjectBlobs(entry), count));
  await repo.put(name, { bytes: Buffer.concat(parts) });
  return { entry, ids };
}

/** A file entry with one part. */
function fileEntry(name: string, id: Buffer, size: number, k: number): FileEntry {
  const mtime = `${(1_700_000_000 + k) * 1e9}`;
  return { type: 'file', name: fromText(name), mode: 0o644, uid: 1000, gid: 1000, mtime, ctime: mtime, ino: String(k * 100_000 + 1), size, content: { parts: [{ id: id.toString('hex'), length: size }] } };
}

/** Store a tree of `entries` (in name order); returns its id. */
async function putTree(repo: Repository, tempDir: string, entries: Iterable<Parameters<TreeWriter['add']>[0]>): Promise<string> {
  const writer = new TreeWriter(repo.secrets, tempDir);
  for (const e of entries) await writer.add(e);
  const tree = await writer.finish();
  await repo.putTree(tree);
  return tree.id;
}

/** Deterministic object ids: generation and number, hashed. */
function objectIdOf(k: number, what: string): string {
  return createHmac('sha256', 'synthetic').update(`${k}/${what}`).digest('hex');
}

/**
 * Fill `repo` with `generations` snapshots of `perGeneration` new blobs each; returns the number of
 * blobs written. `tempDir` holds big trees while they are written.
 */
export async function generate(repo: Repository, generations: number, perGeneration: number, tempDir: string, progress: (k: number) => void = () => undefined, window = 30): Promise<number> {
  const recent = Math.max(1, Math.floor(window / 3));
  const keyed: Keyed = { sessionKey: newSessionKey(), header: Buffer.alloc(0) };
  keyed.header = await sealSessionKey(keyed.sessionKey, repo.contentSealing);
  const small = perGeneration - CHUNKS;
  const perBundle = Math.ceil(small / BUNDLES);
  const gens: Generation[] = [];
  const start = Date.parse('2025-01-01T00:00:00Z');
  let blobs = 0;
  for (let k = 0; k < generations; k++) {
    const files: Buffer[] = Array.from({ length: small }, (_, j) => Buffer.from(`generation ${k} file ${j} `.padEnd(96 + (j % 64), '.')));
    const bundles = Array.from({ length: BUNDLES }, (_, b) => files.slice(b * perBundle, (b + 1) * perBundle)).filter((b) => b.length > 0);
    const pack = await contentObject(repo, keyed, 'pack', objectIdOf(k, 'pack'), bundles);
    const chunkIds: Buffer[] = [];
    const entries: ObjectBlobs[] = [pack.entry];
    for (let c = 0; c < CHUNKS; c++) {
      const data = Buffer.alloc(4096, `generation ${k} chunk ${c} `);
      const chunk = await contentObject(repo, keyed, 'chunk', objectIdOf(k, `chunk${c}`), [[data]]);
      chunkIds.push(chunk.ids[0]![0]!);
      entries.push(chunk.entry);
    }
    const index = Buffer.concat([...entries.map(encodeObjectBlobs), encodeBlobListEnd(perGeneration)]);
    await repo.writeIndex((async function* () {
      yield index;
    })(), tempDir);
    const smallEntries = pack.ids.flatMap((ids, b) => ids.map((id, i) => ({ j: b * perBundle + i, id, bundle: b })));
    const full = [
      ...smallEntries.map(({ j, id }) => fileEntry(`f${String(j).padStart(6, '0')}`, id, files[j]!.length, k)),
      ...chunkIds.map((id, c) => fileEntry(`z${String(c).padStart(6, '0')}`, id, 4096, k)),
    ];
    const trimmed = [
      ...smallEntries.filter((e) => e.bundle < 2).map(({ j, id }) => fileEntry(`f${String(j).padStart(6, '0')}`, id, files[j]!.length, k)),
      ...chunkIds.slice(0, CHUNKS / 2).map((id, c) => fileEntry(`z${String(c).padStart(6, '0')}`, id, 4096, k)),
    ];
    gens.push({ full: await putTree(repo, tempDir, full), trimmed: await putTree(repo, tempDir, trimmed) });
    const mtime = `${(1_700_000_000 + k) * 1e9}`;
    const root = [];
    for (let g = Math.max(0, k - window + 1); g <= k; g++) {
      root.push({ type: 'dir' as const, name: fromText(`g${String(g).padStart(6, '0')}`), mode: 0o755, uid: 1000, gid: 1000, mtime, tree: g > k - recent ? gens[g]!.full : gens[g]!.trimmed });
    }
    const tree = await putTree(repo, tempDir, root);
    const time = new Date(start + k * 6 * 3_600_000).toISOString();
    const summary = { backup_start: time, backup_end: time, files_new: perGeneration, files_changed: 0, files_unmodified: 0, dirs_new: 1, dirs_changed: 0, dirs_unmodified: 0, data_added: 0, data_added_packed: 0, total_files_processed: perGeneration, total_bytes_processed: 0, bytes_read: 0, error_count: 0 };
    await repo.writeSnapshot({ id: objectIdOf(k, 'snapshot'), time, source: 'synthetic', paths: ['/data'], hostname: 'bench', username: 'bench', tags: [], program_version: 'synthetic', tree, summary });
    blobs += perGeneration;
    progress(k);
  }
  return blobs;
}
