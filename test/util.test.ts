import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { displayName, fromBytes, parseDisplayed, toBytes } from '../src/repo/tree/names.js';
import { ByteBudget } from '../src/util/byte-budget.js';
import { sortStrings } from '../src/util/external-sort.js';
import { parseDuration, parseSize } from '../src/util/sizes.js';
import { TaskGroup } from '../src/util/task-group.js';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('ByteBudget', () => {
  it('holds reservations to the limit and hands freed bytes to waiters in order', async () => {
    const budget = new ByteBudget(10);
    await budget.reserve(6);
    const order: string[] = [];
    const a = budget.reserve(5).then(() => order.push('a'));
    const b = budget.reserve(1).then(() => order.push('b'));
    await sleep(5);
    assert.deepEqual(order, []);
    assert.equal(budget.inUse, 6);
    budget.release(6);
    await Promise.all([a, b]);
    assert.deepEqual(order, ['a', 'b']);
    assert.equal(budget.inUse, 6);
    await assert.rejects(budget.reserve(11), RangeError);
  });

  it('rejects every waiter, and every later reserve, once its signal aborts', async () => {
    const controller = new AbortController();
    const budget = new ByteBudget(1, controller.signal);
    await budget.reserve(1);
    const waiting = budget.reserve(1);
    controller.abort(new Error('stopped'));
    await assert.rejects(waiting, /stopped/);
    await assert.rejects(budget.reserve(1), /stopped/);
  });
});

describe('TaskGroup', () => {
  it('runs at most `concurrency` tasks at once', async () => {
    const group = new TaskGroup(2);
    let running = 0;
    let most = 0;
    for (let i = 0; i < 6; i++) {
      await group.run(async () => {
        running++;
        most = Math.max(most, running);
        await sleep(5);
        running--;
      });
    }
    await group.wait();
    assert.equal(most, 2);
  });

  it('the first failure aborts the others and is what wait() throws', async () => {
    const group = new TaskGroup(3);
    let sawAbort = false;
    await group.run(async (signal) => {
      await sleep(50, undefined, { signal }).catch(() => (sawAbort = true));
    });
    await group.run(async () => {
      await sleep(5);
      throw new Error('first');
    });
    await group.run(async () => {
      await sleep(10);
      throw new Error('second');
    });
    await assert.rejects(group.wait(), /first/);
    assert.equal(sawAbort, true);
    await assert.rejects(group.run(async () => undefined), /first/);
  });

  it('stops when its parent signal aborts', async () => {
    const parent = new AbortController();
    const group = new TaskGroup(1, parent.signal);
    await group.run(async (signal) => sleep(1000, undefined, { signal }).catch(() => undefined));
    parent.abort(new Error('cancelled'));
    await assert.rejects(group.wait(), /cancelled/);
  });
});

describe('external sort', () => {
  it('sorts byte strings as bytes, in memory and through runs on disk, and removes its runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kbrackup-sort-'));
    try {
      let seed = 7;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
      const items = Array.from({ length: 5000 }, () => String.fromCharCode(...Array.from({ length: 1 + (rand() % 20) }, () => rand() % 256)));
      const expected = [...items].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
      assert.deepEqual(await collect(sortStrings(items, dir)), expected);
      assert.deepEqual(await collect(sortStrings(items, dir, 700)), expected);
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('names', () => {
  it('shows valid UTF-8 as text and escapes the rest so that the shown form parses back to the bytes', () => {
    const cases: [Buffer, string][] = [
      [Buffer.from('plain.txt'), 'plain.txt'],
      [Buffer.from('été 😀'), 'été 😀'],
      [Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e]), 'bad\\xff.'],
      [Buffer.from('a\nb\tc'), 'a\\nb\\tc'],
      [Buffer.concat([Buffer.from('back\\slash'), Buffer.of(0xc3)]), 'back\\\\slash\\xc3'],
    ];
    for (const [bytes, shown] of cases) {
      const name = fromBytes(bytes);
      assert.equal(displayName(name), shown);
      assert.deepEqual(toBytes(parseDisplayed(shown)), bytes);
    }
  });
});

describe('sizes and durations', () => {
  it('parse what users write, and refuse the rest', () => {
    assert.equal(parseSize('4MiB'), 4 * 1024 * 1024);
    assert.equal(parseSize('512k'), 512 * 1024);
    assert.equal(parseSize('lots'), undefined);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('90'), 90_000);
    assert.equal(parseDuration('2d'), 172_800_000);
    assert.equal(parseDuration('soon'), undefined);
  });
});
