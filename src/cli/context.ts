import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { readPrivateKey } from '../crypto/keys.js';
import { ConfigError, describeError } from '../errors.js';
import { readCredentials } from '../repo/credentials.js';
import { openRepository, readStoredConfig, type Access } from '../repo/keyring.js';
import type { Repository } from '../repo/repository.js';
import { RepositoryLock } from '../repo/locks.js';
import { parseLocation } from '../targets/location.js';
import { openTarget } from '../targets/open.js';
import type { Target } from '../targets/target.js';
import { UPLOAD_THREAD_MIN_MEMORY } from '../targets/upload-thread.js';
import { formatSize } from '../util/sizes.js';
import { memoryLimit, threadWanted, type ThreadSetting } from '../util/memory-limit.js';

/** What every command gets. */
export interface CommandContext {
  config: Config;
  positionals: string[];
  logger: Logger;
  signal: AbortSignal;
  /** Print one line on stdout (results, --json lines). */
  print(line: string): void;
}

/** Read a small secret file (passphrase), without its trailing newline. */
export async function readSecretFile(path: string, flag: string): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    const secret = text.replace(/\r?\n$/, '');
    if (secret === '') throw new ConfigError(`${flag} ${path} is empty`);
    return secret;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read ${flag} ${path}: ${describeError(err)}`);
  }
}

/** Read a small text file given by a flag. */
export async function readTextFile(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${flag} ${path}: ${describeError(err)}`);
  }
}

/** A required string option, with a message naming its flag and env var. */
export function required(config: Config, key: 'repo' | 'target' | 'out' | 'credentialsOut', what: string): string {
  const value = config.get(key);
  if (!value) {
    const flags: Record<string, string> = { repo: '--repo / KBRACKUP_REPO', target: '--target / KBRACKUP_TARGET', out: '--out / KBRACKUP_OUT', credentialsOut: '--credentials-out / KBRACKUP_CREDENTIALS_OUT' };
    throw new ConfigError(`${what}: ${flags[key]} is required`);
  }
  return value;
}

/**
 * The repository's storage backend, from --repo and the backend options; retries are logged and stop on
 * cancel. Commands that upload much (backup) pass `uploads` to have --upload-thread considered.
 */
export async function targetFromConfig(ctx: CommandContext, uploads: 'few' | 'many' = 'few'): Promise<Target> {
  const { config, logger } = ctx;
  const location = parseLocation(required(config, 'repo', 'no repository given'));
  let uploadThread = false;
  if (uploads === 'many' && location.kind !== 'filesystem') {
    const setting = config.get('uploadThread') as ThreadSetting;
    uploadThread = threadWanted(setting, UPLOAD_THREAD_MIN_MEMORY);
    if (setting === 'auto' && !uploadThread) {
      logger.info(`memory limit ${formatSize(memoryLimit())}: uploads run on the main thread (--upload-thread on is faster, for ~50 MiB more)`);
    }
  }
  return openTarget(location, {
    s3Endpoint: config.get('s3Endpoint'),
    s3Region: config.get('s3Region'),
    s3ForcePathStyle: config.get('s3ForcePathStyle'),
    s3StorageClass: config.get('s3StorageClass'),
    s3Sse: config.get('s3Sse'),
    s3SseKmsKeyId: config.get('s3SseKmsKeyId'),
    sftpKey: config.get('sftpKey'),
    sftpKeyPassphraseFile: config.get('sftpKeyPassphraseFile'),
    sftpKnownHosts: config.get('sftpKnownHosts'),
    sftpHostFingerprint: config.get('sftpHostFingerprint'),
    retries: config.get('retries'),
    onRetry: (err, attempt, delayMs) => logger.warn({ attempt, delayMs }, `${err.message}; retrying in ${(delayMs / 1000).toFixed(1)}s`),
    signal: ctx.signal,
    uploadThread,
  });
}

/** Open the repository with whatever the configuration provides: credentials, a private key, or a passphrase. */
export async function openFromConfig(ctx: CommandContext, target: Target): Promise<Repository> {
  const { config, logger } = ctx;
  const stored = await readStoredConfig(target);
  const access: Access = {};
  const passphraseFile = config.get('passphraseFile');
  const passphrase = passphraseFile ? await readSecretFile(passphraseFile, '--passphrase-file') : undefined;
  if (stored.config.encryption.mode === 'passphrase') {
    access.passphrase = passphrase;
  } else {
    const credentials = config.get('credentials');
    const key = config.get('key');
    if (key) access.privateKey = await readPrivateKey(await readTextFile(key, '--key'), passphrase, `--key ${key}`);
    else if (credentials) access.credentials = await readCredentials(credentials);
  }
  return openRepository(target, access, { onWarning: (object, message) => logger.warn({ object }, message) });
}

/**
 * Run `task` holding a repository lock (shared for backups, exclusive for maintenance), waiting up to
 * --retry-lock for a conflicting one; the lock is released however the task ends.
 */
export async function withLock<T>(ctx: CommandContext, repo: Repository, exclusive: boolean, command: string, task: () => Promise<T>): Promise<T> {
  const lock = await RepositoryLock.acquire(repo, {
    exclusive,
    command,
    retryMs: ctx.config.get('retryLock'),
    signal: ctx.signal,
    onRenewFailed: (err) => ctx.logger.warn(`repository lock: ${err instanceof Error ? err.message : String(err)}`),
  });
  try {
    return await task();
  } finally {
    await lock.release();
  }
}
