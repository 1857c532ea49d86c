import type { TargetError } from '../errors.js';
import { FilesystemTarget } from './filesystem/filesystem.js';
import type { Location } from './location.js';
import { RetryingTarget } from './retrying.js';
import { s3Config } from './s3/config.js';
import { S3Target } from './s3/s3.js';
import { sftpConfig } from './sftp/config.js';
import { SftpTarget } from './sftp/sftp.js';
import type { Target } from './target.js';

/** Backend settings taken from the configuration; each backend reads only its own. */
export interface TargetOptions {
  s3Endpoint: string;
  s3Region: string;
  s3ForcePathStyle: boolean;
  s3StorageClass: string;
  s3Sse: string;
  s3SseKmsKeyId: string;
  sftpKey: string;
  sftpKeyPassphraseFile: string;
  sftpKnownHosts: string;
  sftpHostFingerprint: string;
  retries: number;
  /** Called before a transient failure is retried (e.g. to log it). */
  onRetry?: (err: TargetError, attempt: number, delayMs: number) => void;
  /** Stops retrying once aborted (the job is being cancelled). */
  signal?: AbortSignal;
}

async function openPlain(location: Location, options: TargetOptions): Promise<Target> {
  switch (location.kind) {
    case 'filesystem':
      return new FilesystemTarget(location.path);
    case 's3':
      return new S3Target(s3Config(location, options));
    case 'sftp':
      return new SftpTarget(await sftpConfig(location, options));
  }
}

/** Create the backend for a location, wrapped so transient failures are retried with backoff. */
export async function openTarget(location: Location, options: TargetOptions): Promise<Target> {
  return new RetryingTarget(await openPlain(location, options), { retries: options.retries, onRetry: options.onRetry, signal: options.signal });
}
