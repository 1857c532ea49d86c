import { readFile, writeFile } from 'node:fs/promises';
import { ConfigError, describeError } from '../errors.js';

/**
 * What a backup job holds (a Kubernetes Secret): the repository key and the recipients' public keys.
 * Nothing in it decrypts file contents.
 */
export interface Credentials {
  kind: 'kbrackup-backup-credentials';
  version: 1;
  repository: string;
  repoKey: string;
  recipients: string[];
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
  if (value.kind !== 'kbrackup-backup-credentials' || value.version !== 1 || typeof value.repoKey !== 'string' || !Array.isArray(value.recipients)) {
    throw new ConfigError(`--credentials ${path} is not a kbrackup credentials file; pass the file written by \`kbrackup init --credentials-out\``);
  }
  const key = Buffer.from(value.repoKey, 'base64');
  if (key.length !== 32) throw new ConfigError(`--credentials ${path} holds a damaged repository key`);
  return value as Credentials;
}
