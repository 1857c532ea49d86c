import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IntegrityError } from '../src/errors.js';
import { DiskIndex } from '../src/repo/index/disk-index.js';
import { BlobListParser, encodeBlobList, parseBlobList } from '../src/repo/index/blob-list.js';
import { decodeLocation, decodeRecord, encodeRecord, RECORD_SIZE, type BlobLocation, type IndexEntry } from '../src/repo/index/records.js';
import { scanRecords } from '../src/repo/index/scan.js';
import { RecordSorter } from '../src/repo/index/sort.js';
import { pseudoRandomBytes } from './fixtures/prng.js';
import { syntheticEntries, syntheticId, syntheticLocation } from './fixtures/synthetic-index.js';

const HEX = 'ab'.padEnd(64, '0123456789abcdef');

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** The blob list (an index object's plaintext) of `entries`, as one buffer. */
async function encodeAll(entries: IndexEntry[]): Promise<Buffer> {
  return Buffer.concat(await collect(encodeBlobList(entries)));
}

/** The entries of blob-list bytes arriving in pieces. */
async function* decodeAll(bytes: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, object = 'index object'): AsyncIterable<IndexEntry> {
  const parser = new BlobListParser(object);
  for await (const piece of bytes) {
    const records = parser.push(Buffer.from(piece));
    for (let at = 0; at < records.length; at += RECORD_SIZE) yield decodeRecord(records, at, object);
  }
  parser.end();
}

/** `bytes` cut into pieces of the given sizes (cycled), as a stream. */
async function* pieces(bytes: Buffer, sizes: number[]): AsyncIterable<Uint8Array> {
  for (let at = 0, s = 0; at < bytes.length; s++) {
    const end = at + sizes[s % sizes.length]!;
    yield bytes.subarray(at, end);
    at = end;
  }
}

function isIntegrityError(pattern: RegExp, object = 'index/1234') {
  return (err: unknown) => err instanceof IntegrityError && err.object === object && pattern.test(err.message);
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kbrackup-disk-index-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('index records', () => {
  it('round-trip every field, up to the format limits', () => {
    const locs: BlobLocation[] = [
      { kind: 'chunk', objectId: HEX, keyOffset: 0, bundleOffset: 0, bundleLength: 0, blobOffset: 0, rawLength: 0 },
      { kind: 'pack', objectId: HEX, keyOffset: 2 ** 48 - 1, bundleOffset: 2 ** 48 - 1, bundleLength: 2 ** 32 - 1, blobOffset: 2 ** 32 - 1, rawLength: 2 ** 32 - 1 },
      syntheticLocation(12345),
    ];
    const buf = Buffer.alloc(RECORD_SIZE * locs.length);
    locs.forEach((loc, i) => encodeRecord(syntheticId(i), loc, buf, i * RECORD_SIZE));
    locs.forEach((loc, i) => assert.deepEqual(decodeRecord(buf, i * RECORD_SIZE, 'test'), { id: syntheticId(i), loc }));
  });

  it('reject values the format cannot hold', () => {
    const good = syntheticLocation(1);
    const bad: [Partial<BlobLocation>, RegExp][] = [
      [{ objectId: HEX.toUpperCase() }, /object id/],
      [{ objectId: `${HEX}0` }, /object id/],
      [{ objectId: '../x' }, /object id/],
      [{ kind: 'index' as 'pack' }, /kind/],
      [{ keyOffset: 2 ** 48 }, /keyOffset/],
      [{ bundleOffset: -1 }, /bundleOffset/],
      [{ bundleLength: 2 ** 32 }, /bundleLength/],
      [{ blobOffset: 0.5 }, /blobOffset/],
      [{ rawLength: 1.5 }, /rawLength/],
    ];
    for (const [change, message] of bad) {
      assert.throws(() => encodeRecord(syntheticId(1), { ...good, ...change }, Buffer.alloc(RECORD_SIZE), 0), (err: unknown) => err instanceof RangeError && message.test(err.message));
    }
    assert.throws(() => encodeRecord(Buffer.alloc(31), good, Buffer.alloc(RECORD_SIZE), 0), /32 bytes/);
  });

  it('detect an invalid stored record', () => {
    assert.throws(() => decodeLocation(Buffer.alloc(RECORD_SIZE), 0, 'some file'), (err: unknown) => err instanceof IntegrityError && err.object === 'some file');
  });

  it('sort by full id when ids share a long prefix, keeping the first of equal ids first', () => {
    const count = 300;
    const buf = Buffer.alloc(count * RECORD_SIZE);
    const ids = Array.from({ length: count }, (_, i) => {
      const id = syntheticId(i % 200);
      if (i % 3 === 0) id.fill(7, 0, 8); // many ids with the same 64-bit prefix
      return id;
    });
    ids.forEach((id, i) => encodeRecord(id, syntheticLocation(i), buf, i * RECORD_SIZE));
    const order = [...new RecordSorter(count).sort(buf, count)];
    const expected = ids.map((id, i) => ({ id, i })).sort((a, b) => Buffer.compare(a.id, b.id) || a.i - b.i).map((x) => x.i);
    assert.deepEqual(order, expected);
  });
});

describe('blob lists (index objects and pack trailers)', () => {
  const entries = Array.from({ length: 2000 }, (_, i) => ({ id: syntheticId(i), loc: syntheticLocation(i) }));

  it('round-trip however the bytes are split', async () => {
    const bytes = await encodeAll(entries);
    for (const sizes of [[bytes.length], [1], [7, 80, 1000, 3], [65536]]) {
      assert.deepEqual(await collect(decodeAll(pieces(bytes, sizes), 'index/1234')), entries);
    }
    assert.deepEqual(await collect(decodeAll([await encodeAll([])])), []);
    assert.deepEqual(parseBlobList(bytes, 'index/1234'), entries);
  });

  it('take ~36 bytes a blob in bundles of small files: ids, and small numbers as varints', async () => {
    const objectId = syntheticId(0, 'pack').toString('hex');
    const small = Array.from({ length: 2000 }, (_, i) => ({
      id: syntheticId(i),
      loc: { kind: 'pack' as const, objectId, keyOffset: 0, bundleOffset: 200 + Math.floor(i / 100) * 50_000, bundleLength: 50_000, blobOffset: (i % 100) * 300, rawLength: 300 },
    }));
    const bytes = await encodeAll(small);
    assert.ok(bytes.length < small.length * 37, `${bytes.length} bytes for ${small.length} blobs`);
    assert.deepEqual(parseBlobList(bytes, 'index/1234'), small);
  });

  it('detect truncation at any point', async () => {
    const bytes = await encodeAll(entries.slice(0, 5));
    for (let cut = 0; cut < bytes.length; cut += 3) {
      await assert.rejects(collect(decodeAll([bytes.subarray(0, cut)], 'index/1234')), isIntegrityError(/truncated|blobs but/), `cut at ${cut}`);
    }
  });

  it('detect a wrong count, extra bytes and an unknown object kind', async () => {
    const bytes = await encodeAll(entries.slice(0, 5));
    const changed = (at: number, value: number) => {
      const copy = Buffer.from(bytes);
      copy[at] = value;
      return copy;
    };
    await assert.rejects(collect(decodeAll([changed(bytes.length - 1, 4)], 'index/1234')), isIntegrityError(/holds 5 blobs but its end says 4/));
    await assert.rejects(collect(decodeAll([Buffer.concat([bytes, Buffer.alloc(3)])], 'index/1234')), isIntegrityError(/after its end/));
    await assert.rejects(collect(decodeAll([changed(0, 9)], 'index/1234')), isIntegrityError(/unknown object kind 9/));
  });
});

describe('scanning the index for a few ids (restoring one file)', () => {
  /** Records of ids `from`..`to - 1` at their synthetic locations, as one batch. */
  const batch = (from: number, to: number, at = (i: number) => syntheticLocation(i)) => {
    const out = Buffer.alloc((to - from) * RECORD_SIZE);
    for (let i = from; i < to; i++) encodeRecord(syntheticId(i), at(i), out, (i - from) * RECORD_SIZE);
    return out;
  };

  it('finds each wanted id in any batch, the first record of an id winning, and leaves out ids in none', async () => {
    const other = syntheticLocation(999_999);
    // Id 7 again in a later batch, at another place: the first record is the one used.
    const batches = [batch(0, 1000), batch(1000, 3000), batch(7, 8, () => other)];
    async function* source() {
      yield* batches;
    }
    const wanted = [7, 999, 1000, 2999].map((i) => syntheticId(i));
    const found = await scanRecords(source(), [...wanted, syntheticId(5000)]);
    assert.equal(found.size, 4);
    for (const i of [7, 999, 1000, 2999]) assert.deepEqual(found.get(syntheticId(i).toString('hex')), syntheticLocation(i), `id ${i}`);
    assert.equal(found.has(syntheticId(5000).toString('hex')), false);
  });

  it('stops reading once every wanted id is found', async () => {
    let read = 0;
    async function* source() {
      for (let b = 0; b < 10; b++) {
        read++;
        yield batch(b * 100, b * 100 + 100);
      }
    }
    const found = await scanRecords(source(), [syntheticId(150)]);
    assert.deepEqual(found.get(syntheticId(150).toString('hex')), syntheticLocation(150));
    assert.equal(read, 2);
  });
});

describe('DiskIndex', () => {
  it('finds every built id over several sorted runs, and no absent one', async () => {
    const count = 10_000;
    const index = await DiskIndex.build(dir, syntheticEntries(count), { runRecords: 700, fanIn: 3 });
    assert.equal(index.size, count);
    for (let i = 0; i < count; i += 7) {
      assert.deepEqual(await index.lookup(syntheticId(i)), syntheticLocation(i));
      assert.deepEqual(await index.lookup(syntheticId(i)), syntheticLocation(i));
    }
    for (let i = 0; i < 2000; i++) {
      assert.equal(await index.lookup(syntheticId(i, 'absent')), undefined);
      assert.equal(await index.lookup(syntheticId(i, 'absent')), undefined);
    }
    assert.equal(await index.has(syntheticId(count - 1)), true);
    assert.equal(await index.has(syntheticId(count - 1)), true);
    assert.equal(await index.has(syntheticId(count)), false);
    assert.equal(await index.has(syntheticId(count)), false);
    await index.close();
  });

  it('keeps the first location of repeated ids, within a run and across runs', async () => {
    async function* sources(): AsyncIterable<IndexEntry> {
      for (let i = 0; i < 3000; i++) yield { id: syntheticId(i % 1000), loc: syntheticLocation(i) };
    }
    const index = await DiskIndex.build(dir, sources(), { runRecords: 400, fanIn: 2 });
    assert.equal(index.size, 1000);
    for (let i = 0; i < 1000; i++) assert.deepEqual(await index.lookup(syntheticId(i)), syntheticLocation(i));
    await index.close();
  });

  it('searches large buckets of ids sharing their first bytes', async () => {
    const ids = Array.from({ length: 3000 }, (_, i) => {
      const id = syntheticId(i);
      if (i % 2) id.fill(0x42, 0, 4);
      return id;
    });
    const index = await DiskIndex.build(dir, ids.map((id, i) => ({ id, loc: syntheticLocation(i) })));
    for (const [i, id] of ids.entries()) {
      assert.deepEqual(await index.lookup(id), syntheticLocation(i));
      assert.equal(await index.has(id), true);
    }
    const absent = syntheticId(0, 'absent');
    absent.fill(0x42, 0, 4);
    assert.equal(await index.lookup(absent), undefined);
    await index.close();
  });

  it('finds ids added during the run, past spills and merges of spilled runs', async () => {
    const index = await DiskIndex.build(dir, syntheticEntries(5000), { runRecords: 2000, recentCapacity: 30 });
    const added = 2500; // 83 spills: spilled runs are merged 8 at a time, and 8 of those again
    for (let i = 0; i < added; i++) {
      assert.equal(await index.add(syntheticId(i, 'added'), syntheticLocation(i + 7000)), true);
      if (i % 97 === 0) assert.deepEqual(await index.lookup(syntheticId(i, 'added')), syntheticLocation(i + 7000));
    }
    assert.equal(index.size, 5000 + added);
    for (let i = 0; i < added; i++) {
      assert.deepEqual(await index.lookup(syntheticId(i, 'added')), syntheticLocation(i + 7000), `added id ${i}`);
      assert.equal(await index.has(syntheticId(i, 'added')), true);
    }
    for (let i = 0; i < 5000; i += 11) assert.deepEqual(await index.lookup(syntheticId(i)), syntheticLocation(i));
    for (let i = 0; i < 1000; i++) assert.equal(await index.has(syntheticId(i, 'absent')), false);
    // Known ids, wherever they are (built, spilled, still in memory), keep their first location.
    for (const id of [syntheticId(17), syntheticId(3, 'added'), syntheticId(added - 1, 'added')]) {
      const first = await index.lookup(id);
      assert.equal(await index.add(id, syntheticLocation(99)), false);
      assert.deepEqual(await index.lookup(id), first);
    }
    assert.equal(index.size, 5000 + added);
    await index.close();
  });

  it('answers lookups that run concurrently with adds and spills', async () => {
    const index = await DiskIndex.build(dir, syntheticEntries(3000), { recentCapacity: 64 });
    const count = 1500;
    const adds = Array.from({ length: count }, (_, i) => index.add(syntheticId(i, 'added'), syntheticLocation(i)));
    const lookups = Array.from({ length: count }, async (_, i) => {
      await adds[i];
      return Promise.all([index.lookup(syntheticId(i, 'added')), index.lookup(syntheticId(i * 2))]);
    });
    const duplicates = Array.from({ length: 100 }, (_, i) => index.add(syntheticId(i * 3, 'added'), syntheticLocation(0)));
    assert.deepEqual(await Promise.all(adds), Array(count).fill(true));
    assert.deepEqual(await Promise.all(duplicates), Array(100).fill(false));
    for (const [i, [added, built]] of (await Promise.all(lookups)).entries()) {
      assert.deepEqual(added, syntheticLocation(i));
      assert.deepEqual(built, syntheticLocation(i * 2));
    }
    assert.equal(index.size, 3000 + count);
    await index.close();
  });

  it('works empty, and builds from index objects', async () => {
    const empty = await DiskIndex.build(dir, []);
    assert.equal(empty.size, 0);
    assert.equal(await empty.lookup(syntheticId(1)), undefined);
    assert.equal(await empty.add(syntheticId(1), syntheticLocation(1)), true);
    assert.deepEqual(await empty.lookup(syntheticId(1)), syntheticLocation(1));
    await empty.close();

    const objects = [await encodeAll(await collect(syntheticEntries(1500))), await encodeAll(await collect(syntheticEntries(500, 'other')))];
    async function* entries(): AsyncIterable<IndexEntry> {
      for (const [n, bytes] of objects.entries()) yield* decodeAll(pieces(bytes, [4096]), `index/${n}`);
    }
    const index = await DiskIndex.build(dir, entries(), { runRecords: 512 });
    assert.equal(index.size, 2000);
    assert.deepEqual(await index.lookup(syntheticId(1499)), syntheticLocation(1499));
    assert.deepEqual(await index.lookup(syntheticId(499, 'other')), syntheticLocation(499));
    await index.close();
  });

  it('deletes its files on close and after a failed build', async () => {
    const index = await DiskIndex.build(dir, syntheticEntries(5000), { runRecords: 1000, recentCapacity: 10 });
    for (let i = 0; i < 100; i++) await index.add(syntheticId(i, 'added'), syntheticLocation(i));
    assert.equal((await readdir(dir)).length, 1);
    await index.close();
    await index.close();
    assert.deepEqual(await readdir(dir), []);
    await assert.rejects(index.add(syntheticId(1, 'late'), syntheticLocation(1)), /closed/);

    async function* failing(): AsyncIterable<IndexEntry> {
      yield* syntheticEntries(2500);
      throw new Error('source failed');
    }
    await assert.rejects(DiskIndex.build(dir, failing(), { runRecords: 1000 }), /source failed/);
    await assert.rejects(DiskIndex.build(dir, [{ id: syntheticId(1), loc: { ...syntheticLocation(1), objectId: 'nope' } }]), RangeError);
    assert.deepEqual(await readdir(dir), []);
  });

  it('rejects ids of the wrong length', async () => {
    const index = await DiskIndex.build(dir, []);
    await assert.rejects(index.lookup(pseudoRandomBytes('short', 20)), /32 bytes/);
    await assert.rejects(index.has(pseudoRandomBytes('short', 33)), /32 bytes/);
    await index.close();
  });

  it('keeps peak RSS with 1,000,000 ids within 16 MiB of 1,000 ids', async () => {
    const script = fileURLToPath(new URL('./fixtures/index-memory.ts', import.meta.url));
    const run = (ids: number) =>
      new Promise<{ ids: number; size: number; found: number; buildMs: number; maxRssKiB: number }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--max-old-space-size=32', '--import', 'tsx', script, String(ids), '100000', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`index-memory.ts ${ids} exited with ${code}`))));
      });
    // Medians of three pairs: one run's peak moved by 15 MiB between runs on Node 24 (load, GC timing).
    const pairs = [];
    for (let i = 0; i < 3; i++) pairs.push(await Promise.all([run(1000), run(1_000_000)]));
    for (const [, large] of pairs) {
      assert.equal(large.size, 1_001_000);
      assert.equal(large.found, 50_000);
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[1]!;
    const small = median(pairs.map(([s]) => s.maxRssKiB)) / 1024;
    const large = median(pairs.map(([, l]) => l.maxRssKiB)) / 1024;
    const growthMiB = large - small;
    console.log(`peak RSS (medians of 3): ${small.toFixed(1)} MiB with 1k ids, ${large.toFixed(1)} MiB with 1M ids (+${growthMiB.toFixed(1)} MiB); builds of 1M ids ${pairs.map(([, l]) => l.buildMs).join('/')} ms`);
    assert.ok(growthMiB <= 16, `peak RSS grew by ${growthMiB.toFixed(1)} MiB`);
  });
});
