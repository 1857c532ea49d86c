import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RepoSecrets } from '../src/crypto/kdf.js';
import { Layout } from '../src/repo/layout.js';
import { encodeMeta } from '../src/repo/meta-codec.js';
import { NOBODY, jsonLines, logLines, runCli, summaryOf, type RunResult } from './helpers/cli.js';
import { digestTree, sha256File, writePseudoRandom } from './helpers/data.js';
import { credentialSecrets, deleteObject, objectNames, readObject, readSnapshot, writeObject } from './helpers/forge.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';
import { treeOf } from './helpers/tree.js';

/**
 * README claims that no other suite held to: each flag the README names, file:/// repositories,
 * several recipients, locks and exit 11, status lines every second, option precedence, that backup
 * credentials cannot restore, that an unchanged backup never reads the index, which snapshot is a
 * source's latest, and forget's and prune's refusals and exit 3. Real files and the real CLI; every
 * wait is bounded by the lock's own expiry and the test runner's timeout.
 */
describe('README claims through the CLI', () => {
  let fx: Fixture;
  let src: string;
  let secrets: RepoSecrets;
  let outs = 0;
  const destination = () => join(fx.dir, `out-${++outs}`);
  const backup = (args: string[], options = {}) => runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, ...args, src], options);
  const restore = (args: string[]) => runCli(['restore', '--repo', fx.repo, '--key', fx.key, ...args]);
  const snapshots = async (args: string[] = []) => JSON.parse(expectCode(await runCli(['snapshots', '--repo', fx.repo, '--credentials', fx.cred, '--json', ...args]), 0).stdout) as Record<string, unknown>[];
  /** A lock object another process would have written (repo/locks.ts), encrypted under the repository key. */
  const lock = async (fields: { exclusive: boolean; hostname: string; pid: number; expiresInMs: number; command?: string }) => {
    const id = randomBytes(32).toString('hex');
    const now = Date.now();
    const info = { id, time: new Date(now).toISOString(), expires: new Date(now + fields.expiresInMs).toISOString(), exclusive: fields.exclusive, hostname: fields.hostname, username: 'someone', pid: fields.pid, command: fields.command ?? 'prune' };
    const name = Layout.lock(id);
    await writeObject(fx, name, encodeMeta(secrets, name, Buffer.from(JSON.stringify(info))));
    return () => deleteObject(fx, name);
  };

  before(async () => {
    fx = await makeFixture();
    secrets = await credentialSecrets(fx);
    src = join(fx.dir, 'src');
    await mkdir(join(src, 'logs', 'old'), { recursive: true });
    await mkdir(join(src, 'cache'));
    await mkdir(join(src, 'data'));
    await writeFile(join(src, 'keep.txt'), 'keep\n');
    await writeFile(join(src, 'logs', 'a.log'), 'log a\n');
    await writeFile(join(src, 'logs', 'old', 'b.log'), 'log b\n');
    await writeFile(join(src, 'logs', 'notes.txt'), 'notes\n');
    await writeFile(join(src, 'cache', 'x.bin'), 'cached\n');
    await writePseudoRandom(join(src, 'data', 'big.bin'), 3 * 1024 * 1024 + 5, 'claims');
  });
  after(() => fx.cleanup());

  it('--exclude leaves out what its globs match; --tag, --hostname and --source are recorded; a snapshot reuses only its own source\'s files', async () => {
    const first = expectCode(await backup(['--json', '--exclude', '*.log', '--exclude', 'cache', '--tag', 'nightly', '--tag', 'v2', '--hostname', 'pod-1', '--source', 'app']), 0);
    const listed = jsonLines(expectCode(await runCli(['ls', '--repo', fx.repo, '--credentials', fx.cred, '--json', 'latest']), 0).stdout).map((l) => l.path);
    assert.deepEqual(listed.filter((p) => typeof p === 'string').sort(), ['/data', '/data/big.bin', '/keep.txt', '/logs', '/logs/notes.txt', '/logs/old']);
    const [snap] = await snapshots();
    assert.deepEqual(snap!.tags, ['nightly', 'v2']);
    assert.equal(snap!.hostname, 'pod-1');
    assert.equal(snap!.source, 'app');
    assert.equal(summaryOf(first.stdout).snapshot_id, snap!.id);

    // Another source reads everything again; the same source again reads nothing.
    const total = 3 * 1024 * 1024 + 5 + 'keep\n'.length + 'notes\n'.length;
    const other = summaryOf(expectCode(await backup(['--json', '--exclude', '*.log', '--exclude', 'cache', '--source', 'other']), 0).stdout);
    assert.equal(other.bytes_read, total);
    const again = summaryOf(expectCode(await backup(['--json', '--exclude', '*.log', '--exclude', 'cache', '--source', 'app']), 0).stdout);
    assert.equal(again.bytes_read, 0);
    assert.equal(again.files_unmodified, 3);
    assert.deepEqual((await snapshots(['--source', 'other'])).map((s) => s.source), ['other']);
    assert.equal((await snapshots(['--source', 'app'])).length, 2);
    // restore --source picks that source's latest.
    const out = destination();
    expectCode(await restore(['latest', '--source', 'other', '--target', out]), 0);
    assert.equal(await sha256File(join(out, 'data', 'big.bin')), await sha256File(join(src, 'data', 'big.bin')));
    await assert.rejects(stat(join(out, 'cache')), /ENOENT/);
  });

  it('defaults < config file < environment < flags, for single values and lists', async () => {
    const config = join(fx.dir, 'precedence.json');
    await writeFile(config, JSON.stringify({ hostname: 'from-file', tags: ['file'], source: 'precedence' }));
    const env = { ...process.env, KBRACKUP_HOSTNAME: 'from-env', KBRACKUP_TAGS: 'env1,env2' };
    expectCode(await backup(['--source', 'precedence']), 0);
    expectCode(await backup(['--config', config]), 0);
    expectCode(await backup(['--config', config], { env }), 0);
    expectCode(await backup(['--config', config, '--hostname', 'from-flag', '--tag', 'flag'], { env }), 0);
    const got = (await snapshots(['--source', 'precedence'])).map((s) => [s.hostname, s.tags]);
    assert.deepEqual(got, [
      [hostname(), []],
      ['from-file', ['file']],
      ['from-env', ['env1', 'env2']],
      ['from-flag', ['flag']],
    ]);
    // `help COMMAND` names every option's variable.
    const help = expectCode(await runCli(['help', 'backup']), 0).stdout;
    for (const v of ['--exclude VALUE', 'KBRACKUP_EXCLUDE', '--temp-dir VALUE', 'KBRACKUP_TEMP_DIR', 'KBRACKUP_REPO', 'KBRACKUP_RETRY_LOCK']) assert.ok(help.includes(v), v);
  });

  it('a lock held by another live process: exit 11 naming it; stale locks are ignored; shared locks let backups run together', async () => {
    // An exclusive lock (prune) on another host, not expired: a backup cannot run.
    const release = await lock({ exclusive: true, hostname: 'other-host', pid: 1, expiresInMs: 3_600_000 });
    const held = await backup(['--json']);
    expectCode(held, 11);
    assert.match(held.stderr, /"message_type":"exit_error","code":11,"message":"file:\/\/.* is locked: an exclusive lock by prune on other-host \(pid 1\)/);
    assert.doesNotMatch(held.stdout, /"message_type":"summary"/);
    await release();
    // Expired, or on this host with its process gone: stale, ignored.
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const expired = await lock({ exclusive: true, hostname: 'other-host', pid: 1, expiresInMs: -1000 });
    const gone = await lock({ exclusive: true, hostname: hostname(), pid: dead, expiresInMs: 3_600_000 });
    expectCode(await backup([]), 0);
    await expired();
    await gone();
    // A shared lock (a backup) held by a live process on this host: another backup runs, `repair index` (exclusive) may not.
    const shared = await lock({ exclusive: false, hostname: hostname(), pid: process.pid, expiresInMs: 3_600_000, command: 'backup' });
    expectCode(await backup([]), 0);
    const repair = await runCli(['repair', 'index', '--repo', fx.repo, '--credentials', fx.cred]);
    expectCode(repair, 11);
    assert.match(repair.stderr, /is locked: a shared lock by backup on .* \(pid \d+\)/);
    await shared();
    // Every lock a run took is gone once it ends.
    assert.deepEqual(await readdir(join(fx.repo, 'locks')), []);
  });

  it('--retry-lock waits for a lock to go, printing a --json status line every second meanwhile', async () => {
    // Held for 2.5 s more: the backup's first look fails; it looks again (every 5 s) and goes on.
    const release = await lock({ exclusive: true, hostname: 'other-host', pid: 1, expiresInMs: 2_500 });
    const started = Date.now();
    const run = expectCode(await backup(['--json', '--retry-lock', '20s']), 0);
    const took = (Date.now() - started) / 1000;
    await release();
    const status = jsonLines(run.stdout).filter((l) => l.message_type === 'status');
    assert.ok(took >= 2.5, `waited ${took} s`);
    // One line a second (setInterval under load may slip a little, never double up).
    assert.ok(status.length >= Math.floor(took) - 2 && status.length <= Math.ceil(took), `${status.length} status lines in ${took} s`);
    const elapsed = status.map((l) => l.seconds_elapsed as number);
    assert.deepEqual([...elapsed].sort((a, b) => a - b), elapsed, 'seconds_elapsed grows');
    for (const key of ['seconds_elapsed', 'files_done', 'bytes_done', 'data_added', 'error_count', 'current_files']) assert.ok(key in status[0]!, key);
    assert.ok(summaryOf(run.stdout).snapshot_id);
  });

  it('--conflict update rewrites only files whose size or time differ; --dry-run changes nothing', async () => {
    const out = destination();
    expectCode(await restore(['latest', '--source', 'other', '--target', out]), 0);
    const inode = async (rel: string) => (await stat(join(out, rel))).ino;
    const keptIno = await inode('keep.txt');
    // Same size, other bytes, at the time the restore gave it (set as restore sets times): update trusts size and time, as restic does.
    const notes = join(out, 'logs', 'notes.txt');
    const restoredTime = Number((await stat(notes, { bigint: true })).mtimeNs) / 1e9;
    await writeFile(notes, 'NOTES\n');
    await utimes(notes, restoredTime, restoredTime);
    await writeFile(join(out, 'data', 'big.bin'), 'changed');
    const before = treeOf(out);
    const dry = expectCode(await restore(['latest', '--source', 'other', '--target', out, '--conflict', 'overwrite', '--dry-run']), 0);
    assert.match(dry.stdout, /would restore snapshot [0-9a-f]{8} to .*: 3 files/);
    assert.deepEqual(treeOf(out), before, 'a dry run changes nothing');
    const update = expectCode(await restore(['latest', '--source', 'other', '--target', out, '--conflict', 'update']), 0);
    assert.match(update.stdout, /: 1 files .*, 2 existing files skipped/);
    assert.equal(await inode('keep.txt'), keptIno, 'a file restored before and unchanged is left alone');
    assert.equal(await readFile(notes, 'utf8'), 'NOTES\n', 'same size and time: kept');
    assert.equal(await sha256File(join(out, 'data', 'big.bin')), await sha256File(join(src, 'data', 'big.bin')), 'another size: rewritten');
    expectCode(await restore(['latest', '--source', 'other', '--target', out, '--conflict', 'overwrite']), 0);
    assert.equal(await readFile(notes, 'utf8'), 'notes\n');
    assert.notEqual(await inode('keep.txt'), keptIno, 'overwrite writes every file again');
  });

  it('backup credentials list names but cannot restore a byte', async () => {
    const ls = expectCode(await runCli(['ls', '--repo', fx.repo, '--credentials', fx.cred, 'latest']), 0);
    assert.match(ls.stdout, /\/data\/big\.bin/);
    const out = destination();
    const refused = await runCli(['restore', '--repo', fx.repo, '--credentials', fx.cred, 'latest', '--target', out]);
    expectCode(refused, 1);
    assert.match(refused.stderr, /reading file contents needs a recipient's private key \(--key\) or the passphrase; backup credentials cannot decrypt them/);
    const written = [...treeOf(out).values()].filter((p) => p.type === 'f');
    assert.deepEqual(written, []);
  });

  it('file:/// repositories, and several recipients: each private key restores once it signed the repository', async () => {
    const keys = join(fx.dir, 'more-keys');
    for (const who of ['b', 'c']) expectCode(await runCli(['keygen', '--out', join(keys, who)]), 0);
    const repo = `file://${join(fx.dir, 'url-repo')}`;
    const cred = join(fx.dir, 'url.cred');
    expectCode(await runCli(['init', '--repo', repo, '--recipient', join(keys, 'b.pub.asc'), '--recipient', join(keys, 'c.pub.asc'), '--credentials-out', cred]), 0);
    assert.ok((await stat(join(fx.dir, 'url-repo', 'kbrackup.json'))).isFile(), 'the URL names a local folder');
    expectCode(await runCli(['backup', '--repo', repo, '--credentials', cred, src]), 0);
    const restoreWith = (key: string, out: string): Promise<RunResult> => runCli(['restore', '--repo', repo, '--key', key, 'latest', '--target', out]);
    const untrusted = await restoreWith(join(keys, 'b.key.asc'), destination());
    expectCode(untrusted, 1);
    assert.match(untrusted.stderr, /is not signed by key/);
    expectCode(await restoreWith(fx.key, destination()), 12);
    for (const who of ['b', 'c']) {
      expectCode(await runCli(['trust', '--repo', repo, '--key', join(keys, `${who}.key.asc`)]), 0);
      const out = destination();
      expectCode(await restoreWith(join(keys, `${who}.key.asc`), out), 0);
      assert.equal(await sha256File(join(out, 'data', 'big.bin')), await sha256File(join(src, 'data', 'big.bin')), who);
      assert.equal(await readFile(join(out, 'logs', 'a.log'), 'utf8'), 'log a\n');
    }
    await rm(join(fx.dir, 'url-repo'), { recursive: true });
  });

  it('an unchanged re-run stores one snapshot object of under 1 KiB; a changed file adds a tree for its folder and each folder above', async () => {
    const objects = async () => new Set(((await readdir(fx.repo, { recursive: true, withFileTypes: true })) as import('node:fs').Dirent[]).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(fx.repo.length + 1)));
    const added = async (before: Set<string>) => [...(await objects())].filter((n) => !before.has(n)).sort();
    expectCode(await backup(['--source', 'growth']), 0);
    let before = await objects();
    expectCode(await backup(['--source', 'growth']), 0);
    const unchanged = await added(before);
    assert.equal(unchanged.length, 1, unchanged.join(', '));
    assert.match(unchanged[0]!, /^snapshots\/growth\//);
    assert.ok((await stat(join(fx.repo, unchanged[0]!))).size < 1024);
    before = await objects();
    await writeFile(join(src, 'logs', 'old', 'b.log'), 'log b, changed\n');
    expectCode(await backup(['--source', 'growth']), 0);
    const changed = await added(before);
    assert.equal(changed.filter((n) => n.startsWith('trees/')).length, 3, `logs/old, logs and the root: ${changed.join(', ')}`);
    assert.equal(changed.filter((n) => n.startsWith('snapshots/')).length, 1);
  });

  it('a backup in which nothing changed never reads the index: with every index object garbled it succeeds, while a changed file makes it read and name each one', async () => {
    // A repository of its own, since its index is damaged on purpose.
    const own = await makeFixture();
    try {
      const data = join(own.dir, 'src');
      await mkdir(data);
      for (let i = 0; i < 8; i++) await writePseudoRandom(join(data, `f${i}.bin`), 20_000 + i, `index-${i}`);
      const run = () => runCli(['backup', '--repo', own.repo, '--credentials', own.cred, '--json', data]);
      const warnings = (result: RunResult) => logLines(result.stderr).filter((l) => l.level >= 40);
      expectCode(await run(), 0);
      await writePseudoRandom(join(data, 'later.bin'), 30_000, 'index-later');
      const last = summaryOf(expectCode(await run(), 0).stdout).snapshot_id;
      const names = await objectNames(own, Layout.indexDir);
      assert.equal(names.length, 2, 'one index object per backup that stored data');
      const genuine = new Map(await Promise.all(names.map(async (n) => [n, await readObject(own, n)] as const)));
      for (const [name, bytes] of genuine) await writeObject(own, name, randomBytes(bytes.length));

      const unchanged = expectCode(await run(), 0);
      const summary = summaryOf(unchanged.stdout);
      assert.notEqual(summary.snapshot_id, last);
      assert.equal(summary.files_unmodified, 9);
      assert.equal(summary.bytes_read, 0);
      assert.deepEqual(warnings(unchanged), [], 'the garbled index went unnoticed: it was not read');
      const expected = digestTree(data);

      // The garbling is noticed whenever the index is read: a changed file's blob is looked up in it.
      // Damaged index objects are skipped (named), so the bytes, another file's, are stored again.
      await copyFile(join(data, 'f0.bin'), join(data, 'f1.bin'));
      const changed = expectCode(await run(), 0);
      assert.deepEqual(warnings(changed).map((l) => l.object).sort(), names);
      for (const l of warnings(changed)) assert.match(l.msg, /^skipped a damaged index object: index\/[0-9a-f]{64}: /);
      assert.equal(summaryOf(changed.stdout).data_added, 20_000);

      // With the genuine index back, the same kind of change is deduplicated, and the unchanged run's snapshot restores byte for byte.
      for (const [name, bytes] of genuine) await writeObject(own, name, bytes);
      await copyFile(join(data, 'f2.bin'), join(data, 'f3.bin'));
      const clean = expectCode(await run(), 0);
      assert.deepEqual(warnings(clean), []);
      assert.equal(summaryOf(clean.stdout).data_added, 0);
      const out = join(own.dir, 'out');
      expectCode(await runCli(['restore', '--repo', own.repo, '--key', own.key, String(summary.snapshot_id), '--target', out]), 0);
      assert.deepEqual(digestTree(out), expected);
    } finally {
      await own.cleanup();
    }
  });

  it('the latest snapshot of a source is the newest by its time, also within one second: restore latest --source, the next backup\'s parent and forget latest', async () => {
    // A repository of its own: the snapshots made here, in 2099, would be every other test's latest.
    const own = await makeFixture();
    try {
      const ownSecrets = await credentialSecrets(own);
      const data = join(own.dir, 'src');
      await mkdir(data);
      const backupOf = async (text: string) => {
        await writeFile(join(data, 'a.txt'), text);
        return summaryOf(expectCode(await runCli(['backup', '--repo', own.repo, '--credentials', own.cred, '--source', 'app', '--json', data]), 0).stdout).snapshot_id as string;
      };
      const older = await backupOf('older\n');
      const newer = await backupOf('newer\n');
      // Both again within one second (names give the time to the second, then the id), the older under the id that sorts last.
      const second = Date.parse('2099-01-01T00:00:00Z');
      const copies: [string, number, string][] = [
        [older, second + 100, `f${randomBytes(32).toString('hex').slice(1)}`],
        [newer, second + 900, `0${randomBytes(32).toString('hex').slice(1)}`],
      ];
      for (const [id, time, copyId] of copies) {
        const [name] = (await objectNames(own, 'snapshots/app')).filter((n) => n.endsWith(id));
        const snapshot = { ...(await readSnapshot(own, ownSecrets, name!)), id: copyId, time: new Date(time).toISOString() };
        const copyName = Layout.snapshot('app', new Date(time), copyId);
        await writeObject(own, copyName, encodeMeta(ownSecrets, copyName, Buffer.from(JSON.stringify(snapshot))));
      }
      const newest = copies[1]![2];
      const out = join(own.dir, 'out');
      const restored = expectCode(await runCli(['restore', '--repo', own.repo, '--key', own.key, 'latest', '--source', 'app', '--target', out]), 0);
      assert.match(restored.stdout, new RegExp(`restored snapshot ${newest.slice(0, 8)} `));
      assert.equal(await readFile(join(out, 'a.txt'), 'utf8'), 'newer\n');
      const next = await backupOf('newer\n');
      const listed = JSON.parse(expectCode(await runCli(['snapshots', '--repo', own.repo, '--credentials', own.cred, '--json']), 0).stdout) as { id: string; parent?: string }[];
      assert.equal(listed.find((s) => s.id === next)?.parent, newest);
      const forgot = expectCode(await runCli(['forget', '--repo', own.repo, '--credentials', own.cred, 'latest']), 0);
      assert.match(forgot.stdout, new RegExp(`removing snapshot ${newest.slice(0, 8)} `));
    } finally {
      await own.cleanup();
    }
  });

  it('forget refuses a policy that would remove every snapshot of a group, and removes nothing', async () => {
    const before = await snapshots();
    const run = await runCli(['forget', '--repo', fx.repo, '--credentials', fx.cred, '--keep-tag', 'no-such-tag', '--source', 'growth']);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /refusing to remove every snapshot of group .*growth.* no rule keeps any of them; nothing was removed/);
    assert.deepEqual(await snapshots(), before);
  });

  it('forget and prune exit 3 when the storage refuses deletes, naming what stays; the repository stays whole', async () => {
    // As nobody on a copy whose app/ snapshot folder and tree folders belong to root: those deletes fail, the rest go through.
    const dir = await mkdtemp(join(tmpdir(), 'kbrackup-undeletable-'));
    try {
      const repo = join(dir, 'repo');
      const tmp = join(dir, 'tmp');
      const cred = join(dir, 'backup.cred');
      await cp(fx.repo, repo, { recursive: true });
      await mkdir(tmp);
      await copyFile(fx.cred, cred);
      execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, dir]);
      await chmod(dir, 0o755);
      const treeFolders = (await readdir(join(repo, 'trees'))).map((d) => join(repo, 'trees', d));
      execFileSync('chown', ['root:root', join(repo, 'snapshots', 'app'), ...treeFolders]);
      const asNobody = (args: string[]) => runCli([...args, '--repo', repo, '--credentials', cred, '--temp-dir', tmp], { asUser: NOBODY });
      const listed = async () => JSON.parse(expectCode(await asNobody(['snapshots', '--json']), 0).stdout) as { id: string; source: string }[];
      const all = await listed();
      const app = all.filter((s) => s.source === 'app').map((s) => s.id);
      const growth = all.filter((s) => s.source === 'growth').map((s) => s.id);
      assert.ok(app.length > 0 && growth.length > 0, JSON.stringify(all));

      const forget = await asNobody(['forget', app[0]!, ...growth]);
      assert.equal(forget.code, 3, forget.stderr);
      assert.match(forget.stderr, /could not remove snapshots\/app\/\S+-[0-9a-f]{64}: /);
      assert.match(forget.stderr, new RegExp(`${growth.length} snapshots removed, 1 could not be`));
      assert.deepEqual((await listed()).map((s) => s.id).sort(), all.filter((s) => s.source !== 'growth').map((s) => s.id).sort());

      // Growth's changed folders are used by no snapshot now; their trees cannot be deleted.
      const prune = await asNobody(['prune', '--grace', '0s', '--json']);
      assert.equal(prune.code, 3, prune.stderr);
      const stats = JSON.parse(prune.stdout.trim().split('\n').at(-1)!) as { failed_deletes: number; trees: { delete: number } };
      assert.ok(stats.failed_deletes >= 3 && stats.trees.delete >= 3, JSON.stringify(stats));
      assert.match(prune.stderr, /could not delete trees\/[0-9a-f]{2}\/[0-9a-f]{64}: /);
      assert.match(prune.stderr, new RegExp(`${stats.failed_deletes} objects could not be deleted; they are garbage the next prune removes`));
      // What could not be deleted is garbage, not a hole: check is clean.
      expectCode(await asNobody(['check']), 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
