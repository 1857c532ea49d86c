import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { DEFAULT_CHUNKER_PARAMS, FastCdc, type ChunkerParams, type Cutter } from '../src/chunker/fastcdc.js';
import { ConfigError } from '../src/errors.js';
import { Prng, pseudoRandomBytes } from './fixtures/prng.js';

const MiB = 1024 * 1024;
const SMALL: ChunkerParams = { min: 2048, avg: 8192, max: 65536 };

/** Chunk lengths of `data` fed in buffers of the given sizes (cycled), the caller loop of the pipeline. */
function chunkLengths(cutter: Cutter, data: Uint8Array, splits: number[] = [data.length]): number[] {
  const out: number[] = [];
  let current = 0;
  let offset = 0;
  for (let s = 0; offset < data.length; s++) {
    let buf = data.subarray(offset, offset + splits[s % splits.length]!);
    offset += buf.length;
    while (buf.length) {
      const r = cutter.update(buf);
      current += r.consumed;
      if (r.boundary) {
        out.push(current);
        current = 0;
      }
      buf = buf.subarray(r.consumed);
    }
  }
  if (current) out.push(current);
  return out;
}

/** SHA-256 of each chunk, to compare two versions of a file chunk by chunk. */
function chunkHashes(data: Uint8Array, lengths: number[]): string[] {
  let offset = 0;
  return lengths.map((len) => createHash('sha256').update(data.subarray(offset, (offset += len))).digest('hex'));
}

/** Random buffer sizes between 1 and `max` bytes, reproducible. */
function randomSplits(seed: string, count: number, max: number): number[] {
  const bytes = pseudoRandomBytes(seed, count * 4);
  return Array.from({ length: count }, (_, i) => 1 + (bytes.readUInt32BE(i * 4) % max));
}

const data64 = pseudoRandomBytes('fastcdc 64 MiB', 64 * MiB);
const lengths64 = chunkLengths(new FastCdc(DEFAULT_CHUNKER_PARAMS), data64);

describe('FastCdc', () => {
  it('rejects invalid parameters with a ConfigError naming the problem', () => {
    const cases: [ChunkerParams, RegExp][] = [
      [{ min: 0, avg: 1024, max: 4096 }, /min must be a positive integer/],
      [{ min: 16, avg: 32, max: 4096 }, /avg must be at least 64/],
      [{ min: 512, avg: 256, max: 4096 }, /min < avg < max/],
      [{ min: 512, avg: 1024, max: 1024 }, /min < avg < max/],
      [{ min: 512, avg: 1024.5, max: 4096 }, /avg must be a positive integer/],
      [{ min: 512, avg: 1024, max: 2 ** 32 }, /max must be below 4 GiB/],
      [{ min: 512, avg: 2 ** 31, max: 2 ** 32 - 1 }, /avg must be at most 1 GiB/],
    ];
    for (const [params, message] of cases) assert.throws(() => new FastCdc(params), (err: unknown) => err instanceof ConfigError && message.test(err.message));
    assert.doesNotThrow(() => new FastCdc({ min: 100, avg: 3000, max: 10000 }));
  });

  it('gives the same boundaries however the input is split into buffers', () => {
    const data = pseudoRandomBytes('split small', 2 * MiB);
    const whole = chunkLengths(new FastCdc(SMALL), data);
    assert.ok(whole.length > 100);
    for (const max of [1, 7, 100, 5000, 70000]) {
      assert.deepEqual(chunkLengths(new FastCdc(SMALL), data, randomSplits(`splits ${max}`, 1000, max)), whole, `buffers of up to ${max} bytes`);
    }
    assert.deepEqual(chunkLengths(new FastCdc(DEFAULT_CHUNKER_PARAMS), data64, randomSplits('splits default', 1000, 3 * MiB)), lengths64);
  });

  it('respects min and max exactly', () => {
    const data = pseudoRandomBytes('min max', 4 * MiB);
    const tight: ChunkerParams = { min: 3000, avg: 4096, max: 5000 };
    for (const params of [SMALL, tight]) {
      const lengths = chunkLengths(new FastCdc(params), data);
      for (const len of lengths.slice(0, -1)) assert.ok(len >= params.min && len <= params.max, `chunk of ${len} bytes outside [${params.min}, ${params.max}]`);
      if (params === tight) assert.ok(lengths.includes(tight.max), 'chunks are cut at max');
    }
    // Constant data never matches a mask, so it is cut at max.
    assert.deepEqual(chunkLengths(new FastCdc(DEFAULT_CHUNKER_PARAMS), new Uint8Array(20 * MiB)), [8 * MiB, 8 * MiB, 4 * MiB]);
  });

  it('averages within 25% of avg on 64 MiB of random data', () => {
    const mean = data64.length / lengths64.length;
    assert.ok(Math.abs(mean - DEFAULT_CHUNKER_PARAMS.avg) <= 0.25 * DEFAULT_CHUNKER_PARAMS.avg, `mean chunk ${mean}`);
    for (const len of lengths64.slice(0, -1)) assert.ok(len >= DEFAULT_CHUNKER_PARAMS.min && len <= DEFAULT_CHUNKER_PARAMS.max);
  });

  it('changes only the first chunks when 100 bytes are inserted at the start', () => {
    const edited = Buffer.concat([pseudoRandomBytes('inserted', 100), data64]);
    const before = chunkHashes(data64, lengths64);
    const after = chunkHashes(edited, chunkLengths(new FastCdc(DEFAULT_CHUNKER_PARAMS), edited));
    const changed = after.filter((h) => !before.includes(h)).length;
    assert.ok(changed >= 1 && changed <= 2, `${changed} chunks changed`);
    assert.deepEqual(after.slice(changed), before.slice(before.length - (after.length - changed)));
    assert.ok(after.length - changed >= before.length - 2);
  });

  it('changes at most 2 chunks when one byte in the middle changes', () => {
    const edited = Buffer.from(data64);
    const middle = edited.length / 2;
    edited[middle] = edited[middle]! ^ 0xff;
    const before = chunkHashes(data64, lengths64);
    const after = chunkHashes(edited, chunkLengths(new FastCdc(DEFAULT_CHUNKER_PARAMS), edited));
    assert.ok(after.filter((h) => !before.includes(h)).length <= 2);
    assert.ok(before.filter((h) => !after.includes(h)).length <= 2);
  });

  it('cuts differently with different seeds', () => {
    const data = pseudoRandomBytes('seeds', MiB);
    const a = chunkLengths(new FastCdc(SMALL, new TextEncoder().encode('repository A')), data);
    const b = chunkLengths(new FastCdc(SMALL, new TextEncoder().encode('repository B')), data);
    const unseeded = chunkLengths(new FastCdc(SMALL), data);
    assert.notDeepEqual(a, b);
    assert.notDeepEqual(a, unseeded);
    assert.deepEqual(chunkLengths(new FastCdc(SMALL, new TextEncoder().encode('repository A')), data), a);
  });

  it('starts a new file on reset()', () => {
    const data = pseudoRandomBytes('reset', 256 * 1024);
    const cutter = new FastCdc(SMALL);
    cutter.update(data.subarray(0, 3000));
    cutter.reset();
    assert.deepEqual(chunkLengths(cutter, data), chunkLengths(new FastCdc(SMALL), data));
  });

  // The repository format depends on these exact boundaries: a change here means a new format version.
  it('produces the pinned boundaries', () => {
    const small = pseudoRandomBytes('pinned small', 256 * 1024);
    assert.deepEqual(
      chunkLengths(new FastCdc(SMALL), small),
      [13133, 8366, 8560, 4327, 8248, 8198, 2808, 10463, 11287, 9251, 10668, 8519, 7935, 3664, 8898, 8947, 13975, 6715, 8990, 11871, 6614, 7942, 13764, 7705, 8643, 8963, 10205, 9317, 9717, 4451],
    );
    assert.deepEqual(
      chunkLengths(new FastCdc(SMALL, new TextEncoder().encode('repo secret')), small),
      [8313, 8760, 8800, 13501, 8597, 5333, 11892, 14488, 8625, 2906, 15809, 10278, 8225, 2873, 5319, 5745, 8317, 9482, 8200, 11617, 5713, 10693, 3011, 8947, 8447, 2440, 9082, 2943, 10222, 4966, 9819, 7376, 1405],
    );
    assert.deepEqual(
      chunkLengths(new FastCdc(DEFAULT_CHUNKER_PARAMS), new Prng('pinned default').next(16 * MiB)),
      [1082854, 1153687, 1111236, 909391, 1289448, 1289488, 1317731, 1144158, 659506, 1586908, 1074806, 729441, 1330021, 710253, 1388288],
    );
  });
});
