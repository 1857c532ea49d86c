import { createHmac } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { SAMPLE_BYTES, chooseCodec, type Codec } from '../compress/codec.js';
import { writeBlob } from '../repo/blob.js';
import type { KeyedHeader } from './session-keys.js';

/** What an encoded chunk turned out to be. */
export interface EncodedChunk {
  id: Buffer;
  codec: Codec;
  rawLength: number;
  /** Bytes of the temp file: key packets + blob. */
  size: number;
  headerLength: number;
}

/**
 * Encodes one chunk as it streams by: keyed hash for its id, codec chosen from its first 64 KiB,
 * then compression and encryption straight into a temp file. Nothing but the sample is buffered.
 */
export class ChunkEncoder {
  private readonly hmac;
  private rawLength = 0;
  private sample: Buffer[] = [];
  private sampled = 0;
  private input: PassThrough | undefined;
  private out: WriteStream | undefined;
  private done: Promise<void> | undefined;
  private codec: Codec = 'none';

  constructor(
    private readonly path: string,
    private readonly key: KeyedHeader,
    idKey: Buffer,
  ) {
    this.hmac = createHmac('sha256', idKey);
  }

  /** Add the next bytes of the chunk; resolves when the pipeline can take more. */
  async write(data: Buffer): Promise<void> {
    this.hmac.update(data);
    this.rawLength += data.length;
    if (this.input === undefined) {
      this.sample.push(data);
      this.sampled += data.length;
      if (this.sampled >= SAMPLE_BYTES) this.start();
      return;
    }
    if (!this.input.write(data)) await Promise.race([once(this.input, 'drain'), this.done]);
  }

  private start(): void {
    const sample = Buffer.concat(this.sample);
    this.sample = [];
    this.codec = chooseCodec(sample.subarray(0, SAMPLE_BYTES));
    const input = new PassThrough({ highWaterMark: 256 * 1024 });
    const out = createWriteStream(this.path, { flags: 'wx', highWaterMark: 256 * 1024 });
    out.write(this.key.header);
    this.input = input;
    this.out = out;
    this.done = writeBlob(input, this.codec, this.key.sessionKey, out).then(async () => {
      out.end();
      await once(out, 'finish');
    });
    this.done.catch(() => undefined);
    input.write(sample);
  }

  /** End the chunk: waits for the temp file to be complete and names the chunk. */
  async finish(): Promise<EncodedChunk> {
    if (this.input === undefined) this.start();
    (this.input as PassThrough).end();
    await this.done;
    return {
      id: this.hmac.digest(),
      codec: this.codec,
      rawLength: this.rawLength,
      size: (this.out as WriteStream).bytesWritten,
      headerLength: this.key.header.length,
    };
  }

  /** Abandon the chunk (on error or cancel); the caller removes the file. */
  abort(): void {
    this.input?.destroy();
    this.out?.destroy();
  }
}
