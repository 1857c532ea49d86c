import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createHmac } from 'node:crypto';
import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { headerLength, headerRecipients, unsealSessionKey } from '../src/crypto/envelope.js';
import { contentPassword } from '../src/crypto/kdf.js';
import { IntegrityError, KbrackupError, WrongKeyError } from '../src/errors.js';
import type { IndexEntry } from '../src/repo/index/records.js';
import { Layout } from '../src/repo/layout.js';
import type { Repository } from '../src/repo/repository.js';
import { collect, failsWith } from './helpers/expect.js';
import { forgeChunk, readIndex, readObject, readTree, writeObject } from './helpers/forge.js';
import { makeLocalRepo, type LocalRepo } from './helpers/local-repo.js';

/**
 * Every blob a restore gets was checked against its keyed id, and backup credentials open no content
 * (README "Threat model", docs/SECURITY.md "The trust chain" 5 and "Backup credentials"), checked on
 * repo/content-reader.ts in this process: fast enough for StrykerJS to run against every mutant
 * (scripts/mutation.sh). The CLI shows the same in hostile-storage.test.ts.
 */
const A = 'alpha\n';
const B = 'bravo\n';
const CHUNK = 256 * 1024;
/** 2.5 chunks of pseudo-random bytes: three different chunks of 256, 256 and 128 KiB. */
const BIG = createCipheriv('aes-256-ctr', Buffer.alloc(32, 5), Buffer.alloc(16)).update(Buffer.alloc(CHUNK * 2.5));

describe('every blob is checked against its keyed id (content-reader)', () => {
  let local: LocalRepo;
  let repo: Repository;
  let index: IndexEntry[];
  const idOf = (data: string) => createHmac('sha256', repo.secrets.chunkIdKey).update(data).digest();
  const entryOf = (data: string) => index.find((e) => e.id.equals(idOf(data)))!;
  let bigChunks: IndexEntry[];

  before(async () => {
    local = await makeLocalRepo({ 'a.txt': A, 'b.txt': B, 'big.bin': BIG });
    repo = await local.open();
    index = await readIndex(local, repo.secrets);
    const big = (await readTree(local, repo.secrets, local.snapshot.tree)).find((e) => e.name === 'big.bin')!;
    assert.ok(big.type === 'file' && 'parts' in big.content);
    bigChunks = big.content.parts.map((p) => index.find((e) => 'id' in p && e.id.toString('hex') === p.id)!);
    assert.equal(bigChunks.length, 3);
  });
  after(() => local.cleanup());

  it('genuine blobs of a pack and chunks of a large file come back byte-exact', async () => {
    const [a, b] = [entryOf(A), entryOf(B)];
    assert.equal(a.loc.kind, 'pack');
    const sorted = [a, b].sort((x, y) => x.loc.blobOffset - y.loc.blobOffset);
    assert.deepEqual((await collect(repo.readBlobs(sorted))).map((v) => v.data.toString()), sorted.map((e) => (e === a ? A : B)));
    const pieces = await collect(await repo.openBlob(bigChunks[2]!));
    assert.deepEqual(Buffer.concat(pieces), BIG.subarray(2 * CHUNK));
    // Several chunks' bundles are read in one pass when the index puts them in one object.
    assert.deepEqual(await collect(repo.readBlobs([])), []);
  });

  it('an index pointing an id at another blob, at more bytes, or at overlapping bundles is refused, naming the object', async () => {
    const [a, b] = [entryOf(A), entryOf(B)];
    const object = Layout.pack(a.loc.objectId);
    // b.txt's bytes under a.txt's id: the same length, so only the keyed id tells.
    await assert.rejects(collect(repo.readBlobs([{ id: a.id, loc: b.loc }])), failsWith(IntegrityError, new RegExp(`^${object}: chunk ${a.id.toString('hex')} does not match its id`)));
    await assert.rejects(collect(repo.readBlobs([{ id: a.id, loc: { ...a.loc, rawLength: a.loc.rawLength + 1_000_000 } }])), failsWith(IntegrityError, /has \d+ bytes, the index says 1000006/));
    await assert.rejects(collect(repo.readBlobs([a, { id: b.id, loc: { ...b.loc, bundleOffset: b.loc.bundleOffset + 1 } }])), failsWith(IntegrityError, /index locations overlap/));
    await assert.rejects(collect(repo.readBlobs([{ id: a.id, loc: { ...a.loc, bundleLength: a.loc.bundleLength + 1_000_000 } }])), failsWith(IntegrityError, /shorter than the index says \(truncated\)/));
  });

  it('a streamed chunk is refused at its end when its bytes do not match its id or its length', async () => {
    const [c0, c1] = bigChunks as [IndexEntry, IndexEntry];
    const object = Layout.chunk(c0.loc.objectId);
    await assert.rejects(collect(await repo.openBlob({ id: c0.id, loc: c1.loc })), failsWith(IntegrityError, new RegExp(`^${Layout.chunk(c1.loc.objectId)}: chunk ${c0.id.toString('hex')} does not match its id`)));
    await assert.rejects(collect(await repo.openBlob({ id: c0.id, loc: { ...c0.loc, rawLength: CHUNK - 1 } })), failsWith(IntegrityError, new RegExp(`^${object}: blob .* is longer than the ${CHUNK - 1} bytes the index says`)));
    await assert.rejects(collect(await repo.openBlob({ id: c0.id, loc: { ...c0.loc, rawLength: CHUNK + 1 } })), failsWith(IntegrityError, new RegExp(`has ${CHUNK} bytes, the index says ${CHUNK + 1}`)));
    await assert.rejects(repo.openBlob({ id: c0.id, loc: { ...c0.loc, blobOffset: 1 } }), failsWith(IntegrityError, /a streamed blob must be a whole bundle/));
  });

  it('swapped chunk objects on the storage are refused at the first one', async () => {
    const [c0, c1] = bigChunks.map((e) => join(local.repo, Layout.chunk(e.loc.objectId))) as [string, string];
    await rename(c0, `${c0}.x`);
    await rename(c1, c0);
    await rename(`${c0}.x`, c1);
    try {
      const fresh = await local.open();
      await assert.rejects(collect(await fresh.openBlob(bigChunks[0]!)), failsWith(IntegrityError, /does not match its id \(a swapped, replaced or foreign chunk\)/));
    } finally {
      await rename(c0, `${c0}.x`);
      await rename(c1, c0);
      await rename(`${c0}.x`, c1);
    }
  });

  it('content trailers list their own blobs; a short or lying object is refused', async () => {
    const c0 = bigChunks[0]!;
    const listed = await repo.trailer('chunk', c0.loc.objectId);
    assert.deepEqual(listed.map((e) => e.id.toString('hex')), [c0.id.toString('hex')]);
    assert.deepEqual(await repo.trailer('chunk', c0.loc.objectId, (await stat(join(local.repo, Layout.chunk(c0.loc.objectId)))).size), listed);
    // A pack copied under a chunk's name: its trailer is sealed under the pack's name, so it does not open.
    const pack = entryOf(A).loc.objectId;
    await writeObject(local, Layout.chunk(pack), await readObject(local, Layout.pack(pack)));
    await assert.rejects(repo.trailer('chunk', pack), failsWith(IntegrityError, new RegExp(`^${Layout.chunk(pack)}#blobs: authentication failed`)));
    const fake = 'f'.repeat(64);
    await assert.rejects(repo.trailer('chunk', fake), failsWith(IntegrityError, /is missing/));
    await writeObject(local, Layout.chunk(fake), Buffer.from('KBPT'));
    await assert.rejects(repo.trailer('chunk', fake), failsWith(IntegrityError, /is too short to be a content object/));
    const footer = Buffer.alloc(8);
    footer.writeUInt32BE(1000);
    footer.write('KBPT', 4);
    await writeObject(local, Layout.chunk(fake), Buffer.concat([Buffer.alloc(100), footer]));
    await assert.rejects(repo.trailer('chunk', fake), failsWith(IntegrityError, /announces a trailer longer than itself/));
    // Longer than what comes before the footer by a few bytes only.
    footer.writeUInt32BE(104);
    await writeObject(local, Layout.chunk(fake), Buffer.concat([Buffer.alloc(100), footer]));
    await assert.rejects(repo.trailer('chunk', fake), failsWith(IntegrityError, /announces a trailer longer than itself/));
  });

  it('a bundle that inflates past the largest a repository writes is refused, even with a matching id', async () => {
    // Anyone with the public key (a holder of the backup credentials) can seal 4 MiB of zeros into a few KiB.
    const data = Buffer.alloc(4 * 1024 * 1024);
    const bomb = await forgeChunk(local.key.toPublic(), data, 'zlib');
    assert.ok(bomb.bundleLength < 64 * 1024);
    const objectId = 'e'.repeat(64);
    await writeObject(local, Layout.chunk(objectId), bomb.bytes);
    const id = createHmac('sha256', repo.secrets.chunkIdKey).update(data).digest();
    const wanted = { id, loc: { kind: 'chunk' as const, objectId, keyOffset: 0, bundleOffset: bomb.bundleOffset, bundleLength: bomb.bundleLength, blobOffset: 0, rawLength: data.length } };
    await assert.rejects(collect(repo.readBlobs([wanted])), failsWith(IntegrityError, new RegExp(`^${Layout.chunk(objectId)}: does not decompress`)));
  });

  it('backup credentials open no content: no reader, no key packet for them, no derived key opens one', async () => {
    const withCredentials = await local.open({ credentials: local.credentials });
    assert.equal(withCredentials.canReadContent, false);
    assert.equal(repo.canReadContent, true);
    const cannot = failsWith(KbrackupError, /backup credentials cannot decrypt them/);
    assert.throws(() => withCredentials.readBlobs([entryOf(A)]), cannot);
    assert.throws(() => withCredentials.openBlob(bigChunks[0]!), cannot);
    // New content is sealed for the recipients only: no password a holder of the credentials could know.
    assert.deepEqual(withCredentials.contentSealing.passwords, []);
    assert.deepEqual(withCredentials.contentSealing.recipients.map((k) => k.getFingerprint()), [local.key.getFingerprint()]);
    const secrets = withCredentials.secrets;
    const repoKey = Buffer.from(local.credentials.repoKey, 'base64');
    const guesses = [repoKey, secrets.chunkIdKey, secrets.treeIdKey, secrets.metadataKey, secrets.chunkerSeed].flatMap((k) => [k.toString('hex'), k.toString('base64'), contentPassword(k)]);
    const subkeys = [local.key, ...local.key.getSubkeys()].map((k) => k.getFingerprint());
    const objects = [...new Set(index.map((e) => (e.loc.kind === 'chunk' ? Layout.chunk(e.loc.objectId) : Layout.pack(e.loc.objectId))))];
    assert.equal(objects.length, 4, 'three chunks and a pack');
    for (const name of objects) {
      const bytes = await readObject(local, name);
      const header = bytes.subarray(0, headerLength(bytes, name));
      const to = await headerRecipients(header, name);
      assert.ok(to.length > 0 && to.every((f) => subkeys.includes(f)), `${name} is sealed for ${to.join(', ')}`);
      await assert.rejects(unsealSessionKey(header, { privateKeys: [], passwords: guesses }, name), WrongKeyError, name);
    }
  });
});

describe('blobs of one pack read together come back whole, each once, in order (content-reader)', () => {
  let local: LocalRepo;
  let repo: Repository;
  /** 15 small files of 60 KiB that do not compress: several bundles of one pack, some more than the read gap apart. */
  const files = Object.fromEntries(Array.from({ length: 15 }, (_, k) => [`f${String(k).padStart(2, '0')}`, createCipheriv('aes-256-ctr', Buffer.alloc(32, k + 1), Buffer.alloc(16)).update(Buffer.alloc(60 * 1024))]));
  let blobs: { entry: IndexEntry; data: Buffer }[];

  before(async () => {
    local = await makeLocalRepo(files);
    repo = await local.open();
    const index = await readIndex(local, repo.secrets);
    blobs = Object.values(files)
      .map((data) => ({ entry: index.find((e) => e.id.equals(createHmac('sha256', repo.secrets.chunkIdKey).update(data).digest()))!, data }))
      .sort((x, y) => x.entry.loc.bundleOffset - y.entry.loc.bundleOffset || x.entry.loc.blobOffset - y.entry.loc.blobOffset);
  });
  after(() => local.cleanup());

  it('any selection of a pack\'s blobs — all, every other one, whole bundles skipped, far apart — is read byte-exact', async () => {
    const bundles = [...new Set(blobs.map((b) => b.entry.loc.bundleOffset))];
    assert.equal(new Set(blobs.map((b) => b.entry.loc.objectId)).size, 1, 'one pack');
    assert.ok(bundles.length >= 3, `${bundles.length} bundles`);
    assert.ok(bundles.at(-1)! - bundles[0]! > 2 * 256 * 1024, 'the first and last bundle are further apart than one read covers');
    const inBundle = (n: number) => blobs.filter((b) => b.entry.loc.bundleOffset === bundles[n]);
    const selections = [
      blobs,
      blobs.filter((_, k) => k % 2 === 0),
      [...inBundle(0), ...inBundle(2)],
      [blobs[0]!, blobs.at(-1)!],
      [...inBundle(1).slice(1), ...inBundle(bundles.length - 1)],
      [blobs.at(-1)!],
    ];
    for (const selection of selections) {
      const read = await collect(repo.readBlobs(selection.map((b) => b.entry)));
      assert.equal(read.length, selection.length);
      read.forEach((r, k) => assert.ok(r.id.equals(selection[k]!.entry.id) && r.data.equals(selection[k]!.data), `blob ${k} of ${selection.length}`));
    }
  });
});
