import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, readFile, readdir, readlink, stat, symlink, utimes, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonLines, runCli, summaryOf } from './helpers/cli.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

async function du(dir: string): Promise<number> {
  let total = 0;
  for (const rel of await readdir(dir, { recursive: true })) {
    const s = await stat(join(dir, rel));
    if (s.isFile()) total += s.size;
  }
  return total;
}

describe('backup and restore on a filesystem repository', () => {
  let fx: Fixture;
  let src: string;

  before(async () => {
    fx = await makeFixture(['--chunk-size', '1MiB']);
    src = join(fx.dir, 'src');
    await mkdir(join(src, 'docs', 'deep', 'er'), { recursive: true });
    await mkdir(join(src, 'empty-dir'));
    await writeFile(join(src, 'docs', 'a.txt'), 'hello\n');
    await writeFile(join(src, 'docs', 'deep', 'er', 'b.txt'), 'x'.repeat(100_000));
    await writeFile(join(src, 'empty'), '');
    await writePseudoRandom(join(src, 'big.bin'), 5 * 1024 * 1024 + 123);
    await writeFile(join(src, 'exec.sh'), '#!/bin/sh\n', { mode: 0o750 });
    await chmod(join(src, 'exec.sh'), 0o750);
    await symlink('docs/a.txt', join(src, 'link'));
    await symlink('/nonexistent/target', join(src, 'dangling'));
    await utimes(join(src, 'docs', 'a.txt'), 1_600_000_000, 1_600_000_000.5);
    execFileSync('mkfifo', [join(src, 'fifo')]);
  });
  after(() => fx.cleanup());

  it('restores every file, folder and symlink with mode, mtime and content', async () => {
    const backup = expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--json', src]), 0);
    const summary = summaryOf(backup.stdout);
    assert.equal(summary.files_new, 5);
    assert.equal(summary.total_files_processed, 5);
    assert.ok(typeof summary.snapshot_id === 'string' && /^[0-9a-f]{64}$/.test(summary.snapshot_id));
    for (const key of ['files_changed', 'files_unmodified', 'data_added', 'total_bytes_processed', 'total_duration']) assert.ok(key in summary, key);
    assert.match(backup.stderr, /fifo: skipped/);

    const out = join(fx.dir, 'out');
    const restore = expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out]), 0);
    assert.match(restore.stdout, /restored snapshot/);
    for (const rel of ['docs/a.txt', 'docs/deep/er/b.txt', 'empty', 'big.bin', 'exec.sh']) {
      assert.equal(await sha256File(join(out, rel)), await sha256File(join(src, rel)), rel);
      const [a, b] = [await stat(join(src, rel)), await stat(join(out, rel))];
      assert.equal(b.mode, a.mode, `${rel} mode`);
      // utimes takes float seconds, so nanoseconds come back within a microsecond or so.
      assert.ok(Math.abs(b.mtimeMs - a.mtimeMs) < 0.01, `${rel} mtime ${b.mtimeMs} vs ${a.mtimeMs}`);
      assert.equal(b.uid, a.uid);
    }
    assert.equal(await readlink(join(out, 'link')), 'docs/a.txt');
    assert.equal(await readlink(join(out, 'dangling')), '/nonexistent/target');
    assert.ok((await stat(join(out, 'empty-dir'))).isDirectory());
    assert.ok(Math.abs((await stat(join(out, 'docs', 'deep'))).mtimeMs - (await stat(join(src, 'docs', 'deep'))).mtimeMs) < 0.01);
    await assert.rejects(lstat(join(out, 'fifo')), /ENOENT/);
    assert.deepEqual((await readdir(out)).filter((n) => n.startsWith('.kbrackup')), []);
  });

  it('lists snapshots (table and restic JSON) and files', async () => {
    const table = expectCode(await runCli(['snapshots', '--repo', fx.repo, '--credentials', fx.cred]), 0);
    assert.match(table.stdout, /1 snapshot/);
    const json = JSON.parse(expectCode(await runCli(['snapshots', '--repo', fx.repo, '--key', fx.key, '--json']), 0).stdout) as Record<string, unknown>[];
    assert.equal(json.length, 1);
    const snap = json[0] as Record<string, unknown>;
    for (const key of ['id', 'short_id', 'time', 'paths', 'hostname', 'username', 'tags', 'program_version', 'summary']) assert.ok(key in snap, key);
    const ls = expectCode(await runCli(['ls', '--repo', fx.repo, '--credentials', fx.cred, String(snap.short_id)]), 0);
    assert.match(ls.stdout, /\/docs\/deep\/er\/b\.txt/);
    assert.match(ls.stdout, /\/link -> docs\/a\.txt/);
    const lsJson = jsonLines(expectCode(await runCli(['ls', '--repo', fx.repo, '--credentials', fx.cred, '--json', 'latest']), 0).stdout);
    assert.ok(lsJson.some((n) => n.path === '/big.bin' && n.size === 5 * 1024 * 1024 + 123));
  });

  it('restores only what --include names, and honours --conflict', async () => {
    const out = join(fx.dir, 'partial');
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out, '--include', 'docs/deep']), 0);
    assert.deepEqual((await readdir(out)).sort(), ['docs']);
    assert.deepEqual(await readdir(join(out, 'docs')), ['deep']);
    await writeFile(join(out, 'docs', 'deep', 'er', 'b.txt'), 'local change');
    const abort = expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out, '--include', 'docs/deep']), 1);
    assert.match(abort.stderr, /already exists; choose --conflict/);
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out, '--include', 'docs/deep', '--conflict', 'skip']), 0);
    assert.equal(await readFile(join(out, 'docs', 'deep', 'er', 'b.txt'), 'utf8'), 'local change');
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out, '--include', 'docs/deep', '--conflict', 'overwrite']), 0);
    assert.equal(await readFile(join(out, 'docs', 'deep', 'er', 'b.txt'), 'utf8'), 'x'.repeat(100_000));
    const dry = join(fx.dir, 'dry');
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', dry, '--dry-run']), 0);
    await assert.rejects(stat(dry), /ENOENT/);
  });

  it('stores identical data once: 2,000 equal small files and a file copied twice', async () => {
    const dup = join(fx.dir, 'dup');
    await mkdir(join(dup, 'many'), { recursive: true });
    const body = 'the same small file\n'.repeat(50);
    await Promise.all(Array.from({ length: 2000 }, (_, i) => writeFile(join(dup, 'many', `f${i}.txt`), body)));
    await writePseudoRandom(join(dup, 'one.bin'), 3 * 1024 * 1024, 'dup');
    await copyFile(join(dup, 'one.bin'), join(dup, 'two.bin'));
    await copyFile(join(dup, 'one.bin'), join(dup, 'three.bin'));
    const before = await du(fx.repo);
    const summary = summaryOf(expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--json', dup]), 0).stdout);
    assert.equal(summary.total_files_processed, 2003);
    // One copy of the random file plus one small blob; metadata (tree, index, snapshot) is small.
    assert.ok(Number(summary.data_added) < 3 * 1024 * 1024 + 64 * 1024, `data_added ${summary.data_added}`);
    assert.ok((await du(fx.repo)) - before < 3.5 * 1024 * 1024, 'repository grew by more than one copy');
    const out = join(fx.dir, 'dup-out');
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out]), 0);
    assert.equal((await readdir(join(out, 'many'))).length, 2000);
    assert.equal(await readFile(join(out, 'many', 'f1999.txt'), 'utf8'), body);
    assert.equal(await sha256File(join(out, 'three.bin')), await sha256File(join(dup, 'one.bin')));
  });

  it('reports unreadable files and exits 3 with a snapshot of the rest', async () => {
    const part = join(fx.dir, 'partial-src');
    await mkdir(part);
    await writeFile(join(part, 'ok.txt'), 'fine');
    await writeFile(join(part, 'secret.txt'), 'no access');
    await chmod(join(part, 'secret.txt'), 0o000);
    // Root reads everything, so the backup runs as `nobody` to meet a real permission error.
    for (const p of [fx.dir, part, join(part, 'ok.txt')]) await chmod(p, 0o755);
    execFileSync('chmod', ['-R', 'a+rwX', fx.repo]);
    await chmod(fx.cred, 0o644);
    const tmp = join(fx.dir, 'tmp-nobody');
    await mkdir(tmp, { mode: 0o777 });
    await chmod(tmp, 0o777);
    const result = await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--temp-dir', tmp, '--json', part], { uid: 65534, gid: 65534 });
    expectCode(result, 3);
    const errors = jsonLines(result.stdout).filter((l) => l.message_type === 'error');
    assert.equal(errors.length, 1);
    assert.equal((errors[0] as { item: string }).item, 'secret.txt');
    assert.equal(summaryOf(result.stdout).total_files_processed, 1);
    // KBRACKUP_PARTIAL_EXIT_CODE=0 (the chart's partialIsFailure: false): the same partial run exits 0, its summary still counts the error.
    const lenient = await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--temp-dir', tmp, '--json', part], { uid: 65534, gid: 65534, env: { ...process.env, KBRACKUP_PARTIAL_EXIT_CODE: '0' } });
    expectCode(lenient, 0);
    assert.equal(summaryOf(lenient.stdout).error_count, 1);
  });
  it('stores large compressible and mixed files through chunks cut at odd offsets, byte-exact', async () => {
    // 100,000-byte chunks start at odd places in the 256 KiB read blocks, so a chunk's first write is
    // sometimes a few bytes: the codec sample then spans blocks, which the pool reuses afterwards.
    const odd = await makeFixture(['--chunker', 'fixed', '--chunk-size', '100000', '--small-file', '64KiB']);
    try {
      const dir = join(odd.dir, 'src');
      await mkdir(dir);
      const lines = Array.from({ length: 120_000 }, (_, i) => `line ${i} of a log that compresses well\n`).join('');
      await writeFile(join(dir, 'text.log'), lines);
      await writePseudoRandom(join(dir, 'random.bin'), 3 * 1024 * 1024 + 7, 'odd random');
      // Random and text in turns: the codec changes from chunk to chunk.
      const random = await readFile(join(dir, 'random.bin'));
      const mixed = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? Buffer.from(lines.slice(i * 70_000, i * 70_000 + 150_001)) : random.subarray(i * 90_001, i * 90_001 + 123_457)));
      await writeFile(join(dir, 'mixed.bin'), Buffer.concat(mixed));
      const backup = summaryOf(expectCode(await runCli(['backup', '--repo', odd.repo, '--credentials', odd.cred, '--json', dir]), 0).stdout);
      const textSize = Buffer.byteLength(lines);
      assert.ok(Number(backup.data_added) < textSize + random.length, `text was compressed: ${backup.data_added} bytes added`);
      const out = join(odd.dir, 'out');
      expectCode(await runCli(['restore', '--repo', odd.repo, '--key', odd.key, 'latest', '--target', out]), 0);
      for (const rel of ['text.log', 'random.bin', 'mixed.bin']) assert.equal(await sha256File(join(out, rel)), await sha256File(join(dir, rel)), rel);
    } finally {
      await odd.cleanup();
    }
  });
});
