import type { TargetError } from '../errors.js';
import { FilesystemTarget } from './filesystem/filesystem.js';
import type { Location } from './location.js';
import { RetryingTarget } from './retrying.js';
import { s3Config } from './s3/config.js';
import { sftpConfig } from './sftp/config.js';
import type { Target } from './target.js';
import { UploadThreadTarget } from './upload-thread.js';

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
  /** Upload files to S3 or SFTP from a thread of their own (upload-thread.ts); backups set it. */
  uploadThread?: boolean;
}

/** The plain backend for a location. The AWS SDK (~26 MiB RSS once loaded) and ssh2 (~18 MiB) are imported only by runs that use them. */
export async function openBackend(location: Location, options: TargetOptions): Promise<Target> {
  switch (location.kind) {
    case 'filesystem':
      return new FilesystemTarget(location.path);
    case 's3': {
      const config = s3Config(location, options);
      const { S3Target } = await import('./s3/s3.js');
      return new S3Target(config);
    }
    case 'sftp': {
      const config = await sftpConfig(location, options);
      const { SftpTarget } = await import('./sftp/sftp.js');
      return new SftpTarget(config);
    }
  }
}

/** Create the backend for a location, wrapped so transient failures are retried with backoff. */
export async function openTarget(location: Location, options: TargetOptions): Promise<Target> {
  let backend = await openBackend(location, options);
  if (options.uploadThread === true && location.kind !== 'filesystem') {
    const { onRetry: _onRetry, signal: _signal, uploadThread: _uploadThread, ...plain } = options;
    backend = new UploadThreadTarget(backend, location, plain);
  }
  return new RetryingTarget(backend, { retries: options.retries, onRetry: options.onRetry, signal: options.signal });
}
