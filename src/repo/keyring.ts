import { randomBytes } from 'node:crypto';
import type { PrivateKey, PublicKey } from 'openpgp';
import { headerLength, headerRecipients, sealSessionKey, splitHeader, unsealSessionKey, type Sealing } from '../crypto/envelope.js';
import { contentPassword, deriveRepoSecrets, keyCommitment, newKey } from '../crypto/kdf.js';
import { readPublicKeys, signDetached, verifyDetached } from '../crypto/keys.js';
import { PASSPHRASE_CONFIG } from '../crypto/openpgp-config.js';
import { newSessionKey } from '../crypto/seipd.js';
import { ConfigError, IntegrityError, KbrackupError, NotFoundError, RepoMissingError, UntrustedError, WrongKeyError } from '../errors.js';
import type { Target } from '../targets/target.js';
import { collectBounded } from '../util/bounded.js';
import type { Credentials } from './credentials.js';
import { FORMAT_VERSION, encodeRepoConfig, parseRepoConfig, type ChunkerConfig, type RepoConfig, type StoredConfig } from './format.js';
import { Layout } from './layout.js';
import { readBlobBytes, sealBytes } from './blob.js';
import { Repository, type RepositoryKeys, type WarningHandler } from './repository.js';

/**
 * The trust chain (docs/SECURITY.md): the owner's signature over kbrackup.json's exact bytes (or, for
 * a backup job, the digest its credentials pin) makes the config genuine; the config's commitment makes
 * the unwrapped repository key genuine; the repository key authenticates every metadata object; and
 * keyed ids authenticate every blob. The storage can delete, but cannot forge or swap anything.
 */

/** What a caller holds to open a repository. */
export interface Access {
  credentials?: Credentials;
  privateKey?: PrivateKey;
  passphrase?: string;
}

/** Secrets kept in keys/*, encrypted to the recipients or the passphrase. */
export interface KeyFile {
  repository: string;
  repoKey: string;
  contentKey?: string;
}

/** Most bytes of a key object or kbrackup.json. */
const MAX_KEY_OBJECT = 1024 * 1024;

/** Settings chosen once, at `init`. */
export interface InitOptions {
  recipients: { armored: string; source: string }[];
  /** The owner's private key: its public key becomes a recipient and it signs the repository. */
  signer: PrivateKey | undefined;
  passphrase: string | undefined;
  chunker: ChunkerConfig;
  packSize: number;
  smallFile: number;
  bundleSize: number;
}

/** The bytes of a key object: the payload encrypted to `sealing` (recipients or a passphrase). */
export async function encodeKeyObject(payload: KeyFile, sealing: Sealing): Promise<Buffer> {
  const sessionKey = newSessionKey();
  const header = await sealSessionKey(sessionKey, sealing);
  return Buffer.concat([header, sealBytes(Buffer.from(JSON.stringify(payload)), 'zlib', sessionKey)]);
}

/**
 * Read a key object with the private key or passphrase given; damage is an IntegrityError, a wrong key
 * WrongKeyError, unless the signed config already proved the key a recipient (`sealedForUs`): then a
 * key object that does not open for it was replaced or damaged.
 */
async function readKeyObject(target: Target, name: string, unsealing: { privateKeys: PrivateKey[]; passwords: string[] }, config: RepoConfig, sealedForUs = false): Promise<{ keys: KeyFile; repoKey: Buffer }> {
  let stream;
  try {
    stream = await target.get(name);
  } catch (err) {
    if (err instanceof NotFoundError) throw new IntegrityError(name, `is missing from ${target.description}; the repository key cannot be recovered without it`);
    throw err;
  }
  const { header, rest } = await splitHeader(stream, name);
  const sessionKey = await unsealSessionKey(header, unsealing, name, sealedForUs);
  const bytes = await readBlobBytes(rest, sessionKey, name, MAX_KEY_OBJECT);
  let keys: KeyFile;
  try {
    keys = JSON.parse(bytes.toString('utf8')) as KeyFile;
  } catch {
    throw new IntegrityError(name, 'is not valid JSON');
  }
  if (typeof keys.repoKey !== 'string' || Buffer.from(keys.repoKey, 'base64').length !== 32) throw new IntegrityError(name, 'field "repoKey" is malformed');
  const repoKey = Buffer.from(keys.repoKey, 'base64');
  if (keys.repository !== config.id || keyCommitment(repoKey, config.id) !== config.keyCommitment) {
    throw new IntegrityError(name, `holds a key that is not the one kbrackup.json commits to: it was replaced; refusing it`);
  }
  return { keys, repoKey };
}

/** Create a repository on an empty target; returns the credentials a backup job needs (recipient mode). */
export async function initRepository(target: Target, options: InitOptions): Promise<{ config: RepoConfig; credentials: Credentials | undefined }> {
  if (options.recipients.length === 0 && options.signer === undefined && options.passphrase === undefined) {
    throw new ConfigError('init needs --key OWNER_PRIVATE_KEY (write-only backups, signed), --recipient PUBLIC_KEY_FILE, or --passphrase-file FILE (passphrase-only repository)');
  }
  if ((options.recipients.length > 0 || options.signer) && options.passphrase !== undefined) {
    throw new ConfigError('init takes either --key/--recipient or --passphrase-file, not both: a passphrase repository lets every backup job decrypt everything');
  }
  await target.prepare();
  if (await target.head(Layout.config)) throw new ConfigError(`${target.description} already holds a kbrackup repository; refusing to initialise it again`);
  for await (const object of target.list('')) {
    throw new ConfigError(`${target.description} is not empty (it holds ${object.name}); init needs an empty folder, bucket prefix or remote directory`);
  }
  const recipients: PublicKey[] = options.signer ? [options.signer.toPublic()] : [];
  for (const r of options.recipients) {
    for (const key of await readPublicKeys(r.armored, r.source)) if (!recipients.some((k) => k.getFingerprint() === key.getFingerprint())) recipients.push(key);
  }
  const id = randomBytes(16).toString('hex');
  const repoKey = newKey();
  const keyFile: KeyFile = { repository: id, repoKey: repoKey.toString('base64') };
  const passphraseMode = options.passphrase !== undefined;
  if (passphraseMode) {
    keyFile.contentKey = newKey().toString('base64');
    await target.put(Layout.passphraseKey, { bytes: await encodeKeyObject(keyFile, { recipients: [], passwords: [options.passphrase!], passwordConfig: PASSPHRASE_CONFIG }) });
  } else {
    await target.put(Layout.repoKey, { bytes: await encodeKeyObject(keyFile, { recipients, passwords: [] }) });
  }
  const config: RepoConfig = {
    format: 'kbrackup',
    version: FORMAT_VERSION,
    id,
    created: new Date().toISOString(),
    encryption: {
      mode: passphraseMode ? 'passphrase' : 'recipients',
      recipients: recipients.map((k) => ({ fingerprint: k.getFingerprint(), userIds: k.getUserIDs() })),
    },
    keyCommitment: keyCommitment(repoKey, id),
    chunker: options.chunker,
    packSize: options.packSize,
    smallFile: options.smallFile,
    bundleSize: options.bundleSize,
  };
  const bytes = encodeRepoConfig(config);
  if (options.signer) await target.put(Layout.signature(options.signer.getFingerprint()), { bytes: await signDetached(options.signer, bytes) });
  // Written last: a repository exists only once its config does, so a failed init can simply be retried.
  await target.put(Layout.config, { bytes });
  const credentials: Credentials | undefined = passphraseMode
    ? undefined
    : {
        kind: 'kbrackup-backup-credentials',
        version: 2,
        repository: id,
        repoKey: keyFile.repoKey,
        recipients: recipients.map((k) => k.armor()),
        config: parseRepoConfig(bytes, target.description).digest,
      };
  return { config, credentials };
}

/** Read kbrackup.json; a missing one means there is no repository here (exit code 10). */
export async function readStoredConfig(target: Target): Promise<StoredConfig> {
  let bytes: Buffer;
  try {
    bytes = await collectBounded(await target.get(Layout.config), MAX_KEY_OBJECT, Layout.config);
  } catch (err) {
    if (err instanceof NotFoundError) throw new RepoMissingError(`no kbrackup repository at ${target.description}; create one with \`kbrackup init\``);
    throw err;
  }
  return parseRepoConfig(bytes, target.description);
}

/** Options of openRepository. */
export interface OpenOptions {
  /** Told about damaged snapshots and index objects that are skipped. */
  onWarning?: WarningHandler;
}

/** Open a repository with whatever the caller holds, verifying the whole trust chain first. */
export async function openRepository(target: Target, access: Access, options: OpenOptions = {}): Promise<Repository> {
  const stored = await readStoredConfig(target);
  const keys =
    stored.config.encryption.mode === 'passphrase'
      ? await openWithPassphrase(target, stored, access.passphrase)
      : access.privateKey
        ? await openWithPrivateKey(target, stored, access.privateKey)
        : access.credentials
          ? await openWithCredentials(target, stored, access.credentials)
          : undefined;
  if (!keys) throw new ConfigError(`${target.description} needs --credentials (backup credentials file) or --key (a recipient's private key)`);
  return new Repository(target, stored, keys, options.onWarning);
}

async function openWithCredentials(target: Target, stored: StoredConfig, creds: Credentials): Promise<RepositoryKeys> {
  const { config } = stored;
  if (creds.repository !== config.id) {
    throw new WrongKeyError(`the --credentials file belongs to repository ${creds.repository}, but ${target.description} is repository ${config.id}`);
  }
  if (creds.config !== stored.digest) {
    throw new IntegrityError(`${target.description}/kbrackup.json`, 'is not the one these credentials were made for: it was replaced on the storage (other recipients or settings); refusing to back up to it');
  }
  const repoKey = Buffer.from(creds.repoKey, 'base64');
  if (keyCommitment(repoKey, config.id) !== config.keyCommitment) throw new WrongKeyError(`the repository key in --credentials does not belong to ${target.description}`);
  const recipients: PublicKey[] = [];
  for (const armored of creds.recipients) recipients.push(...(await readPublicKeys(armored, 'a recipient in --credentials')));
  await checkKeyObjectRecipients(target, recipients);
  return { secrets: deriveRepoSecrets(repoKey), contentSealing: { recipients, passwords: [] }, contentUnsealing: undefined };
}

/** keys/repo-key must be wrapped for exactly the pinned recipients: a replaced one (other recipients) is refused. */
async function checkKeyObjectRecipients(target: Target, recipients: PublicKey[]): Promise<void> {
  const name = Layout.repoKey;
  let start: Buffer;
  try {
    start = await collectBounded(await target.get(name), MAX_KEY_OBJECT, name);
  } catch (err) {
    if (err instanceof NotFoundError) throw new IntegrityError(name, `is missing from ${target.description}; restore could not recover the repository key`);
    throw err;
  }
  const addressed = new Set(await headerRecipients(start.subarray(0, headerLength(start, name)), name));
  const pinned = new Set(recipients.flatMap((k) => [k, ...k.getSubkeys()].map((s) => s.getFingerprint())));
  for (const fpr of addressed) {
    if (!pinned.has(fpr)) throw new IntegrityError(name, `is encrypted to key ${fpr}, which is not a recipient in --credentials: it was replaced on the storage; refusing to back up`);
  }
  if (addressed.size === 0) throw new IntegrityError(name, 'is encrypted to no recipient; damaged or replaced');
}

async function openWithPrivateKey(target: Target, stored: StoredConfig, privateKey: PrivateKey): Promise<RepositoryKeys> {
  const { config } = stored;
  const fingerprint = privateKey.getFingerprint();
  // Told first, as the likeliest mistake; the list is not trusted yet, the signature check below is what counts.
  if (!config.encryption.recipients.some((r) => r.fingerprint === fingerprint)) {
    throw new WrongKeyError(`the key given (${fingerprint}) cannot decrypt this repository's data: it is not one of the recipients of ${target.description}`);
  }
  await verifyOwnerSignature(target, stored, privateKey.toPublic());
  const { repoKey } = await readKeyObject(target, Layout.repoKey, { privateKeys: [privateKey], passwords: [] }, config, true);
  return {
    secrets: deriveRepoSecrets(repoKey),
    contentSealing: { recipients: [privateKey.toPublic()], passwords: [] },
    contentUnsealing: { privateKeys: [privateKey], passwords: [] },
  };
}

/** The owner's signature over kbrackup.json, by the key the caller holds. */
export async function verifyOwnerSignature(target: Target, stored: StoredConfig, key: PublicKey): Promise<void> {
  const name = Layout.signature(key.getFingerprint());
  let signature: Buffer;
  try {
    signature = await collectBounded(await target.get(name), 64 * 1024, name);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    throw new UntrustedError(
      `${target.description} is not signed by key ${key.getFingerprint()}, so restore cannot tell it from one the storage forged; if you are sure it is yours and never signed it, sign it once with \`kbrackup trust --repo … --key …\` (if you did sign it, the storage removed the signature: do not sign it again; docs/SECURITY.md)`,
    );
  }
  if (!(await verifyDetached(key, stored.bytes, signature, name))) {
    throw new IntegrityError(`${target.description}/kbrackup.json`, `does not match the owner's signature ${name}: it was altered on the storage; refusing it`);
  }
}

async function openWithPassphrase(target: Target, stored: StoredConfig, passphrase: string | undefined): Promise<RepositoryKeys> {
  if (passphrase === undefined) throw new ConfigError(`${target.description} is a passphrase-only repository; pass --passphrase-file`);
  let keys: KeyFile;
  let repoKey: Buffer;
  try {
    ({ keys, repoKey } = await readKeyObject(target, Layout.passphraseKey, { privateKeys: [], passwords: [passphrase] }, stored.config));
  } catch (err) {
    if (err instanceof WrongKeyError) throw new WrongKeyError(`wrong passphrase for ${target.description}`, { cause: err });
    throw err;
  }
  if (typeof keys.contentKey !== 'string') throw new IntegrityError(Layout.passphraseKey, 'holds no content key');
  const content = contentPassword(Buffer.from(keys.contentKey, 'base64'));
  return {
    secrets: deriveRepoSecrets(repoKey),
    contentSealing: { recipients: [], passwords: [content] },
    contentUnsealing: { privateKeys: [], passwords: [content] },
  };
}

/**
 * `trust`: sign an existing repository's config with the owner's key, after checking its key matches.
 * A signature by this key that is already there must verify: one that does not is evidence the config
 * was altered on the storage, and signing over it would bless the alteration.
 */
export async function trustRepository(target: Target, privateKey: PrivateKey): Promise<RepoConfig> {
  const stored = await readStoredConfig(target);
  if (stored.config.encryption.mode !== 'recipients') throw new KbrackupError(`${target.description} is a passphrase repository: the passphrase already authenticates it; nothing to sign`);
  try {
    await verifyOwnerSignature(target, stored, privateKey.toPublic());
    return stored.config;
  } catch (err) {
    if (!(err instanceof UntrustedError)) throw err;
  }
  await readKeyObject(target, Layout.repoKey, { privateKeys: [privateKey], passwords: [] }, stored.config);
  await target.put(Layout.signature(privateKey.getFingerprint()), { bytes: await signDetached(privateKey, stored.bytes) });
  return stored.config;
}
