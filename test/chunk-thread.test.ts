import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Worker } from 'node:worker_threads';
import type * as ThreadModule from '../src/chunker/chunk-thread.js';
import { newCutter, type CutterSpec } from '../src/chunker/spec.js';

// The thread runs compiled code (dist/chunker/chunk-worker.js), as a backup does: load that build.
const { BLOCKS_AHEAD, CHUNK_BLOCK, ChunkThread, chunkThreadMode } = (await import(new URL('../dist/chunker/chunk-thread.js', import.meta.url).href)) as typeof ThreadModule;

const KEY = randomBytes(32);
const FASTCDC: CutterSpec = { config: { algorithm: 'fastcdc', min: 8 * 1024, avg: 32 * 1024, max: 128 * 1024 }, seed: randomBytes(32) };
const FIXED: CutterSpec = { config: { algorithm: 'fixed', size: 100_000 }, seed: new Uint8Array(0) };

interface Chunked {
  sha256: string;
  ends: number[];
  ids: string[];
}

/** What the thread says about `data` fed in blocks of `block` bytes. */
async function onThread(thread: ThreadModule.ChunkThread, data: Buffer, block: number): Promise<Chunked> {
  const file = thread.open();
  const ends: number[] = [];
  const ids: string[] = [];
  for (let start = 0; start < data.length; start += block) {
    const piece = data.subarray(start, Math.min(start + block, data.length));
    const slot = file.take();
    piece.copy(slot.buf);
    const answer = await file.cut(slot, piece.length);
    file.release(slot);
    ends.push(...answer.cuts.map((c) => start + c));
    ids.push(...answer.ids.map((id) => id.toString('hex')));
  }
  const { sha256, lastId } = await file.end();
  if (lastId) {
    ends.push(data.length);
    ids.push(lastId.toString('hex'));
  }
  return { sha256, ends, ids };
}

/** The same, computed here with the cutter and node:crypto in one piece. */
function reference(spec: CutterSpec, data: Buffer): Chunked {
  const cutter = newCutter(spec);
  const ends: number[] = [];
  let at = 0;
  while (at < data.length) {
    const { consumed, boundary } = cutter.update(data.subarray(at));
    at += consumed;
    if (boundary || at === data.length) ends.push(at);
  }
  const ids = ends.map((end, i) => createHmac('sha256', KEY).update(data.subarray(i === 0 ? 0 : ends[i - 1], end)).digest('hex'));
  return { sha256: createHash('sha256').update(data).digest('hex'), ends, ids };
}

describe('chunk thread', () => {
  test('cuts, file SHA-256 and chunk ids match the cutter and node:crypto, whatever the block sizes', async () => {
    const data = randomBytes(1024 * 1024 + 333);
    for (const [spec, mode] of [[FASTCDC, 'thread'], [FIXED, 'thread'], [FASTCDC, 'inline'], [FIXED, 'inline']] as const) {
      const thread = new ChunkThread(spec, KEY, mode);
      try {
        const expected = reference(spec, data);
        assert.ok(expected.ends.length > 5, 'the data is cut into several chunks');
        for (const block of [CHUNK_BLOCK, 100_000, 4096, 7]) {
          const input = block === 7 ? data.subarray(0, 50_000) : data;
          assert.deepEqual(await onThread(thread, input, block), block === 7 ? reference(spec, input) : expected, `${spec.config.algorithm} ${mode}, blocks of ${block}`);
        }
        const empty = await thread.open().end();
        assert.deepEqual(empty, { sha256: createHash('sha256').digest('hex') });
      } finally {
        await thread.close();
      }
    }
  });

  test('files chunked at the same time keep their own state', async () => {
    for (const mode of ['thread', 'inline'] as const) {
      const thread = new ChunkThread(FASTCDC, KEY, mode);
      try {
        const inputs = [randomBytes(900_000), randomBytes(600_000), randomBytes(50_000)];
        const results = await Promise.all(inputs.map((data, i) => onThread(thread, data, 64 * 1024 + i)));
        results.forEach((r, i) => assert.deepEqual(r, reference(FASTCDC, inputs[i] as Buffer), `${mode}, file ${i}`));
      } finally {
        await thread.close();
      }
    }
  });

  test('--chunk-thread on and off are obeyed (auto under a 64 MiB limit: test/container.test.ts)', () => {
    assert.equal(chunkThreadMode('on'), 'thread');
    assert.equal(chunkThreadMode('off'), 'inline');
  });

  test('a reader cannot take more slots than the ring has, and a dead thread fails waiting callers instead of hanging', async () => {
    const thread = new ChunkThread(FASTCDC, KEY);
    const file = thread.open();
    const slots = Array.from({ length: BLOCKS_AHEAD + 1 }, () => file.take());
    assert.throws(() => file.take(), RangeError);
    file.release(slots[0] as ThreadModule.Slot);
    assert.equal(file.take().index, slots[0]?.index, 'a released slot is taken again');
    assert.equal((await file.cut(slots[1] as ThreadModule.Slot, 10)).cuts.length, 0);
    // Stop the thread the way a crash would: whatever waits on it afterwards must fail, not hang.
    const worker = (thread as unknown as { worker: Worker }).worker;
    const exited = once(worker, 'exit');
    await worker.terminate();
    await exited;
    await assert.rejects(file.end(), /chunk thread exited/);
    const late = thread.open();
    await assert.rejects(late.cut(late.take(), 1), /chunk thread exited/);
    await thread.close();
  });
});
