import { IntegrityError } from '../errors.js';
import { asBuffer } from './bytes.js';

/** Collect a stream whose size is bounded by a small constant; larger input is an error naming `what`. */
export async function collectBounded(stream: AsyncIterable<Uint8Array>, max: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const b of stream) {
    size += b.length;
    if (size > max) throw new IntegrityError(what, `larger than ${max} bytes; not what kbrackup wrote there`);
    parts.push(asBuffer(b));
  }
  return Buffer.concat(parts);
}
