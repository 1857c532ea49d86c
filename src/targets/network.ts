/** Error codes of a connection that could not be made or broke off: worth another attempt. */
const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'EAI_AGAIN',
  // A name that does not resolve is often a DNS hiccup in a cluster; bounded retries cover a typo too.
  'ENOTFOUND',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** The Node/libuv error code of a network failure found on an error or its causes, if any. */
export function networkErrorCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return code;
  }
  return undefined;
}
