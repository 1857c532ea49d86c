import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PublicKey } from 'openpgp';
import { keyCommitment, newKey } from '../src/crypto/kdf.js';
import { readPrivateKey, readPublicKeys, signDetached } from '../src/crypto/keys.js';
import { encodeKeyObject } from '../src/repo/keyring.js';
import { Layout } from '../src/repo/layout.js';
import { runCli, type RunResult } from './helpers/cli.js';
import { deleteObject, expectNothingWritten, expectRefused, keepPristine, ownerPublicKey, readObject, writeObject } from './helpers/forge.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

/**
 * The anchor the storage cannot replace: the owner's signature over kbrackup.json (checked by whoever
 * restores with the private key) and the config digest and recipients pinned in the backup credentials
 * (checked by every backup). Without it the storage could hand out a repository of its own making,
 * encrypted to the owner's public key (docs/SECURITY.md "The trust chain").
 */
describe('hostile storage against the trust anchor: kbrackup.json, its signature and keys/repo-key', () => {
  let fx: Fixture;
  let reset: () => Promise<void>;
  let src: string;
  let fingerprint: string;
  let attacker: { pub: PublicKey; key: string };
  let outs = 0;

  const destination = (): string => join(fx.dir, `out-${++outs}`);
  const restore = (repo = fx.repo): Promise<RunResult> => runCli(['restore', '--repo', repo, '--key', fx.key, 'latest', '--target', destination()]);
  const backup = (): Promise<RunResult> => runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, src]);
  const trust = (): Promise<RunResult> => runCli(['trust', '--repo', fx.repo, '--key', fx.key]);
  /** Restore is refused, naming `object`, and writes nothing. */
  const restoreRefused = async (object: string, reason: RegExp, code = 1) => {
    const out = destination();
    expectRefused(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out]), code, object, reason);
    await expectNothingWritten(out);
  };
  const config = async () => JSON.parse((await readObject(fx, Layout.config)).toString('utf8')) as Record<string, unknown>;
  const writeConfig = (value: Record<string, unknown>) => writeObject(fx, Layout.config, Buffer.from(`${JSON.stringify(value, null, 2)}\n`));
  const configName = () => `${fx.repo}/kbrackup.json`;

  before(async () => {
    fx = await makeFixture();
    src = join(fx.dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'a.txt'), 'alpha\n');
    expectCode(await backup(), 0);
    fingerprint = (await ownerPublicKey(fx)).getFingerprint();
    const out = join(fx.dir, 'keys', 'attacker');
    expectCode(await runCli(['keygen', '--out', out]), 0);
    attacker = { pub: (await readPublicKeys(await readFile(`${out}.pub.asc`, 'utf8'), 'attacker'))[0]!, key: `${out}.key.asc` };
    reset = await keepPristine(fx);
  });
  after(() => fx.cleanup());
  beforeEach(() => reset());

  it('an unsigned repository is refused by restore, ls and snapshots with --key, with a clear message, until `kbrackup trust`', async () => {
    const repo = join(fx.dir, 'unsigned');
    const cred = join(fx.dir, 'unsigned.cred');
    const init = expectCode(await runCli(['init', '--repo', repo, '--recipient', fx.pub, '--credentials-out', cred]), 0);
    assert.match(init.stdout, /not signed: restore refuses it until you run `kbrackup trust/);
    expectCode(await runCli(['backup', '--repo', repo, '--credentials', cred, src]), 0);
    const unsigned = new RegExp(`is not signed by key ${fingerprint}, so restore cannot tell it from one the storage forged; .*kbrackup trust`);
    const out = destination();
    expectRefused(await runCli(['restore', '--repo', repo, '--key', fx.key, 'latest', '--target', out]), 1, repo, unsigned);
    await expectNothingWritten(out);
    expectRefused(await runCli(['ls', '--repo', repo, '--key', fx.key, 'latest']), 1, repo, unsigned);
    expectRefused(await runCli(['snapshots', '--repo', repo, '--key', fx.key]), 1, repo, unsigned);
    // The backup credentials pin kbrackup.json's digest: they need no signature.
    expectCode(await runCli(['snapshots', '--repo', repo, '--credentials', cred]), 0);
    expectCode(await runCli(['trust', '--repo', repo, '--key', fx.key]), 0);
    expectCode(await restore(repo), 0);
  });

  it('a removed, foreign or garbled signature is refused, and `trust` does not sign over a failing one', async () => {
    const signature = Layout.signature(fingerprint);
    const genuine = await readObject(fx, signature);
    await deleteObject(fx, signature);
    await restoreRefused(fx.repo, /is not signed by key/);

    // The attacker's own signature stored under the owner's fingerprint.
    const theirs = await readPrivateKey(await readFile(attacker.key, 'utf8'), undefined, 'attacker');
    await writeObject(fx, signature, await signDetached(theirs, await readObject(fx, Layout.config)));
    await restoreRefused(configName(), /does not match the owner's signature keys\/signatures\/[0-9a-f]+: it was altered on the storage/);
    // `trust` does not sign over a signature that fails: that would bless what the storage changed.
    expectRefused(await trust(), 1, configName(), /does not match the owner's signature/);
    await writeObject(fx, signature, Buffer.from('not a signature'));
    await restoreRefused(signature, /is not an OpenPGP signature/);
    expectRefused(await trust(), 1, signature, /is not an OpenPGP signature/);

    // The owner's genuine signature, of another repository's kbrackup.json.
    const other = join(fx.dir, 'other-signed');
    expectCode(await runCli(['init', '--repo', other, '--key', fx.key, '--credentials-out', join(fx.dir, 'other-signed.cred')]), 0);
    await writeObject(fx, signature, await readFile(join(other, signature)));
    await restoreRefused(configName(), /does not match the owner's signature/);
    await writeObject(fx, signature, genuine);
    expectCode(await restore(), 0);
    // On an intact signed repository `trust` changes nothing.
    expectCode(await trust(), 0);
    assert.deepEqual(await readObject(fx, signature), genuine);
  });

  it('a replaced kbrackup.json (other recipients, other settings, a whole repository of the storage\'s own) is refused by restore and by backup', async () => {
    const original = await config();
    const encryption = original.encryption as { recipients: unknown[] };
    const variants = [
      { ...original, encryption: { ...encryption, recipients: [...encryption.recipients, { fingerprint: attacker.pub.getFingerprint(), userIds: [] }] } },
      { ...original, chunker: { algorithm: 'fixed', size: 65536 } },
    ];
    for (const changed of variants) {
      await writeConfig(changed);
      await restoreRefused(configName(), /does not match the owner's signature/);
      expectRefused(await backup(), 1, configName(), /is not the one these credentials were made for: it was replaced on the storage/);
      expectRefused(await runCli(['snapshots', '--repo', fx.repo, '--credentials', fx.cred]), 1, configName(), /is not the one these credentials were made for/);
      expectRefused(await trust(), 1, configName(), /does not match the owner's signature/);
    }
    // The storage's own repository: its key wrapped for the owner, a config committing to it, no valid signature.
    const repoKey = newKey();
    await writeConfig({ ...original, keyCommitment: keyCommitment(repoKey, String(original.id)) });
    await writeObject(fx, Layout.repoKey, await encodeKeyObject({ repository: String(original.id), repoKey: repoKey.toString('base64') }, { recipients: [await ownerPublicKey(fx)], passwords: [] }));
    await restoreRefused(configName(), /does not match the owner's signature/);
    await deleteObject(fx, Layout.signature(fingerprint));
    await restoreRefused(fx.repo, /is not signed by key/);
  });

  it('keys/repo-key replaced: backup refuses other recipients, restore refuses another key, never as a wrong key (12)', async () => {
    const { id } = await config();
    const made = (recipients: PublicKey[]) => encodeKeyObject({ repository: String(id), repoKey: newKey().toString('base64') }, { recipients, passwords: [] });
    const owner = await ownerPublicKey(fx);
    // Wrapped for the owner and the attacker: backups refuse to trust it, restores refuse its key.
    await writeObject(fx, Layout.repoKey, await made([owner, attacker.pub]));
    expectRefused(await backup(), 1, Layout.repoKey, /is encrypted to key [0-9a-f]+, which is not a recipient in --credentials: it was replaced on the storage/);
    await restoreRefused(Layout.repoKey, /holds a key that is not the one kbrackup.json commits to: it was replaced/);
    // Wrapped for the attacker alone: an integrity error (exit 1), not "wrong key" (exit 12).
    await writeObject(fx, Layout.repoKey, await made([attacker.pub]));
    expectRefused(await backup(), 1, Layout.repoKey, /is not a recipient in --credentials/);
    await restoreRefused(Layout.repoKey, /damaged key packets: none opens with the key given/);
    // Wrapped for the owner alone: backups never read it (they hold the key), restores refuse it.
    await writeObject(fx, Layout.repoKey, await made([owner]));
    expectCode(await backup(), 0);
    await restoreRefused(Layout.repoKey, /holds a key that is not the one kbrackup.json commits to/);
    // `trust` (trust on first use) checks the key object against the config before it signs anything.
    await deleteObject(fx, Layout.signature(fingerprint));
    expectRefused(await trust(), 1, Layout.repoKey, /holds a key that is not the one kbrackup.json commits to/);
  });

  it('a damaged keys/repo-key is an integrity error naming it (exit 1)', async () => {
    const genuine = await readObject(fx, Layout.repoKey);
    for (const at of [0, 10, 100]) {
      const damaged = Buffer.from(genuine);
      damaged[at]! ^= 0x20;
      await writeObject(fx, Layout.repoKey, damaged);
      await restoreRefused(Layout.repoKey, /damaged|not OpenPGP|authentication failed/);
    }
  });

  it('an older repository format, or kbrackup.json turned into a passphrase repository, is refused with a clear message', async () => {
    const original = await config();
    await writeConfig({ ...original, version: 1 });
    const out = destination();
    const old = await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out]);
    expectRefused(old, 1, fx.repo, /has repository format version 1, which this kbrackup no longer reads/);
    await expectNothingWritten(out);
    // A passphrase repository would need no signature, but opens only with a key object under a passphrase the storage does not know.
    await writeConfig({ ...original, encryption: { mode: 'passphrase', recipients: [] } });
    await restoreRefused(fx.repo, /passphrase-only repository/);
  });
});
