import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, IntegrityError } from '../src/errors.js';
import { readCredentials, writeCredentials, type Credentials } from '../src/repo/credentials.js';
import { Layout, checkId, compactTime, idOfName, isId, isSource, parseSnapshotName, sanitizeSource } from '../src/repo/layout.js';
import { decodeMeta } from '../src/repo/meta-codec.js';
import { checkSnapshot } from '../src/repo/snapshot.js';
import { MAX_INLINE_PARTS, decodeEntry, encodeEntry, type FileEntry, type TreeEntry } from '../src/repo/tree/entry.js';
import { listParts, treeEntries } from '../src/repo/tree/tree-reader.js';
import { collect, failsWith } from './helpers/expect.js';
import { forgeSnapshot } from './helpers/forge.js';

/**
 * Every stored field is checked before use, and object names come only from checked ids (docs/SECURITY.md
 * "The trust chain" 3 and 4), checked on the modules that keep it: credentials.ts, tree/tree-reader.ts,
 * tree/entry.ts, snapshot.ts and layout.ts, in this process and without any repository, so StrykerJS
 * runs them against every mutant in seconds (scripts/mutation.sh). The CLI shows the same in
 * hostile-forged.test.ts.
 */

describe('credentials files (credentials.ts)', () => {
  let dir: string;
  const good: Credentials = { kind: 'kbrackup-backup-credentials', version: 2, repository: 'r', repoKey: Buffer.alloc(32, 1).toString('base64'), recipients: [], config: 'c' };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kbrackup-cred-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('are written for their owner only, never over another file, and read back as written', async () => {
    const path = join(dir, 'backup.cred');
    await writeCredentials(path, good);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(await readCredentials(path), good);
    await assert.rejects(writeCredentials(path, good), failsWith(ConfigError, /already exists; refusing to overwrite it/));
    await assert.rejects(writeCredentials(join(dir, 'no', 'such'), good), failsWith(ConfigError, /cannot write --credentials-out/));
  });

  it('anything else is refused with what to pass instead', async () => {
    const cases: [string | Record<string, unknown>, RegExp][] = [
      ['{', /is not JSON/],
      [{ ...good, kind: 'other' }, /is not a kbrackup credentials file/],
      [{ ...good, version: 1 }, /is for repository format 1/],
      [{ ...good, repoKey: 1 }, /is missing fields/],
      [{ ...good, recipients: 'x' }, /is missing fields/],
      [{ ...good, config: undefined }, /is missing fields/],
      [{ ...good, repository: undefined }, /is missing fields/],
      [{ ...good, repoKey: Buffer.alloc(31).toString('base64') }, /holds a damaged repository key/],
    ];
    for (const [i, [content, reason]] of cases.entries()) {
      const path = join(dir, `bad-${i}`);
      await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content));
      await assert.rejects(readCredentials(path), failsWith(ConfigError, reason), path);
    }
    await assert.rejects(readCredentials(join(dir, 'absent')), failsWith(ConfigError, /cannot read --credentials/));
  });
});

describe('trees are read only when they hash to their name and list sorted, well-formed entries (tree-reader)', () => {
  const key = Buffer.alloc(32, 9);
  const lines = (...entries: TreeEntry[]) => Buffer.from(entries.map((e) => `${encodeEntry(e)}\n`).join(''));
  const idOf = (plain: Buffer) => createHmac('sha256', key).update(plain).digest('hex');
  const dir = (name: string): TreeEntry => ({ type: 'dir', name, mode: 0o755, uid: 0, gid: 0, mtime: '0', tree: 'c'.repeat(64) });
  const both = (plain: Buffer) => [plain, () => Readable.from([plain.subarray(0, 5), plain.subarray(5)])] as const;

  it('yields the entries of a genuine tree, held whole or streamed', async () => {
    const plain = lines(dir('a'), dir('b'));
    for (const form of both(plain)) {
      const got = await collect(treeEntries(typeof form === 'function' ? form() : form, key, idOf(plain), 'T'));
      assert.deepEqual(got.map((e) => e.name), ['a', 'b']);
    }
  });

  it('refuses a tree that does not hash to its name: before any entry when whole, at its end when streamed', async () => {
    const plain = lines(dir('a'));
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const e of treeEntries(plain, key, 'd'.repeat(64), 'T')) seen.push(e.name);
    }, failsWith(IntegrityError, /^T: does not hash to its name/));
    assert.deepEqual(seen, []);
    await assert.rejects(collect(treeEntries(Readable.from([plain]), key, 'd'.repeat(64), 'T')), failsWith(IntegrityError, /does not hash to its name/));
  });

  it('refuses a tree cut inside a line, with unsorted or duplicate names', async () => {
    const cut = Buffer.from(encodeEntry(dir('a')));
    await assert.rejects(collect(treeEntries(cut, key, idOf(cut), 'T')), failsWith(IntegrityError, /ends inside a line/));
    for (const plain of [lines(dir('b'), dir('a')), lines(dir('a'), dir('a'))]) {
      await assert.rejects(collect(treeEntries(plain, key, idOf(plain), 'T')), failsWith(IntegrityError, /^T: line 2: entries are not in name order/));
    }
  });

  it('a content list holds exactly the parts announced, adding up to the size, and no part past the size is handed out', async () => {
    const part = (n: number) => `["${'e'.repeat(64)}",${n}]`;
    const list = (...parts: string[]) => Buffer.from(parts.map((p) => `${p}\n`).join(''));
    const read = (plain: Buffer, count: number, size: number) => collect(listParts(plain, key, idOf(plain), 'L', count, size));
    const three = list(part(10), '[5]', part(10));
    assert.deepEqual(await read(three, 3, 25), [{ id: 'e'.repeat(64), length: 10 }, { hole: 5 }, { id: 'e'.repeat(64), length: 10 }]);
    await assert.rejects(read(three, 2, 25), failsWith(IntegrityError, /^L: holds more than the 2 parts/));
    await assert.rejects(read(three, 4, 25), failsWith(IntegrityError, /^L: holds 3 parts, but its file entry announces 4/));
    await assert.rejects(read(three, 3, 26), failsWith(IntegrityError, /^L: its parts add up to 25 bytes, but the file's size is 26/));
    const handed: unknown[] = [];
    await assert.rejects(async () => {
      for await (const p of listParts(three, key, idOf(three), 'L', 3, 12)) handed.push(p);
    }, failsWith(IntegrityError, /^L: line 2: its parts add up to more than the file's size of 12 bytes/));
    assert.equal(handed.length, 1, 'the part past the size is refused before it is handed out');
    const notJson = list(part(10), '[5');
    await assert.rejects(read(notJson, 2, 15), failsWith(IntegrityError, /^L: line 2 is not JSON/));
    await assert.rejects(read(list('["../x",5]'), 1, 5), failsWith(IntegrityError, /^L: line 1: malformed content part/));
  });
});

describe('every field of a tree entry is checked before use (entry.ts decodeEntry)', () => {
  const id = 'a'.repeat(64);
  const base = { name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1700000000000000000' };
  const file = { ...base, size: 3, ctime: '1', ino: '7', content: [[id, 3]] };
  const decode = (v: unknown) => decodeEntry(typeof v === 'string' ? v : JSON.stringify(v), 'trees/aa/x', 4);
  const without = (o: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));

  it('every type round-trips through its JSON line, names of any bytes too', () => {
    const entries: TreeEntry[] = [
      { type: 'dir', name: 'd', mode: 0o7777, uid: 2 ** 32 - 1, gid: 0, mtime: '-1', tree: id },
      { type: 'symlink', name: 'l\u00e9', mode: 0o777, uid: 0, gid: 1, mtime: '0', linkTarget: '\xff/x' },
      { type: 'file', name: '\xfe\xff', mode: 0, uid: 0, gid: 0, mtime: '8640000000000000000000', size: 10, ctime: '-8640000000000000000000', ino: '0', links: 2, dev: '99', sha256: 'b'.repeat(64), content: { parts: [{ id, length: 4 }, { hole: 6 }] }, xattrs: [[Buffer.from('user.a'), Buffer.from([0, 1])], [Buffer.from('user.b'), Buffer.alloc(0)]] },
      { type: 'file', name: 'n'.repeat(255), mode: 0o644, uid: 0, gid: 0, mtime: '1', size: 2 ** 40, ctime: '1', ino: '9'.repeat(25), content: { list: id, count: 1_000_000 } },
      { type: 'file', name: 'e', mode: 0o644, uid: 0, gid: 0, mtime: '1', size: 0, ctime: '1', ino: '1', content: { parts: [] } },
    ];
    for (const e of entries) assert.deepEqual(decode(encodeEntry(e)), e, e.name);
    // Names that are text are stored as text (readable, and shorter); others as base64 bytes.
    assert.match(encodeEntry(entries[0]!), /"name":"d"/);
    assert.match(encodeEntry(entries[2]!), /"rawname":"/);
  });

  it('every malformed field is an IntegrityError naming the object, the line or entry, and the field', () => {
    const cases: [unknown, RegExp][] = [
      ['{"name"', /line 4 is not JSON/],
      ['null', /line 4 is not an entry/],
      ['["f"]', /line 4 is not an entry/],
      ['7', /line 4 is not an entry/],
      ...['', '.', '..', 'a/b', '/', 'a\u0000', 'n'.repeat(256)].map((name): [unknown, RegExp] => [{ ...file, name }, /line 4: field "name"/]),
      [{ ...without(file, 'name'), rawname: '../x' }, /field "name" is missing or not a string/],
      [{ ...without(file, 'name'), rawname: Buffer.from('../x').toString('base64') }, /field "name" is not a file name/],
      [without(file, 'name'), /field "name" is missing/],
      [{ ...file, mode: 0o10000 }, /entry "f": field "mode" is not an integer in \[0, 4095\]/],
      [{ ...file, mode: -1 }, /field "mode"/],
      [{ ...file, mode: 1.5 }, /field "mode"/],
      [{ ...file, mode: '420' }, /field "mode"/],
      [{ ...file, uid: 2 ** 32 }, /field "uid"/],
      [{ ...file, gid: 2 ** 32 }, /field "gid"/],
      [{ ...file, mtime: 1 }, /field "mtime" is not a time/],
      [{ ...file, mtime: '01' }, /field "mtime"/],
      [{ ...file, mtime: '-0' }, /field "mtime"/],
      [{ ...file, mtime: '1e3' }, /field "mtime"/],
      [{ ...file, mtime: ' 1' }, /field "mtime"/],
      [{ ...file, mtime: '8640000000000000000001' }, /field "mtime"/],
      [{ ...file, mtime: '-8640000000000000000001' }, /field "mtime"/],
      [{ ...file, mtime: '1'.repeat(23) }, /field "mtime"/],
      [{ ...file, ctime: 'x' }, /field "ctime"/],
      [{ ...file, ino: 7 }, /field "ino" is not a decimal number string/],
      [{ ...file, ino: '07' }, /field "ino"/],
      [{ ...file, ino: '1'.repeat(26) }, /field "ino"/],
      [{ ...file, ino: '1x' }, /field "ino"/],
      [{ ...file, size: -1 }, /field "size"/],
      [{ ...file, size: 2 ** 53 }, /field "size"/],
      [{ ...file, sha256: 'B'.repeat(64) }, /field "sha256" is not a SHA-256/],
      [{ ...file, sha256: 'b'.repeat(63) }, /field "sha256"/],
      [{ ...file, links: 2 }, /field "dev"/],
      [{ ...file, links: -2, dev: '1' }, /field "links"/],
      [{ ...file, content: [[id, 2], [1]], size: 4 }, /field "content" adds up to 3 bytes, but size is 4/],
      [{ ...file, content: [[id, 0]], size: 0 }, /malformed content part/],
      [{ ...file, content: [[0]], size: 0 }, /malformed content part/],
      [{ ...file, content: [[id, 3, 1]] }, /malformed content part/],
      [{ ...file, content: [['../x', 3]] }, /malformed content part/],
      [{ ...file, content: [[id, 1.5]] }, /malformed content part/],
      [{ ...file, content: [[1.5]] }, /malformed content part/],
      // A hole is a list of exactly one length: not a longer list, not an object that looks like one.
      [{ ...file, content: [[3, 1]], size: 3 }, /malformed content part/],
      [{ ...file, content: [{ 0: 3, length: 1 }], size: 3 }, /malformed content part/],
      [{ ...file, content: 'x' }, /field "content" is missing or not a list of parts/],
      [{ ...file, size: 1001, content: Array.from({ length: 1001 }, () => [1]) }, /field "content" is missing or not a list/],
      [without(file, 'content'), /field "content"/],
      [{ ...without(file, 'content'), list: id }, /field "parts"/],
      [{ ...without(file, 'content'), list: '../x', parts: 1 }, /field "list" is not an id/],
      [{ ...file, xattrs: 'x' }, /field "xattrs"/],
      [{ ...file, xattrs: [['dXNlcg==']] }, /field "xattrs"/],
      [{ ...file, xattrs: [['dXNlcg==', 'not base64!']] }, /field "xattrs"/],
      [{ ...file, xattrs: [[1, 'AA==']] }, /field "xattrs"/],
      // Every pair is checked, not only one; a pair is a list of exactly two.
      [{ ...file, xattrs: [['dXNlcg==', 'AA=='], ['dXNlcg==']] }, /field "xattrs"/],
      [{ ...file, xattrs: ['ab'] }, /field "xattrs"/],
      [{ ...file, xattrs: [['dXNlcg==', 'AA==', 'AA==']] }, /field "xattrs"/],
      [{ ...file, type: 'fifo' }, /field "type" is not dir, file or symlink/],
      [{ ...base, type: 'dir', tree: id.toUpperCase() }, /field "tree" is not an id/],
      [{ ...base, type: 'symlink' }, /field "target"/],
      [{ ...base, type: 'symlink', rawtarget: '%%' }, /field "target"/],
    ];
    for (const [value, reason] of cases) {
      assert.throws(() => decode(value), (err: unknown) => err instanceof IntegrityError && err.object === 'trees/aa/x' && reason.test(err.message), JSON.stringify(value).slice(0, 120));
    }
    // As many parts inline as the writer puts there decode.
    const most = decode({ ...file, size: MAX_INLINE_PARTS, content: Array.from({ length: MAX_INLINE_PARTS }, () => [1]) }) as FileEntry;
    assert.equal('parts' in most.content && most.content.parts.length, MAX_INLINE_PARTS);
    // A fine entry with the optional fields left out decodes; one time before 1970 too.
    assert.equal(decode({ ...file, mtime: '-315619200000000000' }).mtime, '-315619200000000000');
    assert.equal(decode({ ...base, type: 'symlink', rawtarget: Buffer.from('\xff', 'latin1').toString('base64') }).type, 'symlink');
  });
});

describe('snapshots say what their name says (snapshot.ts checkSnapshot)', () => {
  const secrets = { chunkIdKey: Buffer.alloc(32), treeIdKey: Buffer.alloc(32), metadataKey: Buffer.alloc(32, 1), chunkerSeed: Buffer.alloc(32) };
  const tree = 'c'.repeat(64);
  /** A snapshot as backups write it, decrypted, and its object name. */
  const stored = (fields: Record<string, unknown> = {}) => {
    const s = forgeSnapshot(secrets, tree, fields);
    return { name: s.name, value: JSON.parse(decodeMeta(secrets, s.name, s.bytes, 1 << 20).toString()) as Record<string, unknown> & { id: string; time: string; summary: Record<string, unknown> } };
  };

  it('a genuine snapshot passes and keeps its object name', () => {
    const { name, value } = stored({ parent: 'd'.repeat(64), tags: ['a'] });
    assert.deepEqual(checkSnapshot(value, name), { ...value, object: name });
  });

  it('a malformed field, or a name that says another id, source or time, is refused naming object and field', () => {
    const { name, value } = stored();
    const cases: [unknown, RegExp][] = [
      [null, /is not a snapshot/],
      [[value], /is not a snapshot/],
      ['x', /is not a snapshot/],
      [{ ...value, id: 'x' }, /field "id" is not an id/],
      [{ ...value, time: 7 }, /field "time" is not a time/],
      [{ ...value, time: 'soon' }, /field "time"/],
      [{ ...value, source: '../etc' }, /field "source" is not a source name/],
      [{ ...value, source: 7 }, /field "source"/],
      [{ ...value, paths: 'x' }, /field "paths" is not a list of strings/],
      [{ ...value, paths: [1] }, /field "paths"/],
      [{ ...value, hostname: 1 }, /field "hostname"/],
      [{ ...value, username: null }, /field "username"/],
      [{ ...value, tags: [null] }, /field "tags"/],
      [{ ...value, parent: '../x' }, /field "parent" is not an id/],
      [{ ...value, program_version: 1 }, /field "program_version"/],
      [{ ...value, tree: '../../x' }, /field "tree" is not a tree id/],
      [{ ...value, summary: undefined }, /field "summary" is missing/],
      [{ ...value, summary: null }, /field "summary" is missing/],
      [{ ...value, summary: 'x' }, /field "summary"/],
      [{ ...value, summary: { ...value.summary, error_count: 1.5 } }, /field "summary.error_count" is not an integer/],
      [{ ...value, summary: { ...value.summary, files_new: undefined } }, /field "summary.files_new"/],
      [{ ...value, id: 'e'.repeat(64) }, /is stored under a name that does not match what it holds/],
      [{ ...value, source: 'other' }, /does not match what it holds/],
      [{ ...value, time: new Date(Date.parse(value.time) + 1000).toISOString() }, /does not match what it holds/],
    ];
    for (const [v, reason] of cases) {
      assert.throws(() => checkSnapshot(v, name), (err: unknown) => err instanceof IntegrityError && err.object === name && reason.test(err.message), JSON.stringify(v)?.slice(0, 100));
    }
    assert.throws(() => checkSnapshot(value, `snapshots/src/x-${value.id}`), failsWith(IntegrityError, /does not match what it holds/));
    // The same time in other words (no milliseconds) is the same time.
    assert.equal(checkSnapshot({ ...value, time: value.time.replace('.000Z', 'Z') }, name).id, value.id);
  });
});

describe('object names come only from checked ids (layout.ts)', () => {
  const id = '0123456789abcdef'.repeat(4);

  it('ids are exactly 64 lower-case hex digits, and checkId names object and field', () => {
    assert.ok(isId(id));
    for (const bad of [id.toUpperCase(), id.slice(1), `${id}0`, `${id.slice(1)}g`, `../${id.slice(3)}`, 7, undefined, `${id}\n`, [id]]) assert.equal(isId(bad), false, String(bad));
    assert.equal(checkId(id, 'o', 'f'), id);
    assert.throws(() => checkId('../x', 'obj', 'field'), failsWith(IntegrityError, /^obj: field is not an id \(64 hex digits\): "\.\.\/x"/));
  });

  it('builds every name of the layout', () => {
    assert.equal(Layout.chunk(id), `chunks/01/${id}`);
    assert.equal(Layout.pack(id), `packs/01/${id}`);
    assert.equal(Layout.tree(id), `trees/01/${id}`);
    assert.equal(Layout.index(id), `index/${id}`);
    assert.equal(Layout.lock(id), `locks/${id}`);
    assert.equal(Layout.signature('ab'), 'keys/signatures/ab');
    assert.deepEqual(
      [Layout.config, Layout.repoKey, Layout.passphraseKey, Layout.signaturesDir, Layout.chunksDir, Layout.packsDir, Layout.indexDir, Layout.treesDir, Layout.snapshotsDir, Layout.locksDir],
      ['kbrackup.json', 'keys/repo-key', 'keys/passphrase', 'keys/signatures', 'chunks', 'packs', 'index', 'trees', 'snapshots', 'locks'],
    );
    const time = new Date('2026-11-25T13:05:01.999Z');
    assert.equal(compactTime(time), '20261125T130501Z');
    assert.equal(Layout.snapshot('src', time, id), `snapshots/src/20261125T130501Z-${id}`);
  });

  it('source names are one safe path segment', () => {
    assert.equal(sanitizeSource('my data/../x'), 'my-data-..-x');
    assert.equal(sanitizeSource('..'), 'root');
    assert.equal(sanitizeSource('--a--'), 'a');
    assert.equal(sanitizeSource('a b\tc'), 'a-b-c');
    assert.equal(sanitizeSource('a  /\t b'), 'a-b', 'a run of other characters becomes one dash');
    assert.equal(sanitizeSource('.hidden'), 'hidden');
    assert.equal(sanitizeSource(''), 'root');
    assert.equal(sanitizeSource('x'.repeat(150)).length, 100);
    for (const good of ['a', 'A_b-c.d', '_', '9'.repeat(100)]) assert.ok(isSource(good), good);
    for (const bad of ['', '.a', '-a', 'a/b', 'a b', 'x'.repeat(101), '..']) assert.equal(isSource(bad), false, bad);
  });

  it('stored names are parsed back only when they are exactly what the layout writes', () => {
    assert.deepEqual(parseSnapshotName(`snapshots/src/20261125T130501Z-${id}`), { source: 'src', time: '20261125T130501Z', id });
    for (const bad of [`snapshots/../20261125T130501Z-${id}`, `snapshots/src/20261125T130501Z-${id}x`, `snapshots/src/2026112T130501Z-${id}`, `xsnapshots/src/20261125T130501Z-${id}`, `snapshots/a/b/20261125T130501Z-${id}`]) {
      assert.equal(parseSnapshotName(bad), undefined, bad);
    }
    assert.equal(idOfName('chunks', `chunks/01/${id}`), id);
    assert.equal(idOfName('trees', `trees/01/${id}`), id);
    assert.equal(idOfName('packs', `packs/01/${id}`), id);
    assert.equal(idOfName('index', `index/${id}`), id);
    assert.equal(idOfName('locks', `locks/${id}`), id);
    for (const [dir, bad] of [
      ['chunks', `chunks/02/${id}`],
      ['chunks', `packs/01/${id}`],
      ['chunks', `chunks/${id}`],
      ['index', `index/01/${id}`],
      ['index', `locks/${id}`],
      ['index', `index/${id}.tmp`],
      ['trees', `xtrees/01/${id}`],
      ['trees', `a/trees/01/${id}`],
      ['chunks', `chunks/01/${id}0`],
      ['index', `a/index/${id}`],
      ['index', `index/${id}0`],
    ] as const) {
      assert.equal(idOfName(dir, bad), undefined, bad);
    }
  });
});
