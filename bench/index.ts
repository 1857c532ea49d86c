// Disk index at scale: `node --import tsx bench/index.ts [ids]` prints build time, disk size and lookup rates.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskIndex } from '../src/repo/index/disk-index.js';
import { syntheticEntries, syntheticId } from '../test/fixtures/synthetic-index.js';

const count = Number(process.argv[2] ?? 1_000_000);
const LOOKUPS = 100_000;
const dir = await mkdtemp(join(tmpdir(), 'kbrackup-bench-index-'));

async function diskBytes(): Promise<number> {
  let total = 0;
  for (const sub of await readdir(dir)) for (const f of await readdir(join(dir, sub))) total += (await stat(join(dir, sub, f))).size;
  return total;
}

/** Calls per second and CPU µs per call of `n` calls of `op`, `parallel` at a time. */
async function rate(n: number, parallel: number, op: (i: number) => unknown): Promise<string> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) await op(next++);
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return `${(n / seconds).toFixed(0)}/s (${((used.user + used.system) / n).toFixed(1)} µs CPU each)`;
}

try {
  let start = performance.now();
  const index = await DiskIndex.build(dir, syntheticEntries(count));
  const buildSeconds = (performance.now() - start) / 1000;
  const bytes = await diskBytes();
  console.log(`build: ${count} ids in ${buildSeconds.toFixed(2)} s, ${(bytes / 1024 / 1024).toFixed(1)} MiB on disk (${(bytes / count).toFixed(0)} B/id)`);

  const ids = Array.from({ length: 10_000 }, (_, i) => syntheticId((i * 7919) % count));
  const absent = Array.from({ length: 10_000 }, (_, i) => syntheticId(i, 'absent'));
  const present = async (i: number) => {
    if (!(await index.lookup(ids[i % ids.length]!))) throw new Error('lookup missed a present id');
  };
  const missing = async (i: number) => {
    if (await index.has(absent[i % absent.length]!)) throw new Error('found an absent id');
  };
  for (const parallel of [1, 16]) console.log(`lookup, ${parallel} in flight: present ${await rate(LOOKUPS, parallel, present)}, absent ${await rate(LOOKUPS, parallel, missing)}`);
  start = performance.now();
  for await (const { id, loc } of syntheticEntries(LOOKUPS, 'added')) await index.add(id, loc);
  console.log(`add: ${LOOKUPS} new ids in ${((performance.now() - start) / 1000).toFixed(2)} s (check + insert, spills and merges included)`);
  console.log(`after adds: lookup absent ${await rate(LOOKUPS, 1, missing)}; size ${index.size}; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  await index.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
