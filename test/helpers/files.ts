import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const CHUNK = 1024 * 1024;

/** Zero bytes through AES-256-CTR: incompressible, reproducible from `seed`, produced at ~1 GB/s. */
function* keystream(size: number, seed: string): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  for (let done = 0; done < size; done += CHUNK) yield cipher.update(zeros.subarray(0, Math.min(CHUNK, size - done)));
}

/** Writes `size` pseudo-random bytes to `path` (streamed) and returns their SHA-256 in hex. */
export async function writeRandomFile(path: string, size: number, seed = path): Promise<string> {
  const hash = createHash('sha256');
  async function* tee(): AsyncGenerator<Buffer> {
    for (const chunk of keystream(size, seed)) {
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(tee(), createWriteStream(path));
  return hash.digest('hex');
}

/** SHA-256 (hex) of everything a stream yields, read with back-pressure. */
export async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(stream, hash);
  return hash.digest('hex');
}
