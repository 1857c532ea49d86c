import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, open, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Layout } from '../src/repo/layout.js';
import { readCredentials } from '../src/repo/credentials.js';
import { openRepository } from '../src/repo/keyring.js';
import { RepositoryLock } from '../src/repo/locks.js';
import { FilesystemTarget } from '../src/targets/filesystem/filesystem.js';
import { jsonLines } from './helpers/cli.js';
import { backup, checkRepo, cli, digests, files, folderBytes, objectNames, pruneSummary, restored, snapshotList, strayLines, writeSource, type RepoAccess } from './helpers/lifecycle.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

const KiB = 1024;

describe('snapshot lifecycle on a filesystem repository', () => {
  let fx: Fixture;
  let access: RepoAccess;
  let src: string;
  const ids: Record<string, string> = {};
  const expected: Record<string, Record<string, string>> = {};

  /** Write a source state, back it up, and remember what a restore of it must give. */
  async function snapshot(name: string, state: Parameters<typeof writeSource>[1], extra: string[] = []): Promise<void> {
    await writeSource(src, state);
    ids[name] = await backup(access, src, ['--hostname', 'h1', ...extra]);
    expected[name] = await digests(src);
  }

  const fail = async (args: string[], message: RegExp) => {
    const run = await cli(access, [...args, '--credentials', fx.cred]);
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, message);
    assert.deepEqual(strayLines(run.stderr), [], 'one line, no stack trace');
  };

  before(async () => {
    fx = await makeFixture(['--chunk-size', '256KiB']);
    access = { repo: fx.repo, cred: fx.cred, key: fx.key, args: [], env: {} };
    src = join(fx.dir, 'src');
    // A: 60 files of version a in one pack of ~5 bundles, and a big file of chunks.
    await snapshot('A', { small: files(0, 60, 'a'), big: 1536 * KiB, bigSeed: 'a' }, ['--tag', 'daily']);
    // B: files 30-59 changed: A's bundles holding them are used only by A.
    await snapshot('B', { small: [...files(0, 30, 'a'), ...files(30, 60, 'b')], big: 1536 * KiB, bigSeed: 'a' });
    // C: files 20-29 gone, 60-79 new, the big file changed.
    await snapshot('C', { small: [...files(0, 20, 'a'), ...files(30, 60, 'b'), ...files(60, 80, 'c')], big: 1536 * KiB, bigSeed: 'c' }, ['--tag', 'daily', '--tag', 'weekly']);
  });
  after(() => fx.cleanup());

  it('snapshots filters by --host, --tag (a,b needs both) and --source', async () => {
    assert.deepEqual((await snapshotList(access, ['--tag', 'daily'])).map((s) => s.id), [ids.A, ids.C]);
    assert.deepEqual((await snapshotList(access, ['--tag', 'daily,weekly'])).map((s) => s.id), [ids.C]);
    assert.deepEqual((await snapshotList(access, ['--tag', 'weekly', '--tag', 'nope'])).map((s) => s.id), [ids.C]);
    assert.equal((await snapshotList(access, ['--host', 'h1'])).length, 3);
    assert.equal((await snapshotList(access, ['--host', 'other'])).length, 0);
    assert.equal((await snapshotList(access, ['--source', 'src'])).length, 3);
    const table = expectCode(await cli(access, ['snapshots', '--credentials', fx.cred, '--tag', 'weekly']), 0).stdout;
    assert.match(table, new RegExp(`${ids.C!.slice(0, 8)} .* h1 .*\\n1 snapshot\\n$`));
  });

  it('ls SNAPSHOT PATH lists one folder of a snapshot', async () => {
    const run = expectCode(await cli(access, ['ls', '--credentials', fx.cred, ids.C!.slice(0, 8), 'small', '--json']), 0);
    const paths = jsonLines(run.stdout).map((l) => l.path);
    assert.equal(paths.length, 70);
    assert.equal(paths[0], '/small/f0000.txt');
  });

  it('diff shows added, removed and changed paths and skips folders whose tree is the same', async () => {
    const ab = expectCode(await cli(access, ['diff', '--credentials', fx.cred, ids.A!, ids.B!]), 0).stdout;
    const changes = ab.split('\n').filter((l) => /^[+\-MTU] /.test(l));
    assert.equal(changes.length, 30);
    assert.ok(changes.every((l) => /^M {4}\/small\/f00[3-5]\d\.txt$/.test(l)), ab);
    // Files 0-29 were written again with the same bytes: with --metadata they show as U.
    const withMetadata = expectCode(await cli(access, ['diff', '--credentials', fx.cred, ids.A!, ids.B!, '--metadata']), 0).stdout;
    assert.equal(withMetadata.split('\n').filter((l) => /^U {4}\/small\/f00[0-2]\d\.txt$/.test(l)).length, 30);
    const bc = jsonLines(expectCode(await cli(access, ['diff', '--credentials', fx.cred, ids.B!, 'latest', '--json']), 0).stdout);
    const byModifier = (m: string) => bc.filter((l) => l.modifier === m).map((l) => l.path);
    assert.deepEqual(byModifier('-'), Array.from({ length: 10 }, (_, k) => `/small/f00${20 + k}.txt`));
    assert.equal(byModifier('+').length, 20);
    assert.deepEqual(byModifier('M'), ['/big.bin']);
    const stats = bc.find((l) => l.message_type === 'statistics') as Record<string, any>;
    assert.equal(stats.changed_files, 1);
    assert.equal(stats.added.files, 20);
    assert.equal(stats.removed.files, 10);
    assert.equal(stats.source_snapshot, ids.B);
    // A snapshot compared with itself reads no folder at all and finds nothing.
    assert.equal(jsonLines(expectCode(await cli(access, ['diff', '--credentials', fx.cred, ids.C!, ids.C!, '--json']), 0).stdout).filter((l) => l.message_type === 'change').length, 0);
  });

  it('stats gives restic\'s restore-size and raw-data figures', async () => {
    const restore = JSON.parse(expectCode(await cli(access, ['stats', '--credentials', fx.cred, ids.C!, '--json']), 0).stdout);
    const sizes = await Promise.all(Object.keys(expected.C!).map(async (rel) => (await stat(join(src, rel))).size));
    assert.deepEqual(restore, { total_size: sizes.reduce((a, b) => a + b, 0), total_file_count: 71 + 1, snapshots_count: 1 });
    const all = JSON.parse(expectCode(await cli(access, ['stats', '--credentials', fx.cred, '--json']), 0).stdout);
    assert.equal(all.snapshots_count, 3);
    const raw = JSON.parse(expectCode(await cli(access, ['stats', '--credentials', fx.cred, '--mode', 'raw-data', '--json']), 0).stdout);
    assert.equal(raw.snapshots_count, 3);
    // 60 + 30 + 20 small files and two big files of several chunks, each blob once.
    assert.ok(raw.total_blob_count > 110 + 2 * 3, JSON.stringify(raw));
    assert.ok(raw.total_uncompressed_size >= 110 * 20_000 + 2 * 1536 * KiB, JSON.stringify(raw));
    assert.ok(raw.total_size > raw.total_uncompressed_size * 0.99, 'incompressible data is stored as it is');
  });

  it('forget refuses what it cannot do safely, with one line naming the problem', async () => {
    await fail(['forget'], /no policy was given, so no snapshots will be removed/);
    await fail(['forget', '--keep-last', '1', ids.A!], /either snapshot ids or --keep-\* rules, not both/);
    await fail(['forget', '--keep-within', '5w'], /--keep-within .*5w.* is not a duration such as 1y5m7d2h/);
    await fail(['forget', '--keep-last', 'many'], /keep-last|keepLast/);
    await fail(['forget', '--keep-last', '1', '--group-by', 'color'], /--group-by .*color.* names an unknown field/);
    await fail(['forget', 'abcdef12'], /no snapshot abcdef12/);
    await fail(['prune', '--max-unused', '150%'], /--max-unused .*150%.* is not a percentage below 100%/);
    await fail(['check', '--read-data-subset', '0/3'], /--read-data-subset .*0\/3.* is neither a percentage/);
    await fail(['check', '--read-data'], /check --read-data decrypts file contents: give a recipient's private key with --key/);
    await fail(['diff', ids.A!], /diff needs two snapshots/);
    assert.equal((await snapshotList(access)).length, 3);
  });

  it('forget --dry-run shows what would go and why, and removes nothing', async () => {
    const run = expectCode(await cli(access, ['forget', '--credentials', fx.cred, '--keep-last', '1', '--keep-tag', 'daily', '--dry-run', '--json']), 0);
    const groups = JSON.parse(run.stdout.split('\n').find((l) => l.startsWith('['))!) as { host: string; source: string; keep: { id: string }[]; remove: { id: string }[]; reasons: { snapshot: { id: string }; matches: string[] }[] }[];
    assert.equal(groups.length, 1);
    assert.deepEqual([groups[0]!.host, groups[0]!.source], ['h1', 'src']);
    assert.deepEqual(groups[0]!.keep.map((s) => s.id), [ids.C, ids.A]);
    assert.deepEqual(groups[0]!.remove.map((s) => s.id), [ids.B]);
    assert.deepEqual(groups[0]!.reasons.map((r) => r.matches), [['has tags [daily]', 'last snapshot'], ['has tags [daily]']]);
    const text = expectCode(await cli(access, ['forget', '--credentials', fx.cred, '--keep-last', '1', '--dry-run']), 0).stdout;
    assert.match(text, /Applying policy: keep 1 latest snapshots/);
    assert.match(text, /keep 1 snapshot:[\s\S]*last snapshot[\s\S]*remove 2 snapshots:/);
    assert.equal((await snapshotList(access)).length, 3);
  });

  it('prune keeps young garbage within the grace period', async () => {
    expectCode(await cli(access, ['forget', '--credentials', fx.cred, '--keep-last', '1']), 0);
    assert.deepEqual((await snapshotList(access)).map((s) => s.id), [ids.C]);
    const before = [...(await objectNames(fx.repo, 'packs')), ...(await objectNames(fx.repo, 'chunks')), ...(await objectNames(fx.repo, 'trees'))];
    const stats = pruneSummary(expectCode(await cli(access, ['prune', '--credentials', fx.cred, '--json']), 0));
    assert.equal(stats.objects.delete, 0);
    assert.equal(stats.objects.repack, 0);
    assert.equal(stats.trees.delete, 0);
    assert.ok(stats.objects.young > 0 && stats.trees.young > 0, JSON.stringify(stats));
    // Index objects are not data: they are compacted whatever their age, into one that lists every kept object.
    assert.deepEqual([stats.index.objects_before, stats.index.objects_after], [3, 1]);
    assert.deepEqual([...(await objectNames(fx.repo, 'packs')), ...(await objectNames(fx.repo, 'chunks')), ...(await objectNames(fx.repo, 'trees'))], before);
  });

  it('prune --dry-run changes nothing; prune deletes and repacks what no snapshot needs, and the rest restores byte for byte', async () => {
    const everything = async () => [...(await objectNames(fx.repo, 'packs')), ...(await objectNames(fx.repo, 'chunks')), ...(await objectNames(fx.repo, 'trees')), ...(await objectNames(fx.repo, 'index'))];
    const before = await everything();
    const dry = pruneSummary(expectCode(await cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s', '--max-unused', '0%', '--dry-run', '--json']), 0));
    assert.ok(dry.dry_run && dry.objects.delete > 0 && dry.objects.repack > 0, JSON.stringify(dry));
    assert.deepEqual(await everything(), before);

    const packBytes = await folderBytes(fx.repo, 'packs');
    const chunkBytes = await folderBytes(fx.repo, 'chunks');
    const stats = pruneSummary(expectCode(await cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s', '--max-unused', '0%', '--json']), 0));
    assert.equal(stats.objects.repack, 1, JSON.stringify(stats));
    assert.ok(stats.objects.delete >= 4, 'the chunks of A\'s big file and A\'s pack of files 30-59');
    assert.ok(stats.trees.delete >= 2, 'the root and small/ trees of A and B');
    assert.equal(stats.index.objects_after, 1);
    assert.equal(stats.failed_deletes, 0);
    assert.ok((await folderBytes(fx.repo, 'packs')) < packBytes - 30 * 20_000, 'the bundles only A held are gone');
    assert.ok((await folderBytes(fx.repo, 'chunks')) < chunkBytes - 1024 * KiB, 'A\'s big file is gone');
    assert.equal((await objectNames(fx.repo, 'index')).length, 1);
    assert.deepEqual(await restored(access, ids.C!, join(fx.dir, 'out')), expected.C);
    const check = await checkRepo(access);
    assert.equal(check.code, 0, JSON.stringify(check));
    assert.deepEqual(check.summary.garbage, { unindexed_objects: 0, unindexed_bytes: 0, unused_trees: 0, duplicate_copies: 0 });
    const read = await checkRepo(access, ['--key', fx.key, '--read-data']);
    assert.equal(read.code, 0, JSON.stringify(read));
    assert.equal(read.summary.read_data.objects, read.summary.objects);
    // Nothing left to do: the next prune deletes, repacks and rewrites nothing.
    const again = pruneSummary(expectCode(await cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s', '--max-unused', '0%', '--json']), 0));
    assert.deepEqual([again.objects.delete, again.objects.repack, again.trees.delete, again.index.objects_after], [0, 0, 0, 1]);
  });

  it('--no-repack deletes only whole unused objects and never writes a pack', async () => {
    // D keeps 10 of B's 30 files: B's pack keeps its first bundle, its other two are dead.
    await snapshot('D', { small: [...files(0, 20, 'a'), ...files(30, 40, 'b'), ...files(60, 80, 'c')], big: 1536 * KiB, bigSeed: 'c' });
    expectCode(await cli(access, ['forget', '--credentials', fx.cred, '--keep-last', '1']), 0);
    const packs = await objectNames(fx.repo, 'packs');
    const stats = pruneSummary(expectCode(await cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s', '--no-repack', '--json']), 0));
    assert.equal(stats.objects.repack, 0);
    assert.equal(stats.packs_written, 0);
    assert.ok(stats.bytes.remaining_unused >= 15 * 20_000, 'the dead bundles of files 43-59 of B stay');
    assert.ok((await objectNames(fx.repo, 'packs')).every((p) => packs.includes(p)), 'no new pack');
    assert.deepEqual(await restored(access, ids.D!, join(fx.dir, 'out')), expected.D);
    const repacked = pruneSummary(expectCode(await cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s', '--max-unused', '0%', '--json']), 0));
    assert.ok(repacked.objects.repack >= 1, JSON.stringify(repacked));
    assert.deepEqual(await restored(access, ids.D!, join(fx.dir, 'out')), expected.D);
    assert.equal((await checkRepo(access, ['--key', fx.key, '--read-data'])).code, 0);
  });

  it('forget groups by source and host: each group keeps its own; forget ID removes just that snapshot', async () => {
    await writeSource(src, { small: files(0, 3, 'o') });
    const other = [await backup(access, src, ['--source', 'other', '--hostname', 'h1']), await backup(access, src, ['--source', 'other', '--hostname', 'h1'])];
    const grouped = JSON.parse(expectCode(await cli(access, ['forget', '--credentials', fx.cred, '--keep-last', '1', '--dry-run', '--json']), 0).stdout.split('\n')[0]!) as { source: string; keep: { id: string }[] }[];
    assert.deepEqual(grouped.map((g) => [g.source, g.keep.map((s) => s.id)]), [['src', [ids.D]], ['other', [other[1]]]]);
    const together = JSON.parse(expectCode(await cli(access, ['forget', '--credentials', fx.cred, '--keep-last', '1', '--group-by', '', '--dry-run', '--json']), 0).stdout.split('\n')[0]!) as { keep: { id: string }[]; remove: unknown[] }[];
    assert.deepEqual(together.map((g) => [g.keep.map((s) => s.id), g.remove.length]), [[[other[1]], 2]]);
    expectCode(await cli(access, ['forget', '--credentials', fx.cred, other[0]!.slice(0, 10)]), 0);
    assert.deepEqual((await snapshotList(access)).map((s) => s.id), [ids.D, other[1]]);
  });

  it('locks: a live lock makes prune exit 11 (or wait with --retry-lock); a stale one is ignored and unlock removes it', async () => {
    const repo = await openRepository(new FilesystemTarget(fx.repo), { credentials: await readCredentials(fx.cred) });
    const held = await RepositoryLock.acquire(repo, { exclusive: false, command: 'backup', retryMs: 0 });
    const locked = await cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s']);
    assert.equal(locked.code, 11, locked.stderr);
    assert.match(locked.stderr, new RegExp(`is locked: a shared lock by backup on ${hostname()} \\(pid ${process.pid}\\)`));
    const waiting = cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s', '--retry-lock', '30s']);
    setTimeout(() => void held.release(), 1500);
    expectCode(await waiting, 0);
    // A lock whose process is gone (same host, dead pid) is stale: prune ignores it, unlock removes it.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = { id: randomBytes(32).toString('hex'), time: new Date().toISOString(), expires: new Date(Date.now() + 3_600_000).toISOString(), exclusive: true, hostname: hostname(), username: 'test', pid: dead, command: 'prune' };
    await repo.putMeta(Layout.lock(stale.id), Buffer.from(JSON.stringify(stale)));
    expectCode(await cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s']), 0);
    const unlocked = expectCode(await cli(access, ['unlock', '--credentials', fx.cred]), 0);
    assert.match(unlocked.stdout, new RegExp(`removed 1 lock: locks/${stale.id}`));
    const live = await RepositoryLock.acquire(repo, { exclusive: false, command: 'backup', retryMs: 0 });
    assert.match(expectCode(await cli(access, ['unlock', '--credentials', fx.cred]), 0).stdout, /no stale locks/);
    assert.match(expectCode(await cli(access, ['unlock', '--credentials', fx.cred, '--remove-all']), 0).stdout, /removed 1 lock/);
    await live.release();
    assert.deepEqual(await objectNames(fx.repo, 'locks'), []);
    await repo.close();
  });

  describe('check finds each missing or damaged object by name, with the snapshots and paths it affects', () => {
    let damaged: RepoAccess;
    let dir: string;

    /** A fresh copy of the repository to damage. */
    async function copy(): Promise<void> {
      dir = join(fx.dir, `damaged-${randomBytes(4).toString('hex')}`);
      await cp(fx.repo, dir, { recursive: true });
      damaged = { ...access, repo: dir };
    }

    before(async () => {
      await writeSource(src, { small: [...files(0, 20, 'a'), ...files(30, 40, 'b'), ...files(60, 80, 'c'), ...files(80, 90, 'e')], big: 1536 * KiB, bigSeed: 'c' });
      ids.E = await backup(access, src, ['--hostname', 'h1']);
      expectCode(await cli(access, ['prune', '--credentials', fx.cred, '--grace', '0s']), 0);
      assert.equal((await checkRepo(access)).code, 0);
    });

    const shortIds = () => [ids.D!.slice(0, 8), ids.E!.slice(0, 8)];

    it('a deleted chunk', async () => {
      await copy();
      const chunk = (await objectNames(dir, 'chunks'))[0]!;
      await rm(join(dir, chunk));
      const { code, errors } = await checkRepo(damaged);
      assert.equal(code, 1);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.object, chunk);
      assert.match(String(errors[0]!.message), /^is missing \(index\/[0-9a-f]{64} lists 1 blobs in it\)$/);
      assert.deepEqual(errors[0]!.snapshots, shortIds());
      assert.deepEqual(errors[0]!.paths, ['/big.bin']);
    });

    it('a deleted pack', async () => {
      await copy();
      const pack = (await objectNames(dir, 'packs'))[0]!;
      await rm(join(dir, pack));
      const { code, errors } = await checkRepo(damaged);
      assert.equal(code, 1);
      assert.deepEqual(errors.map((e) => e.object), [pack]);
      assert.ok((errors[0]!.snapshots as string[]).length >= 1);
      assert.ok((errors[0]!.paths as string[]).every((p) => p.startsWith('/small/f')), JSON.stringify(errors));
      const text = (await cli(damaged, ['check', '--credentials', fx.cred])).stdout;
      assert.match(text, new RegExp(`error: ${pack}: is missing .*; snapshots affected: `));
      assert.match(text, /1 problem found/);
    });

    it('a deleted tree', async () => {
      await copy();
      const repo = await openRepository(new FilesystemTarget(dir), { credentials: await readCredentials(fx.cred) });
      const snap = await repo.findSnapshot(ids.E!);
      let small = '';
      for await (const e of repo.treeEntries(snap.tree)) if (e.type === 'dir') small = e.tree;
      await repo.close();
      await rm(join(dir, Layout.tree(small)));
      const { code, errors } = await checkRepo(damaged);
      assert.equal(code, 1);
      assert.deepEqual(errors.map((e) => [e.object, e.message, e.paths]), [[Layout.tree(small), 'is missing', ['/small']]]);
      assert.deepEqual(errors[0]!.snapshots, [ids.E!.slice(0, 8)]);
    });

    it('a deleted index object', async () => {
      await copy();
      const index = (await objectNames(dir, 'index'))[0]!;
      await rm(join(dir, index));
      const { code, errors, summary } = await checkRepo(damaged);
      assert.equal(code, 1);
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.object, 'index');
      assert.match(String(errors[0]!.message), /lists no copy of \d+ blobs that snapshots use .*kbrackup repair index/);
      assert.deepEqual(errors[0]!.snapshots, (await snapshotList(damaged)).map((s) => s.short_id));
      assert.ok(summary.garbage.unindexed_objects > 0);
      // repair index rebuilds it from the trailers; then check is clean again.
      expectCode(await cli(damaged, ['repair', 'index', '--credentials', fx.cred]), 0);
      assert.equal((await checkRepo(damaged)).code, 0);
    });

    it('a damaged byte in a pack: only --read-data (with the key) sees it', async () => {
      await copy();
      const pack = (await objectNames(dir, 'packs'))[0]!;
      const handle = await open(join(dir, pack), 'r+');
      const at = 400;
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
      await handle.close();
      assert.equal((await checkRepo(damaged)).code, 0);
      const { code, errors, summary } = await checkRepo(damaged, ['--key', fx.key, '--read-data']);
      assert.equal(code, 1);
      assert.deepEqual(errors.map((e) => e.object), [pack]);
      assert.equal(summary.num_errors, 1);
      // A subset: part n of t covers each object in exactly one of the t parts.
      let found = 0;
      for (let n = 1; n <= 3; n++) found += (await checkRepo(damaged, ['--key', fx.key, '--read-data-subset', `${n}/3`])).errors.length;
      assert.equal(found, 1);
    });

    it('a damaged snapshot object', async () => {
      await copy();
      const snapshotObject = (await objectNames(dir, 'snapshots')).find((n) => n.endsWith(ids.E!))!;
      const bytes = await readFile(join(dir, snapshotObject));
      bytes[bytes.length - 5]! ^= 1;
      await writeFile(join(dir, snapshotObject), bytes);
      const { code, errors } = await checkRepo(damaged);
      assert.equal(code, 1);
      assert.equal(errors[0]!.object, snapshotObject);
      assert.deepEqual(errors[0]!.snapshots, [ids.E!.slice(0, 8)]);
      // Prune refuses to run: it cannot tell what that snapshot needs.
      const refused = await cli(damaged, ['prune', '--credentials', fx.cred, '--grace', '0s']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, new RegExp(`snapshot ${snapshotObject} cannot be read .* nothing was deleted`));
      // It can still be forgotten by its id; then prune runs, and what is left checks clean.
      assert.match(expectCode(await cli(damaged, ['forget', '--credentials', fx.cred, ids.E!.slice(0, 12)]), 0).stdout, new RegExp(`removing snapshot ${ids.E!.slice(0, 8)} \\(${snapshotObject}\\)`));
      expectCode(await cli(damaged, ['prune', '--credentials', fx.cred, '--grace', '0s']), 0);
      assert.equal((await checkRepo(damaged)).code, 0);
    });
  });
});

describe('diff of entries that changed type', () => {
  let fx: Fixture;
  let access: RepoAccess;
  let first: string;
  let second: string;

  before(async () => {
    fx = await makeFixture();
    access = { repo: fx.repo, cred: fx.cred, key: fx.key, args: [], env: {} };
    const src = join(fx.dir, 'src');
    await mkdir(join(src, 'was-dir', 'sub'), { recursive: true });
    await writeFile(join(src, 'link'), 'a file first\n');
    await writeFile(join(src, 'same.txt'), 'unchanged\n');
    await writeFile(join(src, 'was-dir', 'a.txt'), 'a\n');
    await writeFile(join(src, 'was-dir', 'sub', 'b.txt'), 'b\n');
    await writeFile(join(src, 'was-file'), 'a file, then a folder\n');
    first = await backup(access, src);
    await rm(join(src, 'link'));
    await symlink('same.txt', join(src, 'link'));
    await rm(join(src, 'was-dir'), { recursive: true });
    await writeFile(join(src, 'was-dir'), 'a folder, then a file\n');
    await rm(join(src, 'was-file'));
    await mkdir(join(src, 'was-file', 'deeper'), { recursive: true });
    await writeFile(join(src, 'was-file', 'c.txt'), 'c\n');
    await writeFile(join(src, 'was-file', 'deeper', 'd.txt'), 'd\n');
    second = await backup(access, src);
  });
  after(() => fx.cleanup());

  it('diff marks a file that became a symlink, a folder that became a file and a file that became a folder with T, and lists what went or came below them', async () => {
    const text = expectCode(await cli(access, ['diff', '--credentials', fx.cred, first, second]), 0).stdout;
    assert.deepEqual(text.split('\n').filter((l) => /^[+\-MTU] /.test(l)), [
      'T    /link',
      'T    /was-dir',
      '-    /was-dir/a.txt',
      '-    /was-dir/sub/',
      '-    /was-dir/sub/b.txt',
      'T    /was-file/',
      '+    /was-file/c.txt',
      '+    /was-file/deeper/',
      '+    /was-file/deeper/d.txt',
    ]);
    assert.match(text, /Files: {7}2 new, 2 removed, 0 changed\nDirs: {8}1 new, 1 removed\n/);
    const lines = jsonLines(expectCode(await cli(access, ['diff', '--credentials', fx.cred, first, second, '--json']), 0).stdout);
    assert.deepEqual(lines.filter((l) => l.message_type === 'change').map((l) => [l.modifier, l.path]), [
      ['T', '/link'],
      ['T', '/was-dir'],
      ['-', '/was-dir/a.txt'],
      ['-', '/was-dir/sub/'],
      ['-', '/was-dir/sub/b.txt'],
      ['T', '/was-file/'],
      ['+', '/was-file/c.txt'],
      ['+', '/was-file/deeper/'],
      ['+', '/was-file/deeper/d.txt'],
    ]);
    const stats = lines.find((l) => l.message_type === 'statistics') as Record<string, any>;
    assert.equal(stats.changed_files, 0, 'a type change is no content change');
    assert.deepEqual(stats.added, { files: 2, dirs: 1, others: 0, bytes: 4 });
    assert.deepEqual(stats.removed, { files: 2, dirs: 1, others: 0, bytes: 4 });
    // The other way round, the folders' contents swap sides.
    const back = jsonLines(expectCode(await cli(access, ['diff', '--credentials', fx.cred, second, first, '--json']), 0).stdout);
    assert.deepEqual(back.filter((l) => l.message_type === 'change').map((l) => `${l.modifier} ${l.path}`), [
      'T /link',
      'T /was-dir/',
      '+ /was-dir/a.txt',
      '+ /was-dir/sub/',
      '+ /was-dir/sub/b.txt',
      'T /was-file',
      '- /was-file/c.txt',
      '- /was-file/deeper/',
      '- /was-file/deeper/d.txt',
    ]);
  });
});
