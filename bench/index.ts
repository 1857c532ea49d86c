// Disk index at scale: `node --import tsx bench/index.ts [ids]` prints build time, disk size and lookup rates.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskIndex } from '../src/repo/index/disk-index.js';
import { syntheticEntries, syntheticId, syntheticLocation } from '../test/fixtures/synthetic-index.js';

const count = Number(process.argv[2] ?? 1_000_000);
const LOOKUPS = 100_000;
const dir = await mkdtemp(join(tmpdir(), 'kbrackup-bench-index-'));

async function diskBytes(): Promise<number> {
  let total = 0;
  for (const sub of await readdir(dir)) for (const f of await readdir(join(dir, sub))) total += (await stat(join(dir, sub, f))).size;
  return total;
}

/** Rate of `n` calls of `op`, `parallel` at a time. */
async function rate(n: number, parallel: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) await op(next++);
  }));
  return n / ((performance.now() - start) / 1000);
}

try {
  let start = performance.now();
  const index = await DiskIndex.build(dir, syntheticEntries(count));
  const buildSeconds = (performance.now() - start) / 1000;
  const bytes = await diskBytes();
  console.log(`build: ${count} ids in ${buildSeconds.toFixed(2)} s, ${(bytes / 1024 / 1024).toFixed(1)} MiB on disk (${(bytes / count).toFixed(0)} B/id)`);

  const ids = Array.from({ length: 10_000 }, (_, i) => syntheticId((i * 7919) % count));
  const absent = Array.from({ length: 10_000 }, (_, i) => syntheticId(i, 'absent'));
  for (const parallel of [1, 16]) {
    const hits = await rate(LOOKUPS, parallel, async (i) => {
      if (!(await index.lookup(ids[i % ids.length]!))) throw new Error('lookup missed a present id');
    });
    const misses = await rate(LOOKUPS, parallel, async (i) => {
      if (await index.has(absent[i % absent.length]!)) throw new Error('found an absent id');
    });
    console.log(`lookups (${parallel} in flight): ${hits.toFixed(0)}/s present, ${misses.toFixed(0)}/s absent`);
  }
  const cpu = process.cpuUsage();
  start = performance.now();
  for (let i = 0; i < LOOKUPS; i++) if (!index.hasSync(ids[i % ids.length]!)) throw new Error('lookup missed a present id');
  const syncSeconds = (performance.now() - start) / 1000;
  const syncCpu = process.cpuUsage(cpu);
  console.log(`hasSync: ${(LOOKUPS / syncSeconds).toFixed(0)}/s present, ${((syncCpu.user + syncCpu.system) / LOOKUPS).toFixed(1)} µs CPU each`);
  const adding = Array.from({ length: LOOKUPS }, (_, i) => ({ id: syntheticId(i, 'added'), loc: syntheticLocation(i) }));
  start = performance.now();
  for (const { id, loc } of adding) await index.add(id, loc);
  console.log(`add: ${LOOKUPS} new ids in ${((performance.now() - start) / 1000).toFixed(2)} s (lookup + insert, spills and merges included)`);
  const misses = await rate(LOOKUPS, 1, async (i) => index.has(absent[i % absent.length]!));
  console.log(`lookups after adds: ${misses.toFixed(0)}/s absent; size ${index.size}; rss ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB peak`);
  await index.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
