import { PassThrough, type Readable } from 'node:stream';

/**
 * The same bytes, but a failure while reading surfaces as `map(err)` (a one-line error naming the
 * target and object) instead of a library's bare socket error. Back-pressure is kept by pipe().
 */
export function mapStreamErrors(source: Readable, map: (err: unknown) => Error): Readable {
  const out = new PassThrough({ highWaterMark: source.readableHighWaterMark });
  source.once('error', (err) => out.destroy(map(err)));
  // A reader that stops early must release the remote handle or HTTP socket as well.
  out.once('close', () => {
    if (!source.readableEnded) source.destroy();
  });
  return source.pipe(out);
}
