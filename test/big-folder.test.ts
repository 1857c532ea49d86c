import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { POD_NODE_ARGS, summaryOf } from './helpers/cli.js';
import { runCliCapped, type CappedResult } from './helpers/cgroup.js';
import { makeFixture, type Fixture } from './helpers/repo.js';

const COUNT = 120_000;

/** `count` small files named f0000000.. in `dir`, written synchronously (fast: no promise per file). */
function makeFolder(dir: string, count: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const fd = openSync(join(dir, `f${String(i).padStart(7, '0')}`), 'w');
    writeSync(fd, `file ${i}\n`);
    closeSync(fd);
  }
}

/** A run inside a 64 MiB memory cgroup with the image's heap flags must succeed without an OOM kill. */
function expectFits(what: string, r: CappedResult): CappedResult {
  assert.equal(r.oomKilled, false, `${what} was OOM-killed inside 64 MiB`);
  assert.equal(r.code, 0, `${what}: exit ${r.code} ${r.signal ?? ''}\n${r.stderr.slice(-2000)}`);
  console.log(`${what}: cgroup peak ${r.peakMiB.toFixed(1)} MiB of 64`);
  return r;
}

/**
 * docs/ARCHITECTURE.md "Memory does not grow with the data", for file counts: one folder past every
 * in-memory limit (names are sorted on disk beyond 100,000, a tree object streams beyond 512 KiB of
 * entries, the index spills, packs close at 16,384 blobs) backs up, lists and restores inside a real
 * 64 MiB memory cgroup, as in a pod, with the image's heap flags.
 */
describe(`a folder of ${COUNT.toLocaleString('en')} entries inside 64 MiB`, () => {
  let fx: Fixture;
  let src: string;
  const last = `f${String(COUNT - 1).padStart(7, '0')}`;

  before(async () => {
    fx = await makeFixture();
    src = join(fx.dir, 'data');
    makeFolder(src, COUNT);
  });
  after(() => fx.cleanup());

  it('backs up', async () => {
    const r = expectFits('backup', await runCliCapped(64, ['backup', '--repo', fx.repo, '--credentials', fx.cred, '--json', src], POD_NODE_ARGS));
    assert.equal(summaryOf(r.stdout).files_new, COUNT);
  });

  it('lists every entry', async () => {
    const r = expectFits('ls', await runCliCapped(64, ['ls', '--repo', fx.repo, '--key', fx.key, 'latest'], POD_NODE_ARGS));
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, COUNT);
    assert.match(lines.at(-1)!, new RegExp(`/${last}$`));
  });

  it('restores one file of it, reading only that folder', async () => {
    const out = join(fx.dir, 'out');
    expectFits('restore --include', await runCliCapped(64, ['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out, '--include', `/${last}`], POD_NODE_ARGS));
    assert.deepEqual(await readdir(out), [last]);
    assert.equal(await readFile(join(out, last), 'utf8'), `file ${COUNT - 1}\n`);
  });
});
