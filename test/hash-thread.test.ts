import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { HASH_BLOCK, HashThread, type FileHash } from '../src/crypto/hash-thread.js';

const KEY = randomBytes(32);

/** Feed `data` in blocks of `block` bytes, cutting chunks at the absolute offsets in `cuts`. */
async function hashOnThread(file: FileHash, data: Buffer, block: number, cuts: number[]): Promise<{ sha256: string; ids: Buffer[] }> {
  const ids: Promise<Buffer>[] = [];
  let last = 0;
  for (let start = 0; start < data.length; start += block) {
    const end = Math.min(start + block, data.length);
    await file.block(data.subarray(start, end));
    for (const c of cuts) if (c > start && c <= end) ids.push(file.cut(c - start));
    last = end;
  }
  const lastCut = cuts.filter((c) => c <= last).at(-1) ?? 0;
  const { sha256, lastId } = await file.end(data.length > lastCut);
  if (lastId) ids.push(lastId);
  return { sha256, ids: await Promise.all(ids) };
}

function expected(data: Buffer, cuts: number[]): { sha256: string; ids: Buffer[] } {
  const bounds = [0, ...cuts.filter((c) => c < data.length), data.length];
  const ids = bounds.slice(1).map((end, i) => createHmac('sha256', KEY).update(data.subarray(bounds[i], end)).digest());
  return { sha256: createHash('sha256').update(data).digest('hex'), ids };
}

describe('hash thread', () => {
  test('file SHA-256 and chunk ids match node:crypto for any blocks and cuts', async () => {
    const hashes = new HashThread();
    try {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      // Cuts inside blocks, on block ends, at the very end, and several in one block.
      const cases: [Buffer, number, number[]][] = [
        [data, HASH_BLOCK, [1_000_000, 2_097_152, data.length]],
        [data, HASH_BLOCK, [5, HASH_BLOCK, 2 * HASH_BLOCK]],
        [data, 100_000, [1, 2, 99_999, 100_000, 100_001, 2_500_000]],
        [data.subarray(0, 20), 7, [3]],
      ];
      for (const [input, block, cuts] of cases) {
        assert.deepEqual(await hashOnThread(hashes.open(KEY), input, block, cuts), expected(input, cuts), `blocks of ${block}, cuts ${cuts.join(',')}`);
      }
      const empty = await hashes.open(KEY).end(false);
      assert.equal(empty.sha256, createHash('sha256').digest('hex'));
    } finally {
      await hashes.close();
    }
  });

  test('files hashed at the same time keep their own state', async () => {
    const hashes = new HashThread();
    try {
      const inputs = [randomBytes(2_000_000), randomBytes(1_500_000), randomBytes(700_000)];
      const cuts = [[600_000, 1_300_000], [512 * 1024], []];
      const results = await Promise.all(inputs.map((data, i) => hashOnThread(hashes.open(KEY), data, 64 * 1024 + i, cuts[i] as number[])));
      results.forEach((r, i) => assert.deepEqual(r, expected(inputs[i] as Buffer, cuts[i] as number[])));
    } finally {
      await hashes.close();
    }
  });

  test('a block larger than a slot is refused, and a dead thread fails waiting callers instead of hanging', async () => {
    const hashes = new HashThread();
    const file = hashes.open(KEY);
    await assert.rejects(file.block(Buffer.alloc(HASH_BLOCK + 1)), RangeError);
    await file.block(Buffer.alloc(10));
    assert.deepEqual(await file.cut(5), createHmac('sha256', KEY).update(Buffer.alloc(5)).digest());
    // Stop the thread the way a crash would: whatever waits on it afterwards must fail, not hang.
    const worker = (hashes as unknown as { worker: Worker }).worker;
    const exited = once(worker, 'exit');
    await worker.terminate();
    await exited;
    await assert.rejects(file.end(true), /hash thread exited/);
    await assert.rejects(hashes.open(KEY).block(Buffer.alloc(1)), /hash thread exited/);
    await hashes.close();
  });
});
