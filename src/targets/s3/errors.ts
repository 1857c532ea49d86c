import { NotFoundError, TargetError } from '../../errors.js';
import { networkErrorCode } from '../network.js';

/** Where an S3 error happened, for its message. */
export interface S3ErrorContext {
  target: string;
  bucket: string;
  /** Printable endpoint (no credentials), or undefined for AWS. */
  endpoint: string | undefined;
}

interface SdkError extends Error {
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'ProvisionedThroughputExceededException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'InternalError',
  'ServiceUnavailable',
  // The SDK corrects its clock offset from this answer, so the next attempt succeeds.
  'RequestTimeTooSkewed',
]);

/** Plain words for the permanent errors users hit while setting up; never includes a secret. */
function permanentMessage(name: string, status: number | undefined, ctx: S3ErrorContext): string | undefined {
  switch (name) {
    case 'InvalidAccessKeyId':
      return 'the access key id is not known to the server; check AWS_ACCESS_KEY_ID (or the profile / credentials file)';
    case 'SignatureDoesNotMatch':
      return 'the request signature does not match; check AWS_SECRET_ACCESS_KEY (and --s3-endpoint / --s3-region)';
    case 'ExpiredToken':
    case 'TokenRefreshRequired':
    case 'InvalidToken':
      return 'the session token is expired or invalid; refresh the credentials (AWS_SESSION_TOKEN, web identity)';
    case 'NoSuchBucket':
      return `bucket "${ctx.bucket}" does not exist${ctx.endpoint ? ` at ${ctx.endpoint}` : ''}; create it first`;
    case 'AuthorizationHeaderMalformed':
    case 'PermanentRedirect':
    case 'IllegalLocationConstraintException':
      return `bucket "${ctx.bucket}" is in another region; set --s3-region (AWS_REGION)`;
    case 'CredentialsProviderError':
      return 'no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a web identity (IRSA)';
    case 'AccessDenied':
    case 'AllAccessDisabled':
    case 'AccountProblem':
    case 'Forbidden':
      return `access denied to bucket "${ctx.bucket}"; check the credentials and that they may list, get, put and delete objects there`;
  }
  if (status === 403) return `access denied to bucket "${ctx.bucket}" (HTTP 403); check the credentials and the bucket policy`;
  if (status === 301) return `bucket "${ctx.bucket}" is in another region or needs another endpoint; set --s3-region or --s3-endpoint`;
  return undefined;
}

/** Turns whatever the AWS SDK threw into a TargetError: transient for 5xx, throttling, timeouts and broken connections. */
export function s3Error(ctx: S3ErrorContext, object: string | undefined, err: unknown): TargetError {
  if (err instanceof TargetError) return err;
  const e = err as SdkError;
  const name = e?.name ?? 'Error';
  const status = e?.$metadata?.httpStatusCode;
  if (object !== undefined && (name === 'NoSuchKey' || (name === 'NotFound' && status === 404))) {
    return new NotFoundError(ctx.target, object, { cause: err });
  }
  const netCode = networkErrorCode(err);
  if (netCode) {
    return new TargetError(ctx.target, object, `connection to ${ctx.endpoint ?? 'S3'} failed (${netCode})`, { transient: true, cause: err });
  }
  const known = permanentMessage(name, status, ctx);
  if (known) return new TargetError(ctx.target, object, known, { cause: err });
  const transient = TRANSIENT_NAMES.has(name) || status === 429 || (status !== undefined && status >= 500);
  const detail = `${name}${status ? ` (HTTP ${status})` : ''}${e?.message && e.message !== name ? `: ${e.message}` : ''}`;
  return new TargetError(ctx.target, object, detail.replace(/\s+/g, ' '), { transient, cause: err });
}
