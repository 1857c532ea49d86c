import { ConfigError } from '../errors.js';
import { FilesystemTarget } from './filesystem/filesystem.js';
import type { Location } from './location.js';
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
}

/** Create the plain backend for a location. */
export async function openTarget(location: Location, _options: TargetOptions): Promise<Target> {
  switch (location.kind) {
    case 'filesystem':
      return new FilesystemTarget(location.path);
    case 's3':
    case 'sftp':
      throw new ConfigError(`${location.kind} repositories are not supported yet`);
  }
}
