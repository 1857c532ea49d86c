import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TargetOptions } from '../../src/targets/open.js';
import { S3_DEFAULTS, type S3Config } from '../../src/targets/s3/config.js';
import { sftpConfig, type SftpConfig } from '../../src/targets/sftp/config.js';
import type { S3Server } from './s3server.js';
import type { Sshd } from './sshd.js';

/** Target options as the CLI would pass them with nothing set; tests override what they need. */
export function targetOptions(overrides: Partial<TargetOptions> = {}): TargetOptions {
  return {
    s3Endpoint: '',
    s3Region: '',
    s3ForcePathStyle: false,
    s3StorageClass: '',
    s3Sse: '',
    s3SseKmsKeyId: '',
    sftpKey: '',
    sftpKeyPassphraseFile: '',
    sftpKnownHosts: '',
    sftpHostFingerprint: '',
    retries: 0,
    ...overrides,
  };
}

/** S3 target settings for a bucket on a test s3rver. */
export function s3TestConfig(server: Pick<S3Server, 'endpoint' | 'accessKeyId' | 'secretAccessKey'>, overrides: Partial<S3Config> = {}): S3Config {
  return {
    ...S3_DEFAULTS,
    bucket: 'kbrackup',
    prefix: 'repo',
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksums: 'WHEN_REQUIRED',
    // Generous: the suite runs beside others on two cores, and a refused port fails at once anyway.
    connectionTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    ...overrides,
  };
}

/** SFTP target settings for a folder on a test sshd, through the same parsing the CLI uses. */
export async function sftpTestConfig(sshd: Sshd, path: string, overrides: Partial<TargetOptions> = {}): Promise<SftpConfig> {
  const options = targetOptions({ sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts, ...overrides });
  return { ...(await sftpConfig({ user: sshd.user, host: sshd.host, port: sshd.port, path }, options)), connectTimeoutMs: 5_000 };
}

/** SHA-256 (hex) of everything a stream yields, read with back-pressure. */
export async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(stream, hash);
  return hash.digest('hex');
}
