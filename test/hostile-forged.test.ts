import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RepoSecrets } from '../src/crypto/kdf.js';
import { encodeTrailer } from '../src/repo/content-codec.js';
import { encodeObjectBlobs, objectBlobsOf } from '../src/repo/index/blob-list.js';
import type { IndexEntry } from '../src/repo/index/records.js';
import { Layout } from '../src/repo/layout.js';
import { encodeMeta } from '../src/repo/meta-codec.js';
import { encodeEntry, type FileEntry, type TreeEntry } from '../src/repo/tree/entry.js';
import { runCli, summaryOf, type RunResult } from './helpers/cli.js';
import { writePseudoRandom } from './helpers/data.js';
import {
  blobId,
  credentialSecrets,
  deleteObject,
  everythingUnder,
  expectNothingWritten,
  expectRefused,
  fileEntry,
  forgeIndex,
  forgeLines,
  forgeSnapshot,
  forgeTree,
  objectNames,
  readIndex,
  readObject,
  readSnapshot,
  readTree,
  warningsAbout,
  writeObject,
} from './helpers/forge.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

/** Run `check` over the cases a few at a time: each is a CLI run of its own, on objects of its own. */
async function inParallel<T>(cases: T[], check: (c: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < cases.length; i += 4) await Promise.all(cases.slice(i, i + 4).map(check));
}

/**
 * A holder of the backup credentials (a stolen backup.cred: the repository key) can write snapshots,
 * trees and index objects that authenticate. It cannot read contents, and whatever it writes, restore
 * never writes outside the destination, past a file's size, through a symlink, or from a malformed field:
 * it stops with an error naming the object and the field (docs/SECURITY.md "Backup credentials").
 */
describe('hostile metadata from a holder of the backup credentials', () => {
  let fx: Fixture;
  let secrets: RepoSecrets;
  let index: IndexEntry[];
  let genuine: { id: string; name: string; tree: string };
  /** The four 256 KiB chunks of big.bin. */
  let chunks: string[];
  const CHUNK = 256 * 1024;
  let outs = 0;

  const destination = (): string => join(fx.dir, `out-${++outs}`);
  const restore = (args: string[]): Promise<RunResult> => runCli(['restore', '--repo', fx.repo, '--key', fx.key, ...args]);
  /** Store a tree object and a snapshot of it; returns the snapshot. */
  const store = async (tree: { id: string; name: string; bytes: Buffer }, fields: Record<string, unknown> = {}) => {
    await writeObject(fx, tree.name, tree.bytes);
    const snapshot = forgeSnapshot(secrets, tree.id, fields);
    await writeObject(fx, snapshot.name, snapshot.bytes);
    return snapshot;
  };
  /** Restore a forged snapshot of `tree`: refused with exit 1 naming `object`, and nothing written. */
  const refusedTree = async (tree: { id: string; name: string; bytes: Buffer }, object: string, reason: RegExp) => {
    const snapshot = await store(tree);
    const out = destination();
    expectRefused(await restore([snapshot.id, '--target', out]), 1, object, reason);
    await expectNothingWritten(out);
  };
  const empty = (name: string) => fileEntry(name, { data: Buffer.alloc(0), parts: [] });

  before(async () => {
    fx = await makeFixture(['--chunker', 'fixed', '--chunk-size', '256KiB']);
    const src = join(fx.dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'alpha\n');
    await writeFile(join(src, 'b.txt'), 'bravo\n');
    await writePseudoRandom(join(src, 'big.bin'), 4 * CHUNK, 'big');
    const backup = expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--json', src]), 0);
    const id = summaryOf(backup.stdout).snapshot_id as string;
    secrets = await credentialSecrets(fx);
    index = await readIndex(fx, secrets);
    const name = (await objectNames(fx, Layout.snapshotsDir)).find((n) => n.endsWith(id))!;
    genuine = { id, name, tree: (await readSnapshot(fx, secrets, name)).tree };
    const big = (await readTree(fx, secrets, genuine.tree)).find((e) => e.name === 'big.bin') as FileEntry;
    chunks = ('parts' in big.content ? big.content.parts : []).map((p) => ('id' in p ? p.id : ''));
    assert.equal(chunks.length, 4);
  });
  after(() => fx.cleanup());
  // Forged snapshots are newer than the genuine one: each test starts with the genuine one as latest.
  afterEach(async () => {
    for (const name of await objectNames(fx, Layout.snapshotsDir)) if (name !== genuine.name) await deleteObject(fx, name);
  });

  it('names that would leave the destination (.., /, NUL, absolute, empty, too long) are refused, named, before anything is written', async () => {
    const line = (name: string) => encodeEntry(empty(name));
    const raw = (bytes: string) => line('x').replace('"name":"x"', `"rawname":"${Buffer.from(bytes, 'latin1').toString('base64')}"`);
    await inParallel([line('..'), line('.'), line(''), line('a/b'), line('/etc/passwd'), line('../../etc/passwd'), line('a\u0000b'), raw('../x'), raw('a/\xff'), line('n'.repeat(256))], async (l) => {
      const tree = forgeLines(secrets, [l]);
      await refusedTree(tree, tree.name, /field "name"/);
    });
  });

  it('symlinks never lead a restore outside the destination', async () => {
    const outside = join(fx.dir, 'outside');
    await mkdir(outside);
    const symlink = (name: string, target: string): TreeEntry => ({ type: 'symlink', name, mode: 0o777, uid: 0, gid: 0, mtime: '1700000000000000000', linkTarget: target });
    const alpha = Buffer.from('alpha\n');
    const file = fileEntry('passwd', { data: alpha, parts: [{ id: blobId(secrets, alpha), length: alpha.length }] });
    const dir = async (name: string, entries: TreeEntry[]) => {
      const tree = await forgeTree(secrets, entries);
      await writeObject(fx, tree.name, tree.bytes);
      return { type: 'dir', name, mode: 0o755, uid: 0, gid: 0, mtime: '1700000000000000000', tree: tree.id } as TreeEntry;
    };

    // One tree naming `d` twice, a symlink out and a folder to write through: refused at the second.
    const twice = forgeLines(secrets, [encodeEntry(await dir('d', [file])), encodeEntry(symlink('d', outside))]);
    const out = destination();
    expectRefused(await restore([(await store(twice)).id, '--target', out]), 1, twice.name, /line 2: entries are not in name order \(duplicate/);
    assert.deepEqual(await readdir(outside), []);

    // A first restore leaves `d -> outside`; a second one, overwriting, would write `d/passwd` through it.
    const shared = destination();
    expectCode(await restore([(await store(await forgeTree(secrets, [symlink('d', outside)]))).id, '--target', shared]), 0);
    for (const conflict of ['overwrite', 'skip', 'update']) {
      const through = await store(await forgeTree(secrets, [await dir('d', [file])]));
      expectRefused(await restore([through.id, '--target', shared, '--conflict', conflict]), 1, join(shared, 'd'), /is a symlink; refusing to restore through it/);
    }
    // A file named `d` replaces the symlink itself, never what it points to.
    const replacing = await store(await forgeTree(secrets, [{ ...file, name: 'd' }]));
    expectCode(await restore([replacing.id, '--target', shared, '--conflict', 'overwrite']), 0);
    assert.ok((await lstat(join(shared, 'd'))).isFile());
    assert.deepEqual(await readdir(outside), []);
  });

  it('content that goes past a file\'s recorded size is refused before a byte past the size is written', async () => {
    const [c0, c1] = chunks as [string, string];
    // Parts that add up to more than the size.
    const more = await forgeTree(secrets, [fileEntry('f', { size: 10, parts: [{ id: c0, length: CHUNK }] })]);
    await refusedTree(more, more.name, /field "content" adds up to 262144 bytes, but size is 10/);
    // Parts that add up to the size, but whose chunks are longer: refused at the first piece past the size.
    const lying = await forgeTree(secrets, [fileEntry('f', { size: 10, parts: [{ id: c0, length: 5 }, { id: c1, length: 5 }] })]);
    await refusedTree(lying, lying.name, / f: its content goes on past the file's recorded size of 10 bytes/);
    // One part whose chunk is longer: a small file, checked whole before it is written.
    const short = await forgeTree(secrets, [fileEntry('f', { size: 10, parts: [{ id: c0, length: 10 }] })]);
    await refusedTree(short, short.name, / f: restored content does not match its recorded size/);
    // A 10-byte file with 300 MB of parts in a content list: refused at the list's first line, nothing fetched past it.
    const list = forgeLines(secrets, Array.from({ length: 1200 }, () => `["${c0}",${CHUNK}]`));
    await writeObject(fx, list.name, list.bytes);
    const started = Date.now();
    await refusedTree(await forgeTree(secrets, [fileEntry('f', { size: 10, list: list.id, count: 1200 })]), list.name, /line 1: its parts add up to more than the file's size of 10 bytes/);
    assert.ok(Date.now() - started < 30_000, 'refused without reading 300 MB');
  });

  it('genuine blobs in another order, or another genuine blob of the same size, are refused by the file\'s SHA-256, and the file never appears', async () => {
    // Every blob matches its id, and the parts add up to the size: only the SHA-256 of the whole file tells (a writer's bug, or a forger's).
    const entries = await readTree(fx, secrets, genuine.tree);
    const big = entries.find((e) => e.name === 'big.bin') as FileEntry;
    const [c0, c1, c2, c3] = chunks as [string, string, string, string];
    const reordered = await forgeTree(secrets, [{ ...big, content: { parts: [c1, c0, c2, c3].map((id) => ({ id, length: CHUNK })) } }]);
    await refusedTree(reordered, reordered.name, /big\.bin: restored content does not match its recorded size and SHA-256/);
    const [a, b] = ['a.txt', 'b.txt'].map((n) => entries.find((e) => e.name === n) as FileEntry) as [FileEntry, FileEntry];
    const swapped = await forgeTree(secrets, [{ ...a, content: b.content }]);
    await refusedTree(swapped, swapped.name, /a\.txt: restored content does not match its recorded size and SHA-256/);
  });

  it('a content list with more or fewer parts than its entry announces is refused, named', async () => {
    const list = forgeLines(secrets, chunks.slice(0, 3).map((c) => `["${c}",${CHUNK}]`));
    await writeObject(fx, list.name, list.bytes);
    await refusedTree(await forgeTree(secrets, [fileEntry('f', { size: 3 * CHUNK, list: list.id, count: 2 })]), list.name, /holds more than the 2 parts its file entry announces/);
    await refusedTree(await forgeTree(secrets, [fileEntry('f', { size: 3 * CHUNK, list: list.id, count: 4 })]), list.name, /holds 3 parts, but its file entry announces 4/);
    await refusedTree(await forgeTree(secrets, [fileEntry('f', { size: 4 * CHUNK, list: list.id, count: 3 })]), list.name, /its parts add up to 786432 bytes, but the file's size is 1048576/);
  });

  it('every malformed field of a tree entry is an integrity error naming the object and the field', async () => {
    const f = JSON.parse(encodeEntry(empty('f'))) as Record<string, unknown>;
    const d = { name: 'd', type: 'dir', mode: 493, uid: 0, gid: 0, mtime: '1700000000000000000', tree: genuine.tree };
    const without = (o: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));
    const cases: [Record<string, unknown> | string, RegExp][] = [
      [{ ...f, mode: '644' }, /field "mode"/],
      [{ ...f, mode: 65536 }, /field "mode"/],
      [{ ...f, uid: -1 }, /field "uid"/],
      [{ ...f, gid: 1.5 }, /field "gid"/],
      [{ ...f, mtime: 1700000000 }, /field "mtime"/],
      [{ ...f, mtime: 'soon' }, /field "mtime"/],
      [{ ...f, mtime: '9'.repeat(23) }, /field "mtime"/],
      [without(f, 'ctime'), /field "ctime"/],
      [{ ...f, ino: '-1' }, /field "ino"/],
      [without(f, 'size'), /field "size"/],
      [{ ...f, size: '0' }, /field "size"/],
      [{ ...f, sha256: 'abc' }, /field "sha256"/],
      [{ ...f, links: 2 }, /field "dev"/],
      [without(f, 'content'), /field "content"/],
      [{ ...f, content: 'x' }, /field "content"/],
      [{ ...f, size: 10, content: [['../something', 10]] }, /malformed content part \[".\.\/something",10\]/],
      [{ ...without(f, 'content'), list: '../x', parts: 1 }, /field "list"/],
      [{ ...f, xattrs: [['dXNlcg==']] }, /field "xattrs"/],
      [{ ...f, type: 'fifo' }, /field "type"/],
      [{ ...f, name: 7 }, /field "name"/],
      [without(d, 'tree'), /field "tree"/],
      [{ ...d, tree: '../../x' }, /field "tree"/],
      [{ name: 'l', type: 'symlink', mode: 511, uid: 0, gid: 0, mtime: '1700000000000000000' }, /field "target"/],
      ['{"name": "f",', /line 1 is not JSON/],
      ['["f"]', /line 1 is not an entry/],
    ];
    await inParallel(cases, async ([entry, reason]) => {
      const tree = forgeLines(secrets, [typeof entry === 'string' ? entry : JSON.stringify(entry)]);
      await refusedTree(tree, tree.name, reason);
    });
  });

  it('a snapshot whose fields are malformed or name paths is refused by id (named, with the field) and skipped by latest', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ tree: '../../etc/passwd' }, /field "tree" is not a tree id/],
      [{ parent: '../x' }, /field "parent" is not an id/],
      [{ time: 'yesterday' }, /field "time" is not a time/],
      [{ paths: [1] }, /field "paths"/],
      [{ summary: null }, /field "summary"/],
      [{ source: 'other' }, /is stored under a name that does not match what it holds/],
      [{ id: 'a'.repeat(64) }, /is stored under a name that does not match what it holds/],
    ];
    const names: string[] = [];
    await inParallel(cases, async ([fields, reason]) => {
      const snapshot = forgeSnapshot(secrets, genuine.tree, fields);
      await writeObject(fx, snapshot.name, snapshot.bytes);
      names.push(snapshot.name);
      const out = destination();
      expectRefused(await restore([snapshot.id, '--target', out]), 1, snapshot.name, reason);
      await expectNothingWritten(out);
    });
    const out = destination();
    const restored = expectCode(await restore(['latest', '--target', out]), 0);
    assert.match(restored.stdout, new RegExp(`restored snapshot ${genuine.id.slice(0, 8)}`));
    for (const name of names) assert.equal(warningsAbout(restored, name).length, 1, `${name}: ${restored.stderr}`);
  });

  it('control characters in a snapshot never reach the terminal as they are', async () => {
    const snapshot = forgeSnapshot(secrets, genuine.tree, { hostname: 'pod\u001b]0;owned\u0007', paths: ['/data\u001b[2J\r'] });
    await writeObject(fx, snapshot.name, snapshot.bytes);
    const listed = expectCode(await runCli(['snapshots', '--repo', fx.repo, '--key', fx.key]), 0);
    assert.doesNotMatch(listed.stdout, /[\u0000-\u0009\u000b-\u001f]/);
    assert.match(listed.stdout, /pod\\x1b\]0;owned\\x07 .* \/data\\x1b\[2J\\r/);
  });

  it('a tree encrypted under another tree\'s name does not hash to it: refused, named', async () => {
    const other = await forgeTree(secrets, [empty('other')]);
    const genuineTree = await readObject(fx, Layout.tree(genuine.tree));
    const plain = (await readTree(fx, secrets, genuine.tree)).map((e) => `${encodeEntry(e)}\n`).join('');
    assert.ok(genuineTree.length > 0);
    await refusedTree({ ...other, bytes: encodeMeta(secrets, other.name, Buffer.from(plain)) }, other.name, /does not hash to its name/);
  });

  it('an index that points a known id at another blob is refused at that blob, named', async () => {
    const originals = await objectNames(fx, Layout.indexDir);
    const saved = await Promise.all(originals.map((n) => readObject(fx, n)));
    try {
      const [c0, c1] = chunks as [string, string];
      const small = index.filter((e) => e.loc.kind === 'pack');
      const locOf = (id: string) => index.find((e) => e.id.toString('hex') === id)!.loc;
      // The first chunk of big.bin pointed at the second; a.txt's blob at b.txt's.
      const lying = index.map((e) => {
        const hex = e.id.toString('hex');
        if (hex === c0) return { id: e.id, loc: locOf(c1) };
        if (e.loc.kind === 'pack' && e === small[0]) return { id: e.id, loc: small[1]!.loc };
        return e;
      });
      for (const n of originals) await deleteObject(fx, n);
      const forged = await forgeIndex(secrets, lying);
      await writeObject(fx, forged.name, forged.bytes);
      const out = destination();
      expectRefused(await restore([genuine.id, '--include', 'big.bin', '--target', out]), 1, Layout.chunk(c1), /does not match its id/);
      await expectNothingWritten(out);
      const tree = await readTree(fx, secrets, genuine.tree);
      const victim = tree.find((e) => e.type === 'file' && 'parts' in e.content && 'id' in e.content.parts[0]! && e.content.parts[0].id === small[0]!.id.toString('hex'))!;
      const out2 = destination();
      expectRefused(await restore([genuine.id, '--include', victim.name, '--target', out2]), 1, Layout.pack(small[1]!.loc.objectId), /does not match its id/);
      await expectNothingWritten(out2);
      await deleteObject(fx, forged.name);
    } finally {
      for (const [i, n] of originals.entries()) await writeObject(fx, n, saved[i]!);
    }
  });

  it('a trailer that lists another object\'s blobs is refused by `repair index`, named', async () => {
    const [c0, c1] = chunks as [string, string];
    const name = Layout.chunk(c1);
    const original = await readObject(fx, name);
    try {
      const loc = index.find((e) => e.id.toString('hex') === c1)!.loc;
      const foreign = objectBlobsOf(index.filter((e) => e.id.toString('hex') === c0));
      await writeObject(fx, name, Buffer.concat([original.subarray(0, loc.bundleOffset + loc.bundleLength), encodeTrailer(secrets, name, encodeObjectBlobs(foreign), 1)]));
      const repaired = await runCli(['repair', 'index', '--repo', fx.repo, '--credentials', fx.cred]);
      assert.equal(repaired.code, 3, repaired.stderr);
      assert.match(warningsAbout(repaired, name)[0] ?? '', /its trailer lists blobs of another object/);
    } finally {
      await writeObject(fx, name, original);
      expectCode(await runCli(['repair', 'index', '--repo', fx.repo, '--credentials', fx.cred]), 0);
      index = await readIndex(fx, secrets);
    }
  });

  it('a time before 1970 is no malformed field: a file from 1960 restores with its time', async () => {
    const src = join(fx.dir, 'old-src');
    await mkdir(src);
    await writeFile(join(src, 'old.txt'), 'from the sixties\n');
    // A Date: Node takes a negative number of seconds for "now".
    await utimes(join(src, 'old.txt'), new Date(-315_619_200_000), new Date(-315_619_200_000));
    const backup = expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--source', 'old', '--json', src]), 0);
    const out = destination();
    expectCode(await restore([summaryOf(backup.stdout).snapshot_id as string, '--target', out]), 0);
    assert.equal((await stat(join(out, 'old.txt'))).mtimeMs, -315_619_200_000);
    assert.equal(await readFile(join(out, 'old.txt'), 'utf8'), 'from the sixties\n');
    assert.deepEqual(await everythingUnder(out), ['old.txt']);
  });
});
