import type { PrivateKey, PublicKey } from 'openpgp';
import { randomBytes } from 'node:crypto';
import { contentPassword, deriveRepoSecrets, newKey, type RepoSecrets } from '../crypto/kdf.js';
import type { Sealing, Unsealing } from '../crypto/envelope.js';
import { readPublicKeys } from '../crypto/keys.js';
import { PASSPHRASE_CONFIG } from '../crypto/openpgp-config.js';
import { ConfigError, KbrackupError, NotFoundError, RepoMissingError, WrongKeyError } from '../errors.js';
import type { Target } from '../targets/target.js';
import { collectBounded } from '../util/bounded.js';
import type { Credentials } from './credentials.js';
import { parseRepoConfig, type ChunkerConfig, type RepoConfig } from './format.js';
import { Layout } from './layout.js';
import { getSealedJson, putSealedBytes } from './objects.js';

/** What a caller holds to open a repository. */
export interface Access {
  credentials?: Credentials;
  privateKey?: PrivateKey;
  passphrase?: string;
}

/** Secrets kept in keys/*, encrypted to the recipients or the passphrase. */
interface KeyFile {
  repository: string;
  repoKey: string;
  contentKey?: string;
}

/** An opened repository: its target, config, and the keys this process holds. */
export interface Repository {
  target: Target;
  config: RepoConfig;
  /** Present when the repository key is known (backup, or restore with a private key). */
  secrets: RepoSecrets | undefined;
  /** Who can open new content objects: the recipients (or, passphrase-only, the content key). */
  contentSealing: Sealing;
  /** Who can open new metadata objects: the recipients and the repository key. */
  metaSealing: Sealing;
  /** What this process can open. */
  unsealing: Unsealing;
}

/** Settings chosen once, at `init`. */
export interface InitOptions {
  recipients: { armored: string; source: string }[];
  passphrase: string | undefined;
  chunker: ChunkerConfig;
  packSize: number;
  smallFile: number;
}

/** Create a repository on an empty target; returns the credentials a backup job needs (recipient mode). */
export async function initRepository(target: Target, options: InitOptions): Promise<{ config: RepoConfig; credentials: Credentials | undefined }> {
  if (options.recipients.length === 0 && options.passphrase === undefined) {
    throw new ConfigError('init needs --recipient PUBLIC_KEY_FILE (write-only backups) or --passphrase-file FILE (passphrase-only repository)');
  }
  if (options.recipients.length > 0 && options.passphrase !== undefined) {
    throw new ConfigError('init takes either --recipient or --passphrase-file, not both: a passphrase repository lets every backup job decrypt everything');
  }
  await target.prepare();
  if (await target.head(Layout.config)) throw new ConfigError(`${target.description} already holds a kbrackup repository; refusing to initialise it again`);
  for await (const object of target.list('')) {
    throw new ConfigError(`${target.description} is not empty (it holds ${object.name}); init needs an empty folder, bucket prefix or remote directory`);
  }
  const recipients: PublicKey[] = [];
  for (const r of options.recipients) recipients.push(...(await readPublicKeys(r.armored, r.source)));
  const id = randomBytes(16).toString('hex');
  const repoKey = newKey();
  const secrets = deriveRepoSecrets(repoKey);
  const keyFile: KeyFile = { repository: id, repoKey: repoKey.toString('base64') };
  if (options.passphrase !== undefined) {
    keyFile.contentKey = newKey().toString('base64');
    const sealing = { recipients: [], passwords: [options.passphrase], passwordConfig: PASSPHRASE_CONFIG };
    await putSealedBytes(target, Layout.passphraseKey, Buffer.from(JSON.stringify(keyFile)), sealing);
  } else {
    await putSealedBytes(target, Layout.repoKey, Buffer.from(JSON.stringify(keyFile)), { recipients, passwords: [] });
  }
  await putSealedBytes(target, Layout.keyCheck, Buffer.from(JSON.stringify({ repository: id })), { recipients, passwords: [secrets.metadataPassword] });
  const config: RepoConfig = {
    format: 'kbrackup',
    version: 1,
    id,
    created: new Date().toISOString(),
    encryption: {
      mode: options.passphrase !== undefined ? 'passphrase' : 'recipients',
      recipients: recipients.map((k) => ({ fingerprint: k.getFingerprint(), userIds: k.getUserIDs() })),
    },
    chunker: options.chunker,
    packSize: options.packSize,
    smallFile: options.smallFile,
  };
  // Written last: a repository exists only once its config does, so a failed init can simply be retried.
  await target.put(Layout.config, { bytes: Buffer.from(`${JSON.stringify(config, null, 2)}\n`) });
  const credentials: Credentials | undefined =
    options.passphrase !== undefined
      ? undefined
      : { kind: 'kbrackup-backup-credentials', version: 1, repository: id, repoKey: keyFile.repoKey, recipients: options.recipients.map((r) => r.armored) };
  return { config, credentials };
}

/** Read kbrackup.json; a missing one means there is no repository here (exit code 10). */
export async function readRepoConfig(target: Target): Promise<RepoConfig> {
  let text: Buffer;
  try {
    text = await collectBounded(await target.get(Layout.config), 1024 * 1024, Layout.config);
  } catch (err) {
    if (err instanceof NotFoundError) throw new RepoMissingError(`no kbrackup repository at ${target.description}; create one with \`kbrackup init\``);
    throw err;
  }
  return parseRepoConfig(text.toString('utf8'), target.description);
}

/** Open a repository with whatever the caller holds, checking that it really belongs to it. */
export async function openRepository(target: Target, access: Access, known?: RepoConfig): Promise<Repository> {
  const config = known ?? (await readRepoConfig(target));
  if (config.encryption.mode === 'passphrase') return openWithPassphrase(target, config, access);
  if (access.credentials) return openWithCredentials(target, config, access.credentials);
  if (access.privateKey) return openWithPrivateKey(target, config, access.privateKey);
  throw new ConfigError(`${target.description} needs --credentials (backup credentials file) or --key (a recipient's private key)`);
}

async function openWithCredentials(target: Target, config: RepoConfig, creds: Credentials): Promise<Repository> {
  if (creds.repository !== config.id) {
    throw new WrongKeyError(`the --credentials file belongs to repository ${creds.repository}, but ${target.description} is repository ${config.id}`);
  }
  const recipients: PublicKey[] = [];
  for (const armored of creds.recipients) recipients.push(...(await readPublicKeys(armored, 'a recipient in --credentials')));
  const expected = new Set(config.encryption.recipients.map((r) => r.fingerprint));
  const given = new Set(recipients.map((k) => k.getFingerprint()));
  if (expected.size !== given.size || [...expected].some((f) => !given.has(f))) {
    throw new WrongKeyError(`the recipients in --credentials do not match the recipients recorded in ${target.description}/kbrackup.json`);
  }
  const secrets = deriveRepoSecrets(Buffer.from(creds.repoKey, 'base64'));
  const unsealing = { privateKeys: [], passwords: [secrets.metadataPassword] };
  await checkKey(target, config, unsealing);
  return { target, config, secrets, contentSealing: { recipients, passwords: [] }, metaSealing: { recipients, passwords: [secrets.metadataPassword] }, unsealing };
}

async function openWithPrivateKey(target: Target, config: RepoConfig, privateKey: PrivateKey): Promise<Repository> {
  const keyFile = await getSealedJson<KeyFile>(target, Layout.repoKey, { privateKeys: [privateKey], passwords: [] });
  const secrets = deriveRepoSecrets(Buffer.from(keyFile.repoKey, 'base64'));
  const recipients = [privateKey.toPublic()];
  return {
    target,
    config,
    secrets,
    contentSealing: { recipients, passwords: [] },
    metaSealing: { recipients, passwords: [secrets.metadataPassword] },
    unsealing: { privateKeys: [privateKey], passwords: [secrets.metadataPassword] },
  };
}

async function openWithPassphrase(target: Target, config: RepoConfig, access: Access): Promise<Repository> {
  if (access.passphrase === undefined) throw new ConfigError(`${target.description} is a passphrase-only repository; pass --passphrase-file`);
  let keyFile: KeyFile;
  try {
    keyFile = await getSealedJson<KeyFile>(target, Layout.passphraseKey, { privateKeys: [], passwords: [access.passphrase] });
  } catch (err) {
    if (err instanceof WrongKeyError) throw new WrongKeyError(`wrong passphrase for ${target.description}`, { cause: err });
    throw err;
  }
  if (!keyFile.contentKey) throw new KbrackupError(`${Layout.passphraseKey} in ${target.description} is damaged: it holds no content key`);
  const secrets = deriveRepoSecrets(Buffer.from(keyFile.repoKey, 'base64'));
  const content = contentPassword(Buffer.from(keyFile.contentKey, 'base64'));
  return {
    target,
    config,
    secrets,
    contentSealing: { recipients: [], passwords: [content] },
    metaSealing: { recipients: [], passwords: [secrets.metadataPassword] },
    unsealing: { privateKeys: [], passwords: [secrets.metadataPassword, content] },
  };
}

/** Fail early, with exit code 12, when the repository key does not open this repository's metadata. */
async function checkKey(target: Target, config: RepoConfig, unsealing: Unsealing): Promise<void> {
  const check = await getSealedJson<{ repository: string }>(target, Layout.keyCheck, unsealing);
  if (check.repository !== config.id) throw new WrongKeyError(`${target.description}: the key check object belongs to another repository`);
}
