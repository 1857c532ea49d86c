import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RepoSecrets } from '../src/crypto/kdf.js';
import type { IndexEntry } from '../src/repo/index/records.js';
import { Layout } from '../src/repo/layout.js';
import { objectName } from '../src/repo/content-reader.js';
import type { FileEntry, TreeEntry } from '../src/repo/tree/entry.js';
import { runCli, summaryOf, type RunResult } from './helpers/cli.js';
import { writePseudoRandom } from './helpers/data.js';
import {
  credentialSecrets,
  definitePacket,
  deleteObject,
  expectNothingWritten,
  expectRefused,
  keepPristine,
  fileEntry,
  forgeChunk,
  forgeIndex,
  forgeSnapshot,
  forgeTree,
  madeUpSecrets,
  objectNames,
  ownerPublicKey,
  packetBody,
  readIndex,
  readObject,
  readSnapshot,
  readTree,
  warningsAbout,
  writeObject,
} from './helpers/forge.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

/**
 * The storage (bucket, SFTP server, folder) as an attacker: it can write any bytes under any name and
 * knows the owner's public key, but holds neither the repository key nor a private key. Whatever it
 * does, a restore writes only what the owner's backups wrote, or stops with an error naming the object
 * it refused (docs/SECURITY.md "The storage").
 */
describe('hostile storage: it can delete, but never forge or swap what a restore writes', () => {
  let fx: Fixture;
  let reset: () => Promise<void>;
  let secrets: RepoSecrets;
  let index: IndexEntry[];
  let first: { id: string; name: string; tree: string };
  let second: { id: string; name: string; tree: string };
  /** The four 256 KiB chunks of big.bin, in file order. */
  let chunks: string[];
  let outs = 0;

  const restore = (args: string[]): Promise<RunResult> => runCli(['restore', '--repo', fx.repo, '--key', fx.key, ...args]);
  const destination = (): string => join(fx.dir, `out-${++outs}`);
  const entryOf = async (tree: string, name: string): Promise<FileEntry> => (await readTree(fx, secrets, tree)).find((e) => e.name === name) as FileEntry;
  const locationOf = (id: string): IndexEntry['loc'] => index.find((e) => e.id.toString('hex') === id)!.loc;

  before(async () => {
    // Fixed 256 KiB chunks: big.bin is four chunks of equal size, so chunks can be swapped without changing lengths.
    fx = await makeFixture(['--chunker', 'fixed', '--chunk-size', '256KiB']);
    const src = join(fx.dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'alpha, first version\n');
    await writeFile(join(src, 'b.txt'), 'bravo\n');
    await writeFile(join(src, 'run.sh'), '#!/bin/sh\necho genuine\n', { mode: 0o755 });
    await writePseudoRandom(join(src, 'big.bin'), 1024 * 1024, 'big');
    const backup = async () => summaryOf(expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--json', src]), 0).stdout).snapshot_id as string;
    const id1 = await backup();
    await writeFile(join(src, 'a.txt'), 'alpha, second version\n');
    await writeFile(join(src, 'c.txt'), 'charlie\n');
    const id2 = await backup();
    // Only to find the objects to attack: the storage itself cannot read them.
    secrets = await credentialSecrets(fx);
    index = await readIndex(fx, secrets);
    const snapshot = async (id: string) => {
      const name = (await objectNames(fx, Layout.snapshotsDir)).find((n) => n.endsWith(id))!;
      return { id, name, tree: (await readSnapshot(fx, secrets, name)).tree };
    };
    first = await snapshot(id1);
    second = await snapshot(id2);
    const big = await entryOf(second.tree, 'big.bin');
    chunks = ('parts' in big.content ? big.content.parts : []).map((p) => ('id' in p ? p.id : ''));
    assert.equal(chunks.length, 4);
    reset = await keepPristine(fx);
  });
  after(() => fx.cleanup());
  beforeEach(() => reset());

  it('a snapshot, tree, index and chunk forged and encrypted to the real public key are skipped, named, and never restored', async () => {
    // The storage's best forgery: content any recipient opens, metadata under a repository key it made up.
    const forged = madeUpSecrets();
    const evil = Buffer.from('#!/bin/sh\necho pwned\n');
    const id = Buffer.from(forgeSnapshot(forged, '0'.repeat(64)).id, 'hex');
    const chunk = await forgeChunk(await ownerPublicKey(fx), evil);
    await writeObject(fx, Layout.chunk(id.toString('hex')), chunk.bytes);
    const forgedIndex = await forgeIndex(forged, [{ id, loc: { kind: 'chunk', objectId: id.toString('hex'), keyOffset: 0, bundleOffset: chunk.bundleOffset, bundleLength: chunk.bundleLength, blobOffset: 0, rawLength: evil.length } }]);
    await writeObject(fx, forgedIndex.name, forgedIndex.bytes);
    const tree = await forgeTree(forged, [fileEntry('run.sh', { data: evil, parts: [{ id: id.toString('hex'), length: evil.length }] }, 0o755)]);
    await writeObject(fx, tree.name, tree.bytes);
    const snapshot = forgeSnapshot(forged, tree.id);
    await writeObject(fx, snapshot.name, snapshot.bytes);

    const listed = expectCode(await runCli(['snapshots', '--repo', fx.repo, '--key', fx.key, '--json']), 0);
    assert.deepEqual((JSON.parse(listed.stdout) as { id: string }[]).map((s) => s.id), [first.id, second.id]);
    assert.equal(warningsAbout(listed, snapshot.name).length, 1, listed.stderr);

    const out = destination();
    const restored = expectCode(await restore(['latest', '--target', out]), 0);
    assert.match(restored.stdout, new RegExp(`restored snapshot ${second.id.slice(0, 8)}`));
    assert.equal(await readFile(join(out, 'run.sh'), 'utf8'), '#!/bin/sh\necho genuine\n');
    assert.equal(warningsAbout(restored, snapshot.name).length, 1, restored.stderr);
    assert.equal(warningsAbout(restored, forgedIndex.name).length, 1, restored.stderr);

    const byId = destination();
    expectRefused(await restore([snapshot.id, '--target', byId]), 1, snapshot.name, /authentication failed/);
    await expectNothingWritten(byId);
    expectRefused(await runCli(['ls', '--repo', fx.repo, '--key', fx.key, snapshot.id]), 1, snapshot.name, /authentication failed/);
  });

  it('an older tree copied over a newer one is refused, named, before anything is written', async () => {
    await writeObject(fx, Layout.tree(second.tree), await readObject(fx, Layout.tree(first.tree)));
    const out = destination();
    expectRefused(await restore(['latest', '--target', out]), 1, Layout.tree(second.tree), /authentication failed/);
    await expectNothingWritten(out);
    expectRefused(await runCli(['ls', '--repo', fx.repo, '--key', fx.key, 'latest']), 1, Layout.tree(second.tree));
    // The older snapshot, whose tree is intact, still restores.
    expectCode(await restore([first.id, '--target', destination()]), 0);
  });

  it('a snapshot copied into another source or under another time is skipped, named; the original still restores by id and as latest', async () => {
    const bytes = await readObject(fx, second.name);
    const otherSource = second.name.replace('snapshots/src/', 'snapshots/other/');
    const later = second.name.replace(/\/\d{8}T\d{6}Z-/, '/29990101T000000Z-');
    await writeObject(fx, otherSource, bytes);
    await writeObject(fx, later, bytes);

    const listed = expectCode(await runCli(['snapshots', '--repo', fx.repo, '--key', fx.key, '--json']), 0);
    assert.deepEqual((JSON.parse(listed.stdout) as { id: string }[]).map((s) => s.id), [first.id, second.id]);
    for (const copy of [otherSource, later]) assert.equal(warningsAbout(listed, copy).length, 1, listed.stderr);

    const out = destination();
    const refused = await restore(['latest', '--source', 'other', '--target', out]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /no snapshots of source other/);
    await expectNothingWritten(out);
    for (const ref of ['latest', second.id, second.id.slice(0, 8)]) {
      const restored = expectCode(await restore([ref, '--target', destination()]), 0);
      assert.match(restored.stdout, new RegExp(`restored snapshot ${second.id.slice(0, 8)}`), ref);
    }
  });

  it('swapped chunks are refused at the first one, named, and the file never appears', async () => {
    const [a, b] = [Layout.chunk(chunks[0]!), Layout.chunk(chunks[1]!)];
    const [bytesA, bytesB] = [await readObject(fx, a), await readObject(fx, b)];
    await writeObject(fx, a, bytesB);
    await writeObject(fx, b, bytesA);
    const out = destination();
    const message = expectRefused(await restore(['latest', '--include', 'big.bin', '--target', out]), 1, a, /does not match its id/);
    assert.ok(message.startsWith(`${a}:`), message);
    await expectNothingWritten(out);
  });

  it('a chunk moved to another chunk\'s name: the one now missing is named', async () => {
    await writeObject(fx, Layout.chunk(chunks[2]!), await readObject(fx, Layout.chunk(chunks[1]!)));
    await deleteObject(fx, Layout.chunk(chunks[1]!));
    const out = destination();
    expectRefused(await restore(['latest', '--include', 'big.bin', '--target', out]), 1, Layout.chunk(chunks[1]!), /no such object/);
    await expectNothingWritten(out);
  });

  it('swapped packs are refused at the first blob, named', async () => {
    const [a1, a2] = [await entryOf(first.tree, 'a.txt'), await entryOf(second.tree, 'a.txt')];
    const pack = (e: FileEntry) => objectName(locationOf(('parts' in e.content && 'id' in e.content.parts[0]! ? e.content.parts[0].id : '')));
    const [p1, p2] = [pack(a1), pack(a2)];
    assert.notEqual(p1, p2);
    const [bytes1, bytes2] = [await readObject(fx, p1), await readObject(fx, p2)];
    await writeObject(fx, p1, bytes2);
    await writeObject(fx, p2, bytes1);
    const out = destination();
    expectRefused(await restore(['latest', '--include', 'a.txt', '--target', out]), 1, p2);
    await expectNothingWritten(out);
  });

  it('a chunk the storage encrypted to the real public key is refused at that chunk, named', async () => {
    const name = Layout.chunk(chunks[1]!);
    const genuine = await readObject(fx, name);
    const loc = locationOf(chunks[1]!);
    const chunk = await forgeChunk(await ownerPublicKey(fx), Buffer.alloc(256 * 1024, 0x41));
    // Same layout as the genuine object (its trailer copied too): only the keyed id can tell them apart.
    assert.deepEqual([chunk.bundleOffset, chunk.bundleLength], [loc.bundleOffset, loc.bundleLength]);
    await writeObject(fx, name, Buffer.concat([chunk.bytes, genuine.subarray(loc.bundleOffset + loc.bundleLength)]));
    const out = destination();
    expectRefused(await restore(['latest', '--include', 'big.bin', '--target', out]), 1, name, /does not match its id/);
    await expectNothingWritten(out);
  });

  it('a chunk taken from another repository encrypted to the same key is refused at that chunk, named', async () => {
    const other = join(fx.dir, 'other-repo');
    const cred = join(fx.dir, 'other.cred');
    expectCode(await runCli(['init', '--repo', other, '--key', fx.key, '--credentials-out', cred, '--chunker', 'fixed', '--chunk-size', '256KiB']), 0);
    const src = join(fx.dir, 'other-src');
    await mkdir(src, { recursive: true });
    await writePseudoRandom(join(src, 'big.bin'), 1024 * 1024, 'another repository');
    expectCode(await runCli(['backup', '--repo', other, '--credentials', cred, src]), 0);
    const foreign = (await objectNames({ ...fx, repo: other }, Layout.chunksDir))[0]!;
    const name = Layout.chunk(chunks[0]!);
    await writeObject(fx, name, await readFile(join(other, foreign)));
    const out = destination();
    expectRefused(await restore(['latest', '--include', 'big.bin', '--target', out]), 1, name, /does not match its id/);
    await expectNothingWritten(out);
  });

  it('damaged key packets are an integrity error naming the object (exit 1), never a wrong key (exit 12)', async () => {
    const name = Layout.chunk(chunks[0]!);
    const genuine = await readObject(fx, name);
    const keyPackets = locationOf(chunks[0]!).bundleOffset;
    // The packet tag, a byte of the recipient's fingerprint, the wrapped session key's last byte.
    for (const at of [0, 10, keyPackets - 1]) {
      const damaged = Buffer.from(genuine);
      damaged[at]! ^= 0x40;
      await writeObject(fx, name, damaged);
      const out = destination();
      expectRefused(await restore(['latest', '--include', 'big.bin', '--target', out]), 1, name, /damaged|not OpenPGP|key packets/);
      await expectNothingWritten(out);
    }
  });

  it('a damaged snapshot is skipped by listing and latest, named; every other one restores by id and as latest', async () => {
    const damage = async (name: string) => {
      const bytes = Buffer.from(await readObject(fx, name));
      bytes[bytes.length - 20]! ^= 1;
      await writeObject(fx, name, bytes);
    };
    await damage(first.name);
    const listed = expectCode(await runCli(['snapshots', '--repo', fx.repo, '--key', fx.key, '--json']), 0);
    assert.deepEqual((JSON.parse(listed.stdout) as { id: string }[]).map((s) => s.id), [second.id]);
    assert.equal(warningsAbout(listed, first.name).length, 1, listed.stderr);
    for (const ref of ['latest', second.id]) expectCode(await restore([ref, '--target', destination()]), 0);
    const out = destination();
    expectRefused(await restore([first.id, '--target', out]), 1, first.name, /authentication failed/);
    await expectNothingWritten(out);

    // The newest one damaged instead: latest is the newest intact one.
    await reset();
    await damage(second.name);
    const restored = expectCode(await restore(['latest', '--target', destination()]), 0);
    assert.match(restored.stdout, new RegExp(`restored snapshot ${first.id.slice(0, 8)}`));
    assert.equal(warningsAbout(restored, second.name).length, 1, restored.stderr);
    expectCode(await runCli(['ls', '--repo', fx.repo, '--credentials', fx.cred, 'latest']), 0);
  });

  it('a big folder tree cut at an AEAD chunk boundary is refused at the cut, named', async () => {
    // A folder of 60,000 files, as a backup writes it (real key): its object is streamed, not read whole.
    const entries = Array.from({ length: 60_000 }, (_, i) => ({ ...fileEntry(`f-${i.toString().padStart(5, '0')}-${randomBytes(24).toString('hex')}`, { data: Buffer.alloc(0), parts: [] }), ino: String(1_000_003 * i), mtime: String(1_700_000_000_123_456_789n + BigInt(i) * 7_919_000n) }));
    const tree = await forgeTree(secrets, entries);
    assert.ok(tree.bytes.length > 2 * 1024 * 1024, `tree object of ${tree.bytes.length} bytes is streamed`);
    const snapshot = forgeSnapshot(secrets, tree.id);
    await writeObject(fx, tree.name, tree.bytes);
    await writeObject(fx, snapshot.name, snapshot.bytes);
    // The storage's cut: the first AEAD chunks whole, then the next chunk's tag posing as the final tag, framed consistently.
    const body = packetBody(tree.bytes);
    const chunkAt = (i: number) => 4 + 32 + i * (256 * 1024 + 16);
    await writeObject(fx, tree.name, definitePacket(Buffer.concat([body.subarray(0, chunkAt(3)), body.subarray(chunkAt(4) - 16, chunkAt(4))])));
    const out = destination();
    // Restoring only the last entry reads the whole folder, so the cut is met before anything is written.
    expectRefused(await restore([snapshot.id, '--include', entries.at(-1)!.name, '--target', out]), 1, tree.name, /final tag/);
    await expectNothingWritten(out);
    expectRefused(await runCli(['ls', '--repo', fx.repo, '--key', fx.key, snapshot.id]), 1, tree.name, /final tag/);
  });

  it('an index object copied under another name is skipped, named; a pack holding another pack\'s bytes is refused, named', async () => {
    const [indexObject] = await objectNames(fx, Layout.indexDir);
    const copy = Layout.index('f'.repeat(64));
    await writeObject(fx, copy, await readObject(fx, indexObject!));
    const restored = expectCode(await restore(['latest', '--target', destination()]), 0);
    assert.equal(warningsAbout(restored, copy).length, 1, restored.stderr);

    // A pack's bytes under another pack's name: restore refuses the blob read from it, and its trailer
    // does not open there, so `repair index` skips it, named.
    const [p1, p2] = (await objectNames(fx, Layout.packsDir)).slice(0, 2) as [string, string];
    await writeObject(fx, p2, await readObject(fx, p1));
    const inP2 = (e: TreeEntry) => e.type === 'file' && 'parts' in e.content && 'id' in e.content.parts[0]! && objectName(locationOf(e.content.parts[0].id)) === p2;
    let found: { id: string; name: string } | undefined;
    for (const s of [first, second]) {
      const entry = (await readTree(fx, secrets, s.tree)).find(inP2);
      if (entry) found = { id: s.id, name: entry.name };
    }
    const out = destination();
    expectRefused(await restore([found!.id, '--include', found!.name, '--target', out]), 1, p2);
    await expectNothingWritten(out);
    const repaired = await runCli(['repair', 'index', '--repo', fx.repo, '--credentials', fx.cred]);
    assert.equal(repaired.code, 3, repaired.stderr);
    assert.equal(warningsAbout(repaired, p2).length, 1, repaired.stderr);
  });
});
