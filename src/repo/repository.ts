import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createDeflate } from 'node:zlib';
import type { RepoSecrets } from '../crypto/kdf.js';
import { MAX_HEADER_LENGTH, headerLength, type Sealing, type Unsealing } from '../crypto/envelope.js';
import { IntegrityError, KbrackupError, NotFoundError, describeError } from '../errors.js';
import type { ByteRange, ObjectInfo, PutSource, Target } from '../targets/target.js';
import { collectBounded } from '../util/bounded.js';
import { ContentReader, objectName, type WantedBlob, type VerifiedBlob } from './content-reader.js';
import type { RepoConfig, StoredConfig } from './format.js';
import { BlobListParser } from './index/blob-list.js';
import type { BlobLocation, IndexEntry } from './index/records.js';
import { Layout, checkId, idOfName, parseSnapshotName } from './layout.js';
import { META_LEVEL, decodeMeta, decodeMetaStream, encodeMeta, encryptCompressedMeta } from './meta-codec.js';
import { checkSnapshot, type Snapshot, type StoredSnapshot } from './snapshot.js';
import type { ContentPart, FileEntry, TreeEntry } from './tree/entry.js';
import { listParts, treeEntries } from './tree/tree-reader.js';
import type { FinishedTree } from './tree/tree-writer.js';

/** Most bytes a small metadata object (snapshot, lock, key file) may have once decrypted. */
const MAX_SMALL = 4 * 1024 * 1024;
/** Tree objects up to this size (encrypted) are read whole and checked before use; bigger ones stream. */
const READ_WHOLE = 256 * 1024;
/** ...as long as their plaintext stays below this: JSON lines of similar names compress 10-40 times. */
const WHOLE_PLAINTEXT = 4 * 1024 * 1024;
/** Snapshot objects read at once while listing. */
const LIST_PARALLEL = 8;

/** What the storage reports of an object (its name, size and when it was stored), as the layers above the repository see it. */
export type { ObjectInfo };

/** A problem that does not stop a command (a damaged snapshot skipped): reported, named. */
export type WarningHandler = (object: string, message: string) => void;

/** What opening a repository established: the keys this process holds and how it may use them. */
export interface RepositoryKeys {
  secrets: RepoSecrets;
  /** Who can open new content objects: the recipients (or, passphrase-only, the content key). */
  contentSealing: Sealing;
  /** What opens content objects: only with a private key or the passphrase; backups hold none. */
  contentUnsealing: Unsealing | undefined;
}

/**
 * An opened, verified repository: the only way the rest of kbrackup reads or writes stored objects.
 * Every metadata object it returns was authenticated under the repository key and checked to be what
 * its name says; every blob it returns was checked against its keyed id (docs/ARCHITECTURE.md "Trust").
 * Object names come from the layout, built from checked ids, never from stored data as it is.
 */
export class Repository {
  readonly config: RepoConfig;
  readonly secrets: RepoSecrets;
  readonly contentSealing: Sealing;
  private readonly content: ContentReader | undefined;

  constructor(
    private readonly target: Target,
    readonly stored: StoredConfig,
    keys: RepositoryKeys,
    private readonly warn: WarningHandler = () => undefined,
  ) {
    this.config = stored.config;
    this.secrets = keys.secrets;
    this.contentSealing = keys.contentSealing;
    this.content = keys.contentUnsealing && new ContentReader(target, keys.secrets, keys.contentUnsealing, stored.config);
  }

  /** Where the repository is, for messages (never holds secrets). */
  get description(): string {
    return this.target.description;
  }

  /** Whether this process can read file contents (a private key or the passphrase was given). */
  get canReadContent(): boolean {
    return this.content !== undefined;
  }

  // ---- objects -------------------------------------------------------------------------------

  /** Every object under a folder of the layout, with its size. */
  list(dir: string): AsyncIterable<ObjectInfo> {
    return this.target.list(dir);
  }

  /** Size of an object, or undefined when absent. */
  head(name: string): Promise<ObjectInfo | undefined> {
    return this.target.head(name);
  }

  /** Store an object as it is (content objects from temp files; their bytes are already encrypted). */
  put(name: string, source: PutSource): Promise<void> {
    return this.target.put(name, source);
  }

  /** Remove an object. Only maintenance (forget, prune, unlock, repair) deletes. */
  delete(name: string): Promise<void> {
    return this.target.delete(name);
  }

  // ---- metadata ------------------------------------------------------------------------------

  /** The plaintext of a small metadata object, authenticated under its name. */
  async readMeta(name: string, max = MAX_SMALL): Promise<Buffer> {
    const encrypted = await collectBounded(await this.target.get(name), max + 64 * 1024, name);
    return decodeMeta(this.secrets, name, encrypted, max);
  }

  /** Encrypt and store a small metadata object. */
  putMeta(name: string, plaintext: Buffer): Promise<void> {
    return this.target.put(name, { bytes: encodeMeta(this.secrets, name, plaintext) });
  }

  /** A metadata object's plaintext: whole when small (checked before use), else as a stream. */
  private async readMetaAny(name: string): Promise<Buffer | Readable> {
    const stream = await this.target.get(name);
    const parts: Buffer[] = [];
    let size = 0;
    const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    for (;;) {
      const next = await it.next();
      if (next.done) {
        const whole = Buffer.concat(parts);
        try {
          return decodeMeta(this.secrets, name, whole, WHOLE_PLAINTEXT);
        } catch (err) {
          if ((err as { cause?: { code?: string } }).cause?.code !== 'ERR_BUFFER_TOO_LARGE') throw err;
          // Compressed better than most: streamed like a big one instead.
          return decodeMetaStream(this.secrets, name, Readable.from([whole]));
        }
      }
      parts.push(next.value);
      size += next.value.length;
      if (size > READ_WHOLE) break;
    }
    const rest = Readable.from(
      (async function* () {
        yield* parts;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      })(),
      { objectMode: false },
    );
    rest.once('close', () => stream.destroy());
    return decodeMetaStream(this.secrets, name, rest);
  }

  // ---- snapshots -----------------------------------------------------------------------------

  /** Names of the snapshot objects (optionally of one source), oldest first by name. */
  async snapshotNames(source?: string): Promise<string[]> {
    const names: string[] = [];
    for await (const object of this.target.list(source ? `${Layout.snapshotsDir}/${source}` : Layout.snapshotsDir)) {
      if (parseSnapshotName(object.name)) names.push(object.name);
    }
    // Names start with the UTC time within a source; across sources the time part decides.
    return names.sort((a, b) => snapshotOrder(a).localeCompare(snapshotOrder(b)));
  }

  /** Read and check one snapshot object. */
  async readSnapshot(name: string): Promise<StoredSnapshot> {
    const bytes = await this.readMeta(name);
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      throw new IntegrityError(name, `is not valid JSON (${describeError(err)})`);
    }
    return checkSnapshot(value, name);
  }

  /** A snapshot, or undefined (with a warning naming it) when it is damaged; absent ones (just forgotten) too. */
  private async readSnapshotOrWarn(name: string): Promise<StoredSnapshot | undefined> {
    try {
      return await this.readSnapshot(name);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      if (!(err instanceof IntegrityError)) throw err;
      this.warn(name, `skipped a damaged snapshot: ${err.message}`);
      return undefined;
    }
  }

  /** The intact snapshots among `names`, a few read at once; damaged ones are reported and skipped. */
  private async intactSnapshots(names: string[]): Promise<StoredSnapshot[]> {
    const out: StoredSnapshot[] = [];
    for (let i = 0; i < names.length; i += LIST_PARALLEL) {
      const batch = await Promise.all(names.slice(i, i + LIST_PARALLEL).map((n) => this.readSnapshotOrWarn(n)));
      for (const s of batch) if (s) out.push(s);
    }
    return out;
  }

  /** Every intact snapshot (optionally of one source), oldest first; damaged ones are reported and skipped. */
  async listSnapshots(source?: string): Promise<StoredSnapshot[]> {
    const out = await this.intactSnapshots(await this.snapshotNames(source));
    return out.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  }

  /** The newest intact snapshot of one source, reading only as many as it takes. */
  async latestSnapshot(source: string): Promise<StoredSnapshot | undefined> {
    const names = await this.snapshotNames(source);
    // Names give the time to the second, then the id: of the snapshots of the newest second with an
    // intact one, the time they hold decides (as in listSnapshots), not the id, which is random.
    for (let end = names.length; end > 0; ) {
      const second = parseSnapshotName(names[end - 1]!)!.time;
      let start = end - 1;
      while (start > 0 && parseSnapshotName(names[start - 1]!)!.time === second) start--;
      const intact = await this.intactSnapshots(names.slice(start, end));
      if (intact.length > 0) return intact.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id)).at(-1);
      end = start;
    }
    return undefined;
  }

  /** Find a snapshot by id, unique id prefix, or `latest` (optionally of one source). */
  async findSnapshot(ref: string, source?: string): Promise<StoredSnapshot> {
    if (ref === 'latest') {
      const latest = source ? await this.latestSnapshot(source) : (await this.listSnapshots()).at(-1);
      if (!latest) throw new KbrackupError(`${this.description} has no snapshots${source ? ` of source ${source}` : ''} yet`);
      return latest;
    }
    if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new KbrackupError(`"${ref}" is not a snapshot id; use an id (or unique prefix) from \`kbrackup snapshots\`, or latest`);
    // The id is part of the object name: only the matching object is read.
    const matches = (await this.snapshotNames(source)).filter((n) => parseSnapshotName(n)!.id.startsWith(ref));
    if (matches.length === 0) throw new KbrackupError(`no snapshot ${ref} in ${this.description}; \`kbrackup snapshots\` lists them`);
    if (matches.length === 1) return this.readSnapshot(matches[0]!);
    // A copy under another source or time does not open there: it is skipped (named), not counted.
    const intact = await this.intactSnapshots(matches);
    if (intact.length === 0) throw new KbrackupError(`no intact snapshot ${ref} in ${this.description}: the ${matches.length} objects named so are damaged (warnings above)`);
    if (intact.length > 1) throw new KbrackupError(`snapshot id prefix ${ref} is ambiguous (${intact.length} snapshots); give more characters`);
    return intact[0]!;
  }

  /** Store a snapshot: the last write of a backup, after everything it references. */
  async writeSnapshot(snapshot: Snapshot): Promise<string> {
    const name = Layout.snapshot(snapshot.source, new Date(snapshot.time), snapshot.id);
    await this.putMeta(name, Buffer.from(JSON.stringify(snapshot)));
    return name;
  }

  // ---- trees ---------------------------------------------------------------------------------

  /** The entries of the folder tree `id`, authenticated and checked field by field. */
  async *treeEntries(id: string): AsyncGenerator<TreeEntry> {
    const name = Layout.tree(checkId(id, 'a tree reference', 'id'));
    yield* treeEntries(await this.readMetaAny(name), this.secrets.treeIdKey, id, name);
  }

  /** A file's content parts, inline or from its list object. */
  async *contentParts(entry: FileEntry): AsyncGenerator<ContentPart> {
    if ('parts' in entry.content) {
      yield* entry.content.parts;
      return;
    }
    const { list, count } = entry.content;
    const name = Layout.tree(list);
    yield* listParts(await this.readMetaAny(name), this.secrets.treeIdKey, list, name, count, entry.size);
  }

  /** Store a finished tree or list object. */
  putTree(tree: FinishedTree): Promise<void> {
    return this.target.put(tree.name, 'bytes' in tree.source ? tree.source : { file: tree.source.file, size: tree.source.size, consumable: true });
  }

  // ---- index ---------------------------------------------------------------------------------

  /** The index objects of the repository. */
  async indexObjects(): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    for await (const o of this.target.list(Layout.indexDir)) if (idOfName(Layout.indexDir, o.name)) out.push(o);
    return out;
  }

  /** The fixed records (index/records.ts) of one index object, in batches, authenticated. */
  async *indexRecords(name: string): AsyncGenerator<Buffer> {
    const parser = new BlobListParser(name);
    const plain = await this.readMetaAny(name);
    for await (const piece of Buffer.isBuffer(plain) ? [plain] : (plain as AsyncIterable<Buffer>)) {
      const records = parser.push(piece);
      if (records.length) yield records;
    }
    parser.end();
  }

  /**
   * Every index object's records, object after object. A damaged one is reported and skipped, as
   * damaged snapshots are: the records it gave before the damage were authenticated, and a blob it
   * alone listed is then missing (named) until `repair index` rebuilds the index from the trailers.
   */
  async *allIndexRecords(): AsyncGenerator<Buffer> {
    for (const o of await this.indexObjects()) {
      try {
        yield* this.indexRecords(o.name);
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        this.warn(o.name, `skipped a damaged index object: ${err.message}`);
      }
    }
  }

  /**
   * Store a new index object from blob-list bytes (index/blob-list.ts, ending with its end marker):
   * compressed to a temp file in `tempDir`, then encrypted under its new name and stored.
   */
  async writeIndex(blobList: AsyncIterable<Uint8Array>, tempDir: string): Promise<string> {
    const name = Layout.index(randomBytes(32).toString('hex'));
    const base = `${tempDir}/index-${randomBytes(8).toString('hex')}`;
    try {
      await pipeline(blobList, createDeflate({ level: META_LEVEL }), createWriteStream(`${base}.z`, { flags: 'wx' }));
      const out = createWriteStream(`${base}.obj`, { flags: 'wx' });
      await pipeline(encryptCompressedMeta(this.secrets, name, createReadStream(`${base}.z`)), out);
      await this.target.put(name, { file: `${base}.obj`, size: out.bytesWritten, consumable: true });
      return name;
    } finally {
      await rm(`${base}.z`, { force: true });
      await rm(`${base}.obj`, { force: true });
    }
  }

  // ---- content -------------------------------------------------------------------------------

  /** The content reader; only with a private key or the passphrase. */
  private contentReader(): ContentReader {
    if (!this.content) throw new KbrackupError(`reading file contents needs a recipient's private key (--key) or the passphrase; backup credentials cannot decrypt them`);
    return this.content;
  }

  /**
   * The wanted blobs of one content object, each checked against its keyed id before it is returned,
   * in the order given (sorted by bundle and offset); bundles are fetched with one ranged read per run.
   */
  readBlobs(wanted: WantedBlob[]): AsyncGenerator<VerifiedBlob> {
    return this.contentReader().readBlobs(wanted);
  }

  /** A large chunk as a stream of pieces, checked against its id when it ends (content-reader.ts). */
  openBlob(blob: WantedBlob): Promise<AsyncGenerator<Buffer>> {
    return this.contentReader().openBlob(blob);
  }

  /**
   * A byte range of a content object exactly as stored, for repacking: prune copies bundles and their
   * key packets into new packs without opening them (it holds no key that could).
   */
  readRaw(loc: Pick<BlobLocation, 'kind' | 'objectId'>, range: ByteRange): Promise<Readable> {
    return this.target.get(objectName(loc), range);
  }

  /** The key packets of the section at `keyOffset` (its first bundle at `firstBundle` or later), as stored. */
  async keyPackets(loc: Pick<BlobLocation, 'kind' | 'objectId'>, keyOffset: number, firstBundle: number): Promise<Buffer> {
    const object = objectName(loc);
    const length = Math.min(firstBundle - keyOffset, MAX_HEADER_LENGTH);
    const start = await collectBounded(await this.target.get(object, { offset: keyOffset, length }), length, object);
    return start.subarray(0, headerLength(start, object));
  }

  /** The blobs a content object's trailer lists (needs only the repository key). */
  trailer(kind: 'chunk' | 'pack', objectId: string, size?: number): Promise<IndexEntry[]> {
    return ContentReader.trailer(this.target, this.secrets, kind, objectId, size);
  }

  /** Release the storage's connections. */
  close(): Promise<void> {
    return this.target.close();
  }
}

/** Sort key of a snapshot name: its time, then the rest. */
function snapshotOrder(name: string): string {
  const p = parseSnapshotName(name)!;
  return `${p.time}/${p.source}/${p.id}`;
}
