import { readFile, writeFile } from 'node:fs/promises';
import { ConfigError, describeError } from '../errors.js';

/**
 * What a backup or maintenance job holds (a Kubernetes Secret): the repository key, the recipients'
 * public keys and the digest of the repository's kbrackup.json. Nothing in it decrypts file contents;
 * the pinned recipients and digest make a replaced config or key object on the storage refused.
 */
export interface Credentials {
  kind: 'kbrackup-backup-credentials';
  version: 2;
  repository: string;
  repoKey: string;
  recipients: string[];
  /** SHA-256 (hex) of the repository's kbrackup.json bytes. */
  config: string;
}

/** Write a credentials file readable by its owner only. */
export async function writeCredentials(path: string, creds: Credentials): Promise<void> {
  try {
    await writeFile(path, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const exists = (err as NodeJS.ErrnoException).code === 'EEXIST';
    throw new ConfigError(exists ? `--credentials-out ${path} already exists; refusing to overwrite it` : `cannot write --credentials-out ${path}: ${describeError(err)}`);
  }
}

/** Read and check a credentials file written by `kbrackup init`. */
export async function readCredentials(path: string): Promise<Credentials> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read --credentials ${path}: ${describeError(err)}`);
  }
  let value: Partial<Credentials>;
  try {
    value = JSON.parse(text) as Partial<Credentials>;
  } catch {
    throw new ConfigError(`--credentials ${path} is not JSON; pass the file written by \`kbrackup init --credentials-out\``);
  }
  if (value.kind !== 'kbrackup-backup-credentials') {
    throw new ConfigError(`--credentials ${path} is not a kbrackup credentials file; pass the file written by \`kbrackup init --credentials-out\``);
  }
  if (value.version !== 2) {
    throw new ConfigError(`--credentials ${path} is for repository format ${String(value.version)}; this kbrackup writes format 2 — create a new repository with \`kbrackup init\``);
  }
  if (typeof value.repoKey !== 'string' || !Array.isArray(value.recipients) || typeof value.config !== 'string' || typeof value.repository !== 'string') {
    throw new ConfigError(`--credentials ${path} is missing fields; pass the file written by \`kbrackup init --credentials-out\``);
  }
  if (Buffer.from(value.repoKey, 'base64').length !== 32) throw new ConfigError(`--credentials ${path} holds a damaged repository key`);
  return value as Credentials;
}
