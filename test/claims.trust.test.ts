import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as openpgp from 'openpgp';
import { headerLength, headerRecipients } from '../src/crypto/envelope.js';
import { newKey } from '../src/crypto/kdf.js';
import { signDetached } from '../src/crypto/keys.js';
import { ConfigError, IntegrityError, KbrackupError, RepoMissingError, UntrustedError, WrongKeyError } from '../src/errors.js';
import type { Credentials } from '../src/repo/credentials.js';
import { encodeKeyObject, initRepository, openRepository, readStoredConfig, trustRepository, type InitOptions } from '../src/repo/keyring.js';
import { Layout } from '../src/repo/layout.js';
import { FilesystemTarget } from '../src/targets/filesystem/filesystem.js';
import { failsWith } from './helpers/expect.js';
import { writeObject } from './helpers/forge.js';
import { makeKey, makeLocalRepo, type LocalRepo } from './helpers/local-repo.js';

/**
 * The trust chain's anchor (docs/SECURITY.md "The trust chain" 1 and 2, README "Threat model"),
 * checked on repo/keyring.ts in this process: the owner's signature makes kbrackup.json genuine, its
 * commitment the repository key; backup credentials pin both; a passphrase opens only its own
 * repository. Fast enough for StrykerJS to run against every mutant (scripts/mutation.sh); the CLI
 * shows the same in hostile-trust.test.ts.
 */
const CHUNK = 256 * 1024;

describe('the trust chain: the owner\'s signature anchors the config, the config the key (keyring.ts)', () => {
  let local: LocalRepo;
  let pristine: string;
  let other: Awaited<ReturnType<typeof makeKey>>;
  const options = (o: Partial<InitOptions>): InitOptions => ({ recipients: [], signer: undefined, passphrase: undefined, chunker: { algorithm: 'fixed', size: CHUNK }, packSize: 1 << 24, smallFile: 1 << 16, bundleSize: CHUNK, ...o });
  /** Run `attack` on a copy of the repository, then put the genuine one back. */
  const attacked = async (attack: () => Promise<void>, check: () => Promise<void>) => {
    await attack();
    try {
      await check();
    } finally {
      await rm(local.repo, { recursive: true, force: true });
      await copyDir(pristine, local.repo);
    }
  };
  const copyDir = (from: string, to: string) => cp(from, to, { recursive: true });
  const signature = () => Layout.signature(local.key.getFingerprint());

  before(async () => {
    local = await makeLocalRepo({ 'a.txt': 'alpha\n' });
    other = await makeKey('other');
    pristine = `${local.repo}.pristine`;
    await copyDir(local.repo, pristine);
  });
  after(() => local.cleanup());

  it('the owner\'s key and the credentials open the genuine repository', async () => {
    assert.equal((await local.open()).canReadContent, true);
    assert.equal((await local.open({ credentials: local.credentials })).canReadContent, false);
    await assert.rejects(local.open({}), failsWith(ConfigError, /needs --credentials \(backup credentials file\) or --key/));
    await assert.rejects(local.open({ privateKey: other.privateKey }), failsWith(WrongKeyError, /is not one of the recipients/));
  });

  it('a missing, foreign or garbled signature, or a config altered after signing, is refused', async () => {
    await attacked(() => rm(join(local.repo, signature())), () => assert.rejects(local.open(), failsWith(UntrustedError, /is not signed by key .*kbrackup trust/)));
    const config = await readFile(join(local.repo, Layout.config));
    await attacked(
      async () => writeObject(local, signature(), Buffer.from(await signDetached(other.privateKey, config))),
      () => assert.rejects(local.open(), failsWith(IntegrityError, /kbrackup.json: does not match the owner's signature/)),
    );
    await attacked(() => writeObject(local, signature(), Buffer.from('not a signature')), () => assert.rejects(local.open(), failsWith(IntegrityError, /is not an OpenPGP signature/)));
    await attacked(
      () => writeObject(local, Layout.config, Buffer.from(config.toString().replace('"packSize": 16777216', '"packSize": 16777217'))),
      async () => {
        await assert.rejects(local.open(), failsWith(IntegrityError, /does not match the owner's signature/));
        await assert.rejects(local.open({ credentials: local.credentials }), failsWith(IntegrityError, /is not the one these credentials were made for/));
        // trust does not bless an alteration over the signature that proves it.
        await assert.rejects(trustRepository(local.target, local.key), failsWith(IntegrityError, /does not match the owner's signature/));
      },
    );
  });

  it('a replaced or missing keys/repo-key is refused by restores and by backups, never as a wrong key', async () => {
    const stored = await readStoredConfig(local.target);
    const made = newKey();
    const ownerPub = local.key.toPublic();
    // The storage's own key wrapped for the owner: the signed config's commitment says it is not the one.
    await attacked(
      async () => writeObject(local, Layout.repoKey, await encodeKeyObject({ repository: stored.config.id, repoKey: made.toString('base64') }, { recipients: [ownerPub], passwords: [] })),
      () => assert.rejects(local.open(), failsWith(IntegrityError, /^keys\/repo-key: holds a key that is not the one kbrackup.json commits to/)),
    );
    // The genuine key copied into another repository's key object: the id says so.
    await attacked(
      async () => writeObject(local, Layout.repoKey, await encodeKeyObject({ repository: 'f'.repeat(32), repoKey: local.credentials.repoKey }, { recipients: [ownerPub], passwords: [] })),
      () => assert.rejects(local.open(), failsWith(IntegrityError, /holds a key that is not the one/)),
    );
    await attacked(
      async () => writeObject(local, Layout.repoKey, await encodeKeyObject({ repository: stored.config.id, repoKey: 'short' }, { recipients: [ownerPub], passwords: [] })),
      () => assert.rejects(local.open(), failsWith(IntegrityError, /field "repoKey" is malformed/)),
    );
    await attacked(
      async () => writeObject(local, Layout.repoKey, await encodeKeyObject({ repository: stored.config.id, repoKey: 32 } as never, { recipients: [ownerPub], passwords: [] })),
      () => assert.rejects(local.open(), failsWith(IntegrityError, /field "repoKey" is malformed/)),
    );
    // A key object sealed for a password only names no recipient: backups refuse it too.
    await attacked(
      async () => writeObject(local, Layout.repoKey, await encodeKeyObject({ repository: stored.config.id, repoKey: local.credentials.repoKey }, { recipients: [], passwords: ['storage'] })),
      () => assert.rejects(local.open({ credentials: local.credentials }), failsWith(IntegrityError, /^keys\/repo-key: is encrypted to no recipient; damaged or replaced/)),
    );
    // A key object that adds a reader: backups refuse it.
    await attacked(
      async () => writeObject(local, Layout.repoKey, await encodeKeyObject({ repository: stored.config.id, repoKey: local.credentials.repoKey }, { recipients: [ownerPub, other.privateKey.toPublic()], passwords: [] })),
      () => assert.rejects(local.open({ credentials: local.credentials }), failsWith(IntegrityError, /^keys\/repo-key: is encrypted to key [0-9a-f]+, which is not a recipient in --credentials/)),
    );
    // Wrapped for someone else only: for the owner's key it is damage (the signed config lists it), not a wrong key.
    await attacked(
      async () => writeObject(local, Layout.repoKey, await encodeKeyObject({ repository: stored.config.id, repoKey: made.toString('base64') }, { recipients: [other.privateKey.toPublic()], passwords: [] })),
      () => assert.rejects(local.open(), failsWith(IntegrityError, /damaged key packets/)),
    );
    await attacked(
      () => rm(join(local.repo, Layout.repoKey)),
      async () => {
        await assert.rejects(local.open(), failsWith(IntegrityError, /^keys\/repo-key: is missing from/));
        await assert.rejects(local.open({ credentials: local.credentials }), failsWith(IntegrityError, /^keys\/repo-key: is missing from/));
      },
    );
  });

  it('credentials of another repository, or with another key, are a wrong key (exit 12)', async () => {
    const cases: [Partial<Credentials>, RegExp][] = [
      [{ repository: 'f'.repeat(32) }, /belongs to repository f{32}/],
      [{ repoKey: Buffer.alloc(32, 3).toString('base64') }, /the repository key in --credentials does not belong/],
    ];
    for (const [change, reason] of cases) {
      await assert.rejects(local.open({ credentials: { ...local.credentials, ...change } }), (err: unknown) => failsWith(WrongKeyError, reason)(err) && (err as WrongKeyError).exitCode === 12);
    }
    await assert.rejects(readStoredConfig(new FilesystemTarget(join(local.dir, 'none'))), (err: unknown) => err instanceof RepoMissingError && err.exitCode === 10);
  });

  it('a repository made with --recipient only is refused until `trust` signs it; trust signs once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kbrackup-trust-'));
    try {
      const target = new FilesystemTarget(join(dir, 'r'));
      await initRepository(target, options({ recipients: [{ armored: other.armoredPublic, source: 'other.pub' }] }));
      await assert.rejects(openRepository(target, { privateKey: other.privateKey }), UntrustedError);
      await trustRepository(target, other.privateKey);
      const signed = await readFile(join(dir, 'r', Layout.signature(other.privateKey.getFingerprint())));
      assert.equal((await openRepository(target, { privateKey: other.privateKey })).canReadContent, true);
      await trustRepository(target, other.privateKey);
      assert.deepEqual(await readFile(join(dir, 'r', Layout.signature(other.privateKey.getFingerprint()))), signed, 'a valid signature is kept');
      await assert.rejects(trustRepository(target, local.key), failsWith(WrongKeyError, /cannot decrypt this repository's data/));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a passphrase repository opens only with its passphrase; init refuses what would not be write-only or not empty', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kbrackup-pass-'));
    try {
      const target = new FilesystemTarget(join(dir, 'p'));
      const { credentials } = await initRepository(target, options({ passphrase: 'right' }));
      assert.equal(credentials, undefined);
      const repo = await openRepository(target, { passphrase: 'right' });
      assert.equal(repo.canReadContent, true);
      assert.equal(repo.contentSealing.recipients.length, 0);
      assert.equal(repo.contentSealing.passwords.length, 1);
      await assert.rejects(openRepository(target, { passphrase: 'wrong' }), failsWith(WrongKeyError, /wrong passphrase for/));
      await assert.rejects(openRepository(target, { privateKey: local.key }), failsWith(ConfigError, /is a passphrase-only repository; pass --passphrase-file/));
      await assert.rejects(trustRepository(target, local.key), failsWith(KbrackupError, /is a passphrase repository/));
      await assert.rejects(initRepository(target, options({ passphrase: 'again' })), failsWith(ConfigError, /already holds a kbrackup repository/));
      await writeFile(join(dir, 'stray'), 'x');
      await assert.rejects(initRepository(new FilesystemTarget(dir), options({ passphrase: 'x' })), failsWith(ConfigError, /is not empty \(it holds /));
      await assert.rejects(initRepository(new FilesystemTarget(join(dir, 'q')), options({})), failsWith(ConfigError, /init needs --key/));
      await assert.rejects(initRepository(new FilesystemTarget(join(dir, 'q')), options({ signer: local.key, passphrase: 'x' })), failsWith(ConfigError, /either --key\/--recipient or --passphrase-file, not both/));
      await assert.rejects(initRepository(new FilesystemTarget(join(dir, 'q')), options({ recipients: [{ armored: other.armoredPublic, source: 'o' }], passphrase: 'x' })), failsWith(ConfigError, /either --key\/--recipient or --passphrase-file, not both/));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('init with several recipients wraps the repository key for each, and signs with the owner', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kbrackup-many-'));
    try {
      const target = new FilesystemTarget(join(dir, 'm'));
      const third = await makeKey('third');
      const { config, credentials } = await initRepository(target, options({ signer: local.key, recipients: [{ armored: other.armoredPublic, source: 'o' }, { armored: third.armoredPublic, source: 't' }, { armored: other.armoredPublic, source: 'again' }] }));
      assert.deepEqual(config.encryption.recipients.map((r) => r.fingerprint), [local.key, other.privateKey, third.privateKey].map((k) => k.getFingerprint()));
      assert.equal(credentials!.recipients.length, 3);
      const bytes = await readFile(join(dir, 'm', Layout.repoKey));
      const header = bytes.subarray(0, headerLength(bytes, 'k'));
      assert.equal((await headerRecipients(header, 'k')).length, 3);
      // Only the recipients can unwrap it: a password packet beside theirs would open it for whoever knows the password.
      const packets = (await openpgp.readMessage({ binaryMessage: header })).packets;
      assert.equal(packets.filterByTag(openpgp.enums.packet.symEncryptedSessionKey).length, 0, 'no password (SKESK) packet');
      assert.equal(packets.length, 3, 'one key packet per recipient, nothing else');
      assert.equal((await openRepository(target, { privateKey: local.key })).canReadContent, true);
      await trustRepository(target, third.privateKey);
      assert.equal((await openRepository(target, { privateKey: third.privateKey })).canReadContent, true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
