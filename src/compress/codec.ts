import { constants, createDeflate, createInflate, deflateSync, inflateSync } from 'node:zlib';
import { PassThrough, type Transform } from 'node:stream';
import { IntegrityError, describeError } from '../errors.js';

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

/** Compressed output must save at least this share, or the data is stored as it is. */
const WORTH = 0.9;

/** Cheap test on the first bytes of a blob: already-compressed or random data is stored as it is. */
export function chooseCodec(sample: Uint8Array): Codec {
  if (sample.length < 64) return 'none';
  const packed = deflateSync(sample, { level: LEVEL, strategy: constants.Z_DEFAULT_STRATEGY });
  return packed.length < sample.length * WORTH ? 'zlib' : 'none';
}

/** Compress bytes held in memory (bounded by the caller); keeps them as they are when that does not pay. */
export function compressSync(data: Buffer): { codec: Codec; bytes: Buffer } {
  if (data.length < 64) return { codec: 'none', bytes: data };
  const packed = deflateSync(data, { level: LEVEL });
  return packed.length < data.length * WORTH ? { codec: 'zlib', bytes: packed } : { codec: 'none', bytes: data };
}

/** Decompress bytes held in memory; more than `maxLength` bytes of output is damage, named by `object`. */
export function decompressSync(data: Buffer, codec: string, maxLength: number, object: string): Buffer {
  if (codec === 'none') {
    if (data.length > maxLength) throw new IntegrityError(object, `holds ${data.length} bytes, more than the ${maxLength} recorded`);
    return data;
  }
  if (codec !== 'zlib') throw unknownCodec(codec, object);
  try {
    return inflateSync(data, { maxOutputLength: Math.max(1, maxLength) });
  } catch (err) {
    throw new IntegrityError(object, `does not decompress (${describeError(err)})`, { cause: err });
  }
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
  throw unknownCodec(codec, object);
}

function unknownCodec(codec: string, object: string): IntegrityError {
  return new IntegrityError(object, `compressed with "${codec}", which this kbrackup (Node ${process.version}) cannot decode; restore with a newer kbrackup/Node`);
}
