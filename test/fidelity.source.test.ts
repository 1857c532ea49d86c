/**
 * Issue 15, source trouble: what a backup does when the folder it reads misbehaves. Each problem is a
 * warning naming its path and exit code 3, and everything else is in the snapshot, byte for byte. The
 * moments are chosen, not hoped for: a storage that stalls on request (a proxy in front of s3rver holds
 * uploads or reads) keeps a backup between walking a file and reading it, or in the middle of reading it,
 * while the test changes the file. Unreadable files need a user whom permissions stop: `nobody`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NOBODY, jsonLines, runCli, summaryOf, type RunResult } from './helpers/cli.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { reportFigures } from './helpers/figures.js';
import { stopChild } from './helpers/process.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';
import { lostBytes } from './helpers/restore-check.js';
import { initS3Repo, type S3Repo } from './helpers/s3repo.js';
import { startS3Server, type S3Server } from './helpers/s3server.js';
import { treeOf } from './helpers/tree.js';
import { waitUntil } from './helpers/wait.js';

const MiB = 1024 * 1024;

/** The paths the backup's `error` lines name, sorted. */
function erroredPaths(run: RunResult): string[] {
  return jsonLines(run.stdout)
    .filter((l) => l.message_type === 'error')
    .map((l) => String(l.item))
    .sort();
}


describe('source trouble: a warning naming the path, exit 3, the rest backed up (issue 15)', () => {
  let fx: Fixture;

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'these tests switch to nobody with setpriv: run them as root (CI does)');
    fx = await makeFixture();
    // nobody must reach the repository, the credentials and its own folders below the fixture.
    await chmod(fx.dir, 0o755);
    await chmod(fx.cred, 0o644);
  });
  after(() => fx.cleanup());

  /** A backup run as nobody of `path`, with a temp folder nobody owns. */
  async function backupAsNobody(path: string): Promise<RunResult> {
    const tmp = join(fx.dir, 'nobody-tmp');
    await mkdir(tmp, { recursive: true });
    // Folders root made in the repository since (a snapshot's source folder, index/) must take nobody's objects.
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, fx.repo, tmp]);
    return runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--temp-dir', tmp, '--json', path], { asUser: NOBODY });
  }

  async function snapshotCount(): Promise<number> {
    return (JSON.parse(expectCode(await runCli(['snapshots', '--repo', fx.repo, '--credentials', fx.cred, '--json']), 0).stdout) as unknown[]).length;
  }

  it('unreadable files and folders are named, the rest is stored; an unreadable root fails; an empty root is named', async () => {
    const src = join(fx.dir, 'unreadable');
    await mkdir(join(src, 'locked'), { recursive: true });
    await mkdir(join(src, 'names-only'));
    await mkdir(join(src, 'fine', 'deeper'), { recursive: true });
    await writeFile(join(src, 'locked', 'inside.txt'), 'cannot be listed');
    await writeFile(join(src, 'names-only', 'a.txt'), 'its folder can be listed but not entered');
    await writeFile(join(src, 'secret.txt'), 'mode 000');
    await writeFile(join(src, 'fine', 'ok.txt'), 'readable\n');
    await writePseudoRandom(join(src, 'fine', 'deeper', 'big.bin'), 3 * MiB, 'unreadable-big');
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, src]);
    await chmod(join(src, 'locked'), 0o000);
    // Read but no search permission: the names are listed, none can be looked at.
    await chmod(join(src, 'names-only'), 0o600);
    await chmod(join(src, 'secret.txt'), 0o000);
    const before = await snapshotCount();
    const run = expectCode(await backupAsNobody(src), 3);
    assert.deepEqual(erroredPaths(run), ['locked', 'names-only/a.txt', 'secret.txt']);
    for (const p of ['locked', 'names-only/a.txt', 'secret.txt']) assert.match(run.stderr, new RegExp(`"msg":"${p.replace('.', '\\.')}: EACCES`), p);
    const out = join(fx.dir, 'unreadable-out');
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, String(summaryOf(run.stdout).snapshot_id), '--target', out]), 0);
    const lost = lostBytes(src, out, ['fine/ok.txt', 'fine/deeper/big.bin']);
    assert.equal(lost, 0);

    // The root itself: unreadable is a failure with no snapshot, never an empty "successful" one.
    const roots = [0o000, 0o300];
    for (const mode of roots) {
      await chmod(src, mode);
      const failed = expectCode(await backupAsNobody(src), 1);
      assert.match(failed.stderr, new RegExp(`backup PATH ${src} cannot be (listed|read) \\(EACCES.*no snapshot was written`), failed.stderr);
      await chmod(src, 0o755);
    }
    const empty = join(fx.dir, 'empty-volume');
    await mkdir(empty);
    const emptyRun = expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, empty]), 0);
    assert.match(emptyRun.stderr, new RegExp(`${empty}: the folder to back up is empty`));
    assert.equal(await snapshotCount(), before + 2);
    reportFigures({ scenario: 'unreadable files and folders (as nobody)', trials: 1, warnings: 3, dataLost: lost });
    reportFigures({ scenario: 'unreadable source root (modes 000, 300)', trials: roots.length, snapshotsWritten: 0, dataLost: 0 });
    reportFigures({ scenario: 'empty source root', trials: 1, dataLost: 0 });
  });

  describe('files that change between the walk and the read, or while they are read', () => {
    let server: S3Server;
    let proxy: FaultProxy;
    let s3: S3Repo;

    before(async () => {
      server = await startS3Server(['kbrackup']);
      proxy = await startFaultProxy(server.port);
      s3 = await initS3Repo(fx, server, proxy.endpoint, 'changing', ['--chunk-size', '1MiB']);
    });
    after(async () => {
      await proxy?.stop();
      await server?.stop();
    });

    it('vanish, grow (appended by a writer process), shrink: each named, stored as read, the rest exact', async () => {
      const src = join(fx.dir, 'changing');
      await mkdir(join(src, 'g'), { recursive: true });
      await writePseudoRandom(join(src, 'a-shrink.bin'), 48 * MiB, 'shrink');
      await copyFile(join(src, 'a-shrink.bin'), join(fx.dir, 'a-shrink.orig'));
      await writePseudoRandom(join(src, 'b-grow.bin'), 48 * MiB, 'grow');
      const growSha = await sha256File(join(src, 'b-grow.bin'));
      await writeFile(join(src, 'c-vanish.txt'), 'gone before it is read\n');
      await writePseudoRandom(join(src, 'e-vanish.bin'), 2 * MiB, 'vanish');
      await writePseudoRandom(join(src, 'f-ok.bin'), 3 * MiB, 'ok');
      // Few small files (below one batch), so none is read before the test lets the backup go on.
      for (let i = 0; i < 50; i++) await writeFile(join(src, 'g', `${i}.txt`), `small ${i}\n`.repeat(i + 1));
      await writeFile(join(src, 'h-grow-small.txt'), 'x'.repeat(100));

      // Chunk uploads stall: the temp budget fills and both large files stop mid-read.
      proxy.rule = (req) => (req.method === 'PUT' && req.path.includes('/chunks/') ? { kind: 'hold' } : undefined);
      const backup = s3.cli(['backup', '--repo', s3.repo, '--credentials', s3.cred, '--json', '--workers', '2', '--uploads', '2', '--temp-limit', '26MiB', src]);
      let writer;
      try {
        await proxy.waitForHeld(2);
        await new Promise((done) => setTimeout(done, 500));
        await truncate(join(src, 'a-shrink.bin'), 4 * MiB);
        await rm(join(src, 'c-vanish.txt'));
        await rm(join(src, 'e-vanish.bin'));
        await writeFile(join(src, 'h-grow-small.txt'), 'y'.repeat(MiB), { flag: 'a' });
        writer = spawn(process.execPath, ['-e', `const fs = require('fs'); const fd = fs.openSync(process.argv[1], 'a'); const b = Buffer.alloc(65536, 1); setInterval(() => fs.writeSync(fd, b), 5);`, join(src, 'b-grow.bin')], { stdio: 'ignore' });
        await waitUntil(() => writer!.pid !== undefined, 'the writer process', 10_000);
      } finally {
        proxy.rule = () => undefined;
        proxy.release();
      }
      const run = await backup;
      if (writer) await stopChild(writer);
      expectCode(run, 3);
      assert.deepEqual(erroredPaths(run), ['a-shrink.bin', 'b-grow.bin', 'c-vanish.txt', 'e-vanish.bin', 'h-grow-small.txt']);
      assert.match(run.stderr, /c-vanish\.txt: ENOENT/);
      assert.match(run.stderr, /b-grow\.bin: file changed while it was being backed up; stored as read/);

      const out = join(fx.dir, 'changing-out');
      expectCode(await s3.cli(['restore', '--repo', s3.repo, '--key', fx.key, String(summaryOf(run.stdout).snapshot_id), '--target', out]), 0);
      const restored = treeOf(out);
      assert.equal(restored.get('c-vanish.txt'), undefined);
      assert.equal(restored.get('e-vanish.bin'), undefined);
      // What was stored of the shrinking file is what it held: a prefix of the original, at least what is left of it.
      const shrunk = await readFile(join(out, 'a-shrink.bin'));
      assert.ok(shrunk.length >= 4 * MiB && shrunk.length < 48 * MiB, `a-shrink.bin restored with ${shrunk.length} bytes`);
      assert.ok(shrunk.equals((await readFile(join(fx.dir, 'a-shrink.orig'))).subarray(0, shrunk.length)), 'a-shrink.bin is a prefix of the original');
      // The growing file is stored up to the size the walk saw: its bytes then, however long the writer goes on.
      assert.equal(restored.get('b-grow.bin')!.sha256, growSha);
      assert.equal(await readFile(join(out, 'h-grow-small.txt'), 'utf8'), 'x'.repeat(100));
      const rest = ['f-ok.bin', ...Array.from({ length: 50 }, (_, i) => `g/${i}.txt`)];
      const lost = lostBytes(src, out, rest);
      assert.equal(lost, 0);
      reportFigures({ scenario: 'files that vanish, grow and shrink during a backup', trials: 1, warnings: 5, heldUploads: proxy.injected.hold, dataLost: lost });
    });

    it('a folder replaced by a file between its listing and its reading is named; the rest is stored', async () => {
      const src = join(fx.dir, 'replaced');
      await mkdir(join(src, 'p', 'q'), { recursive: true });
      await writeFile(join(src, 'p', 'q', 'inner.txt'), 'inside the folder\n');
      await writeFile(join(src, 'p', 'r.txt'), 'beside it\n');
      await writeFile(join(src, 'z.txt'), 'after it\n');
      expectCode(await s3.cli(['backup', '--repo', s3.repo, '--credentials', s3.cred, src]), 0);
      // The second backup reads the previous snapshot's folders as it walks: the root's, then p's when it
      // looks up q, which it has just found to be a folder. That read is held while q becomes a file.
      let treeReads = 0;
      proxy.rule = (req) => (req.method === 'GET' && req.path.includes('/trees/') && ++treeReads === 2 ? { kind: 'hold' } : undefined);
      const backup = s3.cli(['backup', '--repo', s3.repo, '--credentials', s3.cred, '--json', src]);
      try {
        await proxy.waitForHeld(1);
        await rm(join(src, 'p', 'q'), { recursive: true });
        await writeFile(join(src, 'p', 'q'), 'now a file\n');
      } finally {
        proxy.rule = () => undefined;
        proxy.release();
      }
      const run = expectCode(await backup, 3);
      assert.deepEqual(erroredPaths(run), ['p/q']);
      assert.match(run.stderr, /"msg":"p\/q: ENOTDIR/);
      const out = join(fx.dir, 'replaced-out');
      expectCode(await s3.cli(['restore', '--repo', s3.repo, '--key', fx.key, String(summaryOf(run.stdout).snapshot_id), '--target', out]), 0);
      const restored = treeOf(out);
      assert.equal(restored.get('p/q')!.type, 'd');
      const lost = lostBytes(src, out, ['p/r.txt', 'z.txt']);
      assert.equal(lost, 0);
      reportFigures({ scenario: 'a folder replaced by a file mid-walk', trials: 1, warnings: 1, dataLost: lost });
    });
  });
});
