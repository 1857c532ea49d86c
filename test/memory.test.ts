import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { POD, POD_NODE_ARGS, runCli } from './helpers/cli.js';
import { runCliCapped } from './helpers/cgroup.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

const MiB = 1024 * 1024;
/** Runs per case; the median counts, so one run's garbage-collection timing or a busy machine does not decide. */
const RUNS = 3;
/**
 * Absolute bounds of peak RSS under the image's heap flags, set from measurement with headroom:
 * backups peaked at 88-100 MiB and restores at 72-81 MiB on this machine (RSS includes ~40 MiB of the
 * node binary and its libraries). A leak of a few MiB per GiB or per 10,000 files crosses them.
 */
const BACKUP_BOUND = 120 * MiB;
const RESTORE_BOUND = 100 * MiB;
/** The spread allowed between cases of different file and chunk size (the bound). */
const SPREAD = 16 * MiB;
/**
 * ...and between 5,000 and 50,000 small files: the smaller run ends before the collector reaches its
 * steady state of garbage Buffers (bundles, trees), and fixed-size index tables fill their pages only
 * after a few thousand blobs; measured 92-95 MiB against 103-109 MiB, both bounded beyond that.
 */
const COUNT_SPREAD = 24 * MiB;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** `count` small text files in folders of 500. */
function makeSmallFiles(dir: string, count: number): void {
  for (let i = 0; i < count; i++) {
    if (i % 500 === 0) mkdirSync(join(dir, `d${i / 500}`), { recursive: true });
    const fd = openSync(join(dir, `d${Math.floor(i / 500)}`, `f${i}.txt`), 'w');
    writeSync(fd, `small file ${i} `.repeat(1 + (i % 20)));
    closeSync(fd);
  }
}

interface Case {
  name: string;
  chunk: string;
  source: string;
  check?: string;
}

/**
 * docs/ARCHITECTURE.md "Memory does not grow with the data": peak RSS of real child processes, under
 * the image's heap flags, must not depend on file size (x16), chunk size (x64) or file count (x10):
 * every case below an absolute bound and all within 16 MiB of each other, medians of three runs; and
 * the largest case backs up and restores inside a real 64 MiB memory cgroup, as in a pod.
 */
describe('memory stays flat whatever the file size, chunk size and file count', () => {
  const fixtures: Fixture[] = [];
  const dirs: Record<string, string> = {};

  before(async () => {
    const fx = await makeFixture();
    fixtures.push(fx);
    for (const name of ['big', 'small', 'few', 'many']) {
      dirs[name] = join(fx.dir, 'data', name);
      await mkdir(dirs[name], { recursive: true });
    }
    await writePseudoRandom(join(dirs.big!, 'one-gib.bin'), 1024 * MiB, 'big');
    await writePseudoRandom(join(dirs.small!, 'sixty-four.bin'), 64 * MiB, 'small');
    makeSmallFiles(dirs.few!, 5_000);
    makeSmallFiles(dirs.many!, 50_000);
  });
  after(async () => {
    for (const fx of fixtures) await fx.cleanup();
  });

  it('backup and restore: 1 GiB vs 64 MiB, 1 MiB vs 64 MiB chunks, 50,000 vs 5,000 files', async () => {
    const cases: Case[] = [
      { name: '1 GiB, 1 MiB chunks', chunk: '1MiB', source: dirs.big!, check: 'one-gib.bin' },
      { name: '1 GiB, 64 MiB chunks', chunk: '64MiB', source: dirs.big!, check: 'one-gib.bin' },
      { name: '64 MiB, 1 MiB chunks', chunk: '1MiB', source: dirs.small!, check: 'sixty-four.bin' },
      { name: '5,000 small files', chunk: '1MiB', source: dirs.few! },
      { name: '50,000 small files', chunk: '1MiB', source: dirs.many! },
    ];
    const backups: number[] = [];
    const restores: number[] = [];
    for (const c of cases) {
      const b: number[] = [];
      const r: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const fx = await makeFixture(['--chunker', 'fixed', '--chunk-size', c.chunk]);
        fixtures.push(fx);
        b.push(expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, c.source], POD), 0).peakRss);
        const out = join(fx.dir, 'out');
        r.push(expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out], POD), 0).peakRss);
        if (c.check && run === 0) assert.equal(await sha256File(join(out, c.check)), await sha256File(join(c.source, c.check)), c.name);
        await fx.cleanup();
      }
      backups.push(median(b));
      restores.push(median(r));
      const show = (v: number[]) => v.map((p) => (p / MiB).toFixed(1)).join('/');
      console.log(`${c.name}: backup peak RSS ${show(b)} MiB (median ${(median(b) / MiB).toFixed(1)}), restore ${show(r)} MiB (median ${(median(r) / MiB).toFixed(1)})`);
    }
    for (const [what, peaks, bound] of [
      ['backup', backups, BACKUP_BOUND],
      ['restore', restores, RESTORE_BOUND],
    ] as const) {
      const shown = peaks.map((p) => (p / MiB).toFixed(1)).join(', ');
      assert.ok(peaks.every((p) => p > 20 * MiB), `${what}: RSS sampling failed: ${shown}`);
      assert.ok(peaks.every((p) => p <= bound), `${what}: a median peak RSS above ${bound / MiB} MiB: ${shown}`);
      const sizes = peaks.slice(0, 3);
      const spread = Math.max(...sizes) - Math.min(...sizes);
      assert.ok(spread <= SPREAD, `${what} median peak RSS spread over file and chunk sizes ${(spread / MiB).toFixed(1)} MiB: ${shown}`);
      const counts = Math.abs(peaks[4]! - peaks[3]!);
      assert.ok(counts <= COUNT_SPREAD, `${what} median peak RSS, 5,000 vs 50,000 files: ${(counts / MiB).toFixed(1)} MiB apart: ${shown}`);
    }
  });

  it('1 GiB backs up and restores inside a real 64 MiB memory cgroup with the image heap flags', async () => {
    const fx = await makeFixture();
    fixtures.push(fx);
    const backup = await runCliCapped(64, ['backup', '--repo', fx.repo, '--credentials', fx.cred, dirs.big!], POD_NODE_ARGS);
    assert.equal(backup.oomKilled, false, 'backup OOM-killed inside 64 MiB');
    assert.equal(backup.code, 0, backup.stderr);
    const out = join(fx.dir, 'out');
    const restore = await runCliCapped(64, ['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out], POD_NODE_ARGS);
    assert.equal(restore.oomKilled, false, 'restore OOM-killed inside 64 MiB');
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(await sha256File(join(out, 'one-gib.bin')), await sha256File(join(dirs.big!, 'one-gib.bin')));
    console.log(`inside 64 MiB: backup cgroup peak ${backup.peakMiB.toFixed(1)} MiB, restore ${restore.peakMiB.toFixed(1)} MiB`);
    await rm(out, { recursive: true, force: true });
  });
});
