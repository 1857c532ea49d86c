/**
 * Issue 15, temp space: a backup's temp files live in one folder (a pod's size-limited emptyDir, here a
 * real size-limited tmpfs). Too small a folder is a clear error naming it and the size needed; one smaller
 * than the default budget holds the backup back until uploads free space; a folder that fills up mid-run
 * stops it naming the folder, and no half-written object is ever stored. Needs root (mount).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonLines, type RunResult } from './helpers/cli.js';
import { writePseudoRandom } from './helpers/data.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { reportFigures } from './helpers/figures.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';
import { lostBytes } from './helpers/restore-check.js';
import { initS3Repo, type S3Repo } from './helpers/s3repo.js';
import { startS3Server, type S3Server } from './helpers/s3server.js';
import { waitUntil } from './helpers/wait.js';

const MiB = 1024 * 1024;

/** Bytes in use on the file system of `dir`. */
function used(dir: string): number {
  const s = statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

/** Bytes free on the file system of `dir`. */
function free(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/** Take the space of the file system of `dir` but `leave` bytes, as another writer to the same emptyDir would. */
function fill(dir: string, leave: number): void {
  const fd = openSync(join(dir, 'filler'), 'w');
  const block = Buffer.alloc(MiB, 1);
  try {
    for (let rest = free(dir) - leave; rest > 0; rest -= block.length) writeSync(fd, block, 0, Math.min(block.length, rest));
  } finally {
    closeSync(fd);
  }
}

describe('temp space: a small or full emptyDir (issue 15)', () => {
  let fx: Fixture;
  let server: S3Server;
  let proxy: FaultProxy;
  let s3: S3Repo;
  let src: string;
  const mounts: string[] = [];

  /** A fresh tmpfs of `size` below the fixture, as a pod's emptyDir with a sizeLimit. */
  async function tmpfs(name: string, size: string): Promise<string> {
    const dir = join(fx.dir, name);
    await mkdir(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
    mounts.push(dir);
    return dir;
  }

  function backup(tempDir: string, ...extra: string[]): Promise<RunResult> {
    return s3.cli(['backup', '--repo', s3.repo, '--credentials', s3.cred, '--temp-dir', tempDir, '--json', ...extra, src]);
  }

  async function snapshotCount(): Promise<number> {
    return (JSON.parse(expectCode(await s3.cli(['snapshots', '--repo', s3.repo, '--credentials', s3.cred, '--json']), 0).stdout) as unknown[]).length;
  }

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'these tests mount size-limited tmpfs folders: run them as root (CI does)');
    fx = await makeFixture();
    server = await startS3Server(['kbrackup']);
    proxy = await startFaultProxy(server.port);
    // The default chunker (chunks up to 8 MiB) and 16 MiB packs: one of each in flight needs ~24.6 MiB.
    s3 = await initS3Repo(fx, server, proxy.endpoint, 'temp');
    src = join(fx.dir, 'src');
    await mkdir(join(src, 'small'), { recursive: true });
    await writePseudoRandom(join(src, 'big.bin'), 40 * MiB, 'temp space');
    for (let i = 0; i < 300; i++) await writeFile(join(src, 'small', `${i}.txt`), `small ${i}\n`.repeat(100 + i));
  });
  after(async () => {
    for (const dir of mounts) execFileSync('umount', [dir]);
    await proxy?.stop();
    await server?.stop();
    await fx?.cleanup();
  });

  it('an emptyDir smaller than one chunk and one pack: a clear error naming it and the size needed, nothing left in it', async () => {
    const tiny = await tmpfs('tiny', '8m');
    const run = expectCode(await backup(tiny), 1);
    const error = jsonLines(run.stderr).find((l) => l.level === 50);
    assert.match(String(error?.msg), new RegExp(`^temp dir ${tiny} has 8\\.00 MiB free, but a backup needs at least 24\\.\\d MiB there`));
    assert.deepEqual(await readdir(tiny), []);
    assert.equal(await snapshotCount(), 0);
    reportFigures({ scenario: 'temp dir too small (8 MiB tmpfs)', trials: 1, dataLost: 0 });
  });

  it('an emptyDir smaller than the default budget: the backup waits for slow uploads to free space and completes', async () => {
    const small = await tmpfs('small', '32m');
    const base = used(small);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, used(small) - base)), 10);
    // Slow uploads keep temp files around: without backpressure they would outgrow the folder.
    proxy.rule = (req) => (req.method === 'PUT' && /\/(chunks|packs)\//.test(req.path) ? { kind: 'slow', delayMs: 150 } : undefined);
    let run: RunResult;
    try {
      run = await backup(small);
    } finally {
      proxy.rule = () => undefined;
      clearInterval(sampler);
    }
    expectCode(run, 0);
    assert.ok(peak <= 32 * MiB, `peak temp use ${peak}`);
    assert.deepEqual(await readdir(small), []);
    const out = join(fx.dir, 'out-small');
    expectCode(await s3.cli(['restore', '--repo', s3.repo, '--key', fx.key, 'latest', '--target', out]), 0);
    const lost = lostBytes(src, out);
    assert.equal(lost, 0);
    reportFigures({ scenario: 'temp dir below the default budget (32 MiB tmpfs, slow uploads)', trials: 1, peakTempMiB: Math.round((peak / MiB) * 10) / 10, slowUploads: proxy.injected.slow, dataLost: lost });
  });

  it('an emptyDir that fills up mid-run: the run stops naming it, stores no half-written object, earlier snapshots intact', async () => {
    const full = await tmpfs('full', '32m');
    await writePseudoRandom(join(src, 'second.bin'), 24 * MiB, 'second');
    const before = await snapshotCount();
    // The backup checks the free space and plans its budget (32 MiB); then, while its first look at the
    // snapshots is held, another writer takes all but 12 MiB. Uploads stay held, so nothing frees space:
    // the new file's chunks run into ENOSPC mid-write, and the uploads held meanwhile are whole ones.
    let listings = 0;
    proxy.rule = (req) => ((req.method === 'GET' && req.url.includes('snapshots') && ++listings === 1) || (req.method === 'PUT' && req.path.includes('/chunks/')) ? { kind: 'hold' } : undefined);
    const running = backup(full);
    try {
      await proxy.waitForHeld(1);
      fill(full, 12 * MiB);
      proxy.release();
      await waitUntil(() => free(full) < MiB, 'the temp folder to fill up', 60_000, 10);
    } finally {
      proxy.rule = () => undefined;
      proxy.release();
    }
    const run = expectCode(await running, 1);
    const error = jsonLines(run.stderr).find((l) => l.level === 50);
    assert.match(String(error?.msg), new RegExp(`^temp dir ${full} ran out of space \\(ENOSPC\\) while writing a temp file; this backup needs \\d+(\\.\\d+)? MiB free there`));
    assert.deepEqual(await readdir(full), ['filler']);
    assert.equal(await snapshotCount(), before);
    // Every content object stored is whole: its trailer (written last) reads back for each of them.
    const repair = expectCode(await s3.cli(['repair', 'index', '--repo', s3.repo, '--credentials', s3.cred, '--json']), 0);
    assert.deepEqual(jsonLines(repair.stdout).find((l) => l.message_type === 'summary')?.damaged, []);
    const out = join(fx.dir, 'out-full');
    expectCode(await s3.cli(['restore', '--repo', s3.repo, '--key', fx.key, 'latest', '--target', out]), 0);
    const lost = lostBytes(src, out, ['big.bin', ...Array.from({ length: 300 }, (_, i) => `small/${i}.txt`)]);
    assert.equal(lost, 0);
    reportFigures({ scenario: 'temp dir full mid-run (ENOSPC)', trials: 1, halfWrittenObjects: 0, dataLost: lost });
  });
});
