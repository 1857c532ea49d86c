import { constants, createDeflate, createInflate, deflateSync } from 'node:zlib';
import { PassThrough, type Transform } from 'node:stream';
import { IntegrityError } from '../errors.js';

/** How a blob's plaintext was compressed before encryption; recorded per blob so new codecs can be added. */
export type Codec = 'none' | 'zlib';

const CODECS: readonly string[] = ['none', 'zlib'];

/** Whether a string names a codec this runtime can decode. */
export function isCodec(value: string): value is Codec {
  return CODECS.includes(value);
}

/** Bytes looked at to decide whether a blob is worth compressing. */
export const SAMPLE_BYTES = 16 * 1024;

/** Level 1: on this machine higher levels cost 3-5x the time for a few percent on typical data. */
const LEVEL = 1;

/** Cheap test on the first bytes of a blob: already-compressed or random data is stored as it is. */
export function chooseCodec(sample: Uint8Array): Codec {
  if (sample.length < 64) return 'none';
  const packed = deflateSync(sample, { level: LEVEL, strategy: constants.Z_DEFAULT_STRATEGY });
  return packed.length < sample.length * 0.9 ? 'zlib' : 'none';
}

/** A stream stage that compresses with the codec. */
export function compressor(codec: Codec): Transform {
  return codec === 'zlib' ? createDeflate({ level: LEVEL }) : new PassThrough();
}

/** A stream stage that decompresses a blob written with the codec; `object` names it in errors. */
export function decompressor(codec: string, object: string): Transform {
  // 64 KiB output pieces instead of 16 KiB: a quarter of the buffers for the garbage collector.
  if (codec === 'zlib') return createInflate({ chunkSize: 64 * 1024 });
  if (codec === 'none') return new PassThrough();
  throw new IntegrityError(object, `compressed with "${codec}", which this kbrackup (Node ${process.version}) cannot decode; restore with a newer kbrackup/Node`);
}
