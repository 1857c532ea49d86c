import { ConfigError } from '../../errors.js';
import type { TargetOptions } from '../open.js';

const MiB = 1024 * 1024;

/** Everything the S3 target needs; built from flags/env by s3Config, or directly by tests. */
export interface S3Config {
  bucket: string;
  /** Key prefix of the repository inside the bucket, without leading or trailing `/` ('' = bucket root). */
  prefix: string;
  /** Custom endpoint URL for S3-compatible stores; undefined = AWS for the region. */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  storageClass?: string;
  sse?: string;
  sseKmsKeyId?: string;
  /** Explicit credentials; undefined = the default AWS chain (env, shared files, web identity/IRSA, IMDS). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Objects of at least this many bytes go up as multipart uploads. */
  multipartThreshold: number;
  /** Bytes per part (grown when an object would need more than 10,000 parts). */
  partSize: number;
  /** Parts of one object uploaded at once; each holds only stream buffers, never a whole part. */
  partConcurrency: number;
  /** Milliseconds to establish a connection. */
  connectionTimeoutMs: number;
  /** Milliseconds a request may stay idle before it counts as a (transient) timeout. */
  requestTimeoutMs: number;
  /** When the SDK adds CRC32 checksums to uploads; undefined = the SDK's own default (WHEN_SUPPORTED). */
  requestChecksums?: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
}

/** Defaults; a part is streamed from its file range, so its size costs no memory. */
export const S3_DEFAULTS = {
  multipartThreshold: 64 * MiB,
  partSize: 16 * MiB,
  partConcurrency: 4,
  connectionTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
};

const SSE_VALUES = ['AES256', 'aws:kms', 'aws:kms:dsse'];

/**
 * The S3 target's configuration for `s3://BUCKET/PREFIX` and the s3* options; explains bad values.
 * With a custom endpoint, upload checksums are only sent where S3 requires them: the SDK's default sends
 * streamed uploads as aws-chunked bodies with a trailing checksum, which many S3-compatible stores do
 * not decode (s3rver stores the chunk framing as object data). The standard
 * AWS_REQUEST_CHECKSUM_CALCULATION variable, when set, decides instead.
 */
export function s3Config(location: { bucket: string; prefix: string }, options: TargetOptions, env: NodeJS.ProcessEnv = process.env): S3Config {
  // The SDK's own service-specific variable counts as a custom endpoint too, so checksums and messages match.
  const endpoint = options.s3Endpoint.trim() || (env.AWS_ENDPOINT_URL_S3 ?? '').trim();
  if (endpoint !== '' && !/^https?:\/\/[^/]/i.test(endpoint)) {
    throw new ConfigError(`--s3-endpoint (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3) must be an http:// or https:// URL, got "${redactUrl(endpoint)}"`);
  }
  const sse = options.s3Sse.trim();
  if (sse !== '' && !SSE_VALUES.includes(sse)) {
    throw new ConfigError(`--s3-sse (KBRACKUP_S3_SSE) must be one of ${SSE_VALUES.join(', ')}, got "${sse}"`);
  }
  const kmsKey = options.s3SseKmsKeyId.trim();
  if (kmsKey !== '' && !sse.startsWith('aws:kms')) {
    throw new ConfigError('--s3-sse-kms-key-id (KBRACKUP_S3_SSE_KMS_KEY_ID) needs --s3-sse aws:kms or aws:kms:dsse');
  }
  return {
    bucket: location.bucket,
    prefix: location.prefix,
    endpoint: endpoint || undefined,
    region: options.s3Region.trim() || 'us-east-1',
    forcePathStyle: options.s3ForcePathStyle,
    storageClass: options.s3StorageClass.trim() || undefined,
    sse: sse || undefined,
    sseKmsKeyId: kmsKey || undefined,
    requestChecksums: endpoint !== '' && !env.AWS_REQUEST_CHECKSUM_CALCULATION ? 'WHEN_REQUIRED' : undefined,
    ...S3_DEFAULTS,
  };
}

/** A URL without user info, path or query, safe to print. */
export function redactUrl(value: string): string {
  try {
    return new URL(value).origin;
  } catch {
    return value.replace(/\/\/[^@/]*@/, '//');
  }
}
