/**
 * Issue 15: every file comes back as it was. Real files on disk, the real CLI in child processes, and a
 * check of the restore by GNU find and getfacl rather than by the code that wrote it. Needs root (CI runs
 * as root): owners by number, security.* attributes and ACLs, and a restore run as `nobody` to show what
 * a normal user gets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, ftruncateSync, linkSync, lchownSync, mkdirSync, openSync, readSync, chownSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { dataExtents, setXattr, withPath, type Extent } from '../src/platform/index.js';
import { NOBODY, jsonLines, runCli, summaryOf } from './helpers/cli.js';
import { writePseudoRandom } from './helpers/data.js';
import { reportFigures } from './helpers/figures.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';
import { comparable, treeOf, type PathInfo } from './helpers/tree.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** A path below `dir` from names given as bytes (latin1 strings) or text. */
function at(dir: string, ...names: (string | Buffer)[]): Buffer {
  return Buffer.concat([Buffer.from(dir), ...names.map((n) => Buffer.concat([Buffer.from('/'), typeof n === 'string' ? Buffer.from(n) : n]))]);
}

/** Names Linux allows that are not plain text: invalid UTF-8, control characters, backslashes that look like escapes. */
const ODD_NAMES = [
  Buffer.from('bad\xff\xfe', 'latin1'),
  Buffer.from('new\nline'),
  Buffer.from('back\\slash'),
  Buffer.from('lit\\n'),
  Buffer.from('lit\\x41'),
  Buffer.from('tab\there'),
  Buffer.from('ünïcode ✓'),
  Buffer.from('\x01\x7f', 'latin1'),
];
/** A folder whose name is a lone continuation byte, holding a file cut in the middle of a UTF-8 sequence. */
const ODD_DIR = Buffer.from('dir\x80', 'latin1');
const ODD_INNER = Buffer.from('inner\xc3(', 'latin1');

/** 25 levels of 200-byte names: deeper than PATH_MAX (4096 bytes) below the source folder. */
const DEEP = Array.from({ length: 25 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(198)}`);

const SPARSE_SIZE = 5 * GiB;
const SPARSE_DATA: Extent[] = [
  { offset: 0, length: 4 * KiB },
  { offset: 2 * GiB, length: 4 * KiB },
  { offset: SPARSE_SIZE - 4 * KiB, length: 4 * KiB },
];

function writeSparse(path: string): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, SPARSE_SIZE);
    SPARSE_DATA.forEach(({ offset, length }, i) => writeSync(fd, Buffer.alloc(length, 0x41 + i), 0, length, offset));
  } finally {
    closeSync(fd);
  }
}

/** The data extents of a file and their bytes: holes are zeros by definition, so this is its whole content. */
function extentsWithData(path: string): { extents: Extent[]; data: string[] } {
  const fd = openSync(path, 'r');
  try {
    const extents = [...dataExtents(fd, SPARSE_SIZE)];
    const data = extents.map(({ offset, length }) => {
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, offset);
      return buf.toString('base64');
    });
    return { extents, data };
  } finally {
    closeSync(fd);
  }
}

function getfacl(path: string): string {
  return execFileSync('getfacl', ['--omit-header', '--numeric', '--absolute-names', path], { encoding: 'utf8' });
}

/** The restore command for a snapshot of the fixture. */
function restoreArgs(fx: Fixture, snapshot: string, out: string, ...extra: string[]): string[] {
  return ['restore', '--repo', fx.repo, '--key', fx.key, snapshot, '--target', out, ...extra];
}

describe('every file comes back as it was (issue 15)', () => {
  let fx: Fixture;
  let src: string;
  let source: Map<string, PathInfo>;
  /** The snapshot of `src` (the sparse-file test adds a snapshot of another folder). */
  let snapshot = 'latest';

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'these tests restore owners, security.* attributes and ACLs, and switch to nobody: run them as root (CI does)');
    fx = await makeFixture(['--chunk-size', '256KiB']);
    src = join(fx.dir, 'src');
    await mkdir(join(src, 'names'), { recursive: true });
    ODD_NAMES.forEach((name, i) => writeFileSync(at(src, 'names', name), `file ${i}\n`));
    mkdirSync(at(src, 'names', ODD_DIR));
    writeFileSync(at(src, 'names', ODD_DIR, ODD_INNER), 'inner\n');
    symlinkSync(Buffer.from('bad\xff\xfe', 'latin1'), at(src, 'names', Buffer.from('link\n\xfe', 'latin1')));

    let deep = at(src, 'deep');
    mkdirSync(deep);
    for (const name of DEEP) {
      deep = Buffer.concat([deep, Buffer.from(`/${name}`)]);
      withPath(deep, (p) => mkdirSync(p));
    }
    withPath(Buffer.concat([deep, Buffer.from('/leaf.txt')]), (p) => writeFileSync(p, 'at the bottom\n'));
    // Large enough for the chunked path (above --small-file), so both file paths meet the long name.
    withPath(Buffer.concat([deep, Buffer.from('/leaf.bin')]), (p) => writeFileSync(p, Buffer.alloc(600 * KiB, 7)));
    withPath(Buffer.concat([deep, Buffer.from('/up')]), (p) => symlinkSync('../..', p));

    writeSparse(join(src, 'sparse.img'));
    // Zeros written out (allocated): restore makes holes of them, as `cp --sparse=always` would.
    await writePseudoRandom(join(src, 'zeros.bin'), 4 * MiB, 'zeros');
    const fd = openSync(join(src, 'zeros.bin'), 'r+');
    writeSync(fd, Buffer.alloc(2 * MiB), 0, 2 * MiB, 1 * MiB);
    closeSync(fd);

    await mkdir(join(src, 'links', 'sub'), { recursive: true });
    writeFileSync(join(src, 'links', 'one.txt'), 'linked three times\n');
    linkSync(join(src, 'links', 'one.txt'), join(src, 'links', 'two.txt'));
    linkSync(join(src, 'links', 'one.txt'), join(src, 'links', 'sub', 'three.txt'));
    await writePseudoRandom(join(src, 'links', 'big.bin'), 1 * MiB, 'big link');
    linkSync(join(src, 'links', 'big.bin'), join(src, 'links', 'sub', 'big-link.bin'));

    const meta = join(src, 'meta');
    await mkdir(join(meta, 'owned-dir'), { recursive: true });
    writeFileSync(join(meta, 'owned.txt'), 'owned by numbers\n');
    chownSync(join(meta, 'owned.txt'), 1234, 5678);
    chmodSync(join(meta, 'owned.txt'), 0o640);
    chownSync(join(meta, 'owned-dir'), 4321, 8765);
    chmodSync(join(meta, 'owned-dir'), 0o750);
    symlinkSync('owned.txt', join(meta, 'link'));
    lchownSync(join(meta, 'link'), 1111, 2222);
    setXattr(join(meta, 'owned.txt'), 'user.comment', Buffer.from('binary \x00\xff value', 'latin1'));
    setXattr(join(meta, 'owned-dir'), 'user.folder', Buffer.from('on a folder'));
    setXattr(join(meta, 'owned.txt'), 'security.kbrackup-test', Buffer.from('a label'));
    writeFileSync(join(meta, 'acl.txt'), 'with an access ACL\n');
    execFileSync('setfacl', ['-m', `u:${NOBODY}:r--,g:${NOBODY}:rw-`, join(meta, 'acl.txt')]);
    await mkdir(join(meta, 'acl-dir'));
    execFileSync('setfacl', ['-m', `u:${NOBODY}:rwx`, '-d', '-m', `u:${NOBODY}:r-x`, join(meta, 'acl-dir')]);
    source = treeOf(src);
  });
  // Node's rm cannot reach paths over PATH_MAX; GNU rm walks with openat.
  after(() => execFileSync('rm', ['-rf', fx.dir]));

  it('restores names of any bytes, paths over 4096 bytes, hard links, owners, modes, xattrs and ACLs exactly', async () => {
    const backup = expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--json', src]), 0);
    assert.deepEqual(jsonLines(backup.stdout).filter((l) => l.message_type === 'error'), []);
    snapshot = String(summaryOf(backup.stdout).snapshot_id);
    const out = join(fx.dir, 'out');
    expectCode(await runCli(restoreArgs(fx, snapshot, out)), 0);
    const restored = treeOf(out);
    const fields: (keyof PathInfo)[] = ['type', 'size', 'mode', 'uid', 'gid', 'nlink', 'sha256', 'link', 'xattrs'];
    assert.deepEqual(comparable(restored, fields), comparable(source, fields));
    const longest = Math.max(...[...restored.keys()].map((p) => p.length));
    assert.ok(longest > 5000, `deepest restored path is ${longest} bytes`);
    for (const [path, info] of source) {
      // utimes takes float seconds: nanoseconds come back within a microsecond or so.
      if (info.type !== 'l') assert.ok(Math.abs(restored.get(path)!.mtime - info.mtime) < 1e-3, `${path} mtime`);
    }
    const ino = (p: string): number => restored.get(p)!.ino;
    assert.equal(ino('links/two.txt'), ino('links/one.txt'));
    assert.equal(ino('links/sub/three.txt'), ino('links/one.txt'));
    assert.equal(ino('links/sub/big-link.bin'), ino('links/big.bin'));
    for (const p of ['meta/acl.txt', 'meta/acl-dir']) assert.equal(getfacl(join(out, p)), getfacl(join(src, p)), p);
    assert.match(getfacl(join(out, 'meta/acl-dir')), new RegExp(`default:user:${NOBODY}:r-x`));
    // Zero runs are not written: most of the 2 MiB of zeros are a hole again (pieces that straddle data are written).
    assert.ok(restored.get('zeros.bin')!.blocks * 512 <= 2.5 * MiB, `zeros.bin allocates ${restored.get('zeros.bin')!.blocks * 512} bytes`);
    reportFigures({ scenario: 'round trip: odd names, deep paths, links, owners, xattrs, ACLs', trials: 1, paths: source.size, dataLost: 0 });
  });

  it('ls and ls --json show every name escaped so that restore --include takes it back to exactly that file', async () => {
    const names = [...ODD_NAMES.map((n) => Buffer.concat([Buffer.from('names/'), n])), Buffer.concat([Buffer.from('names/'), ODD_DIR, Buffer.from('/'), ODD_INNER])];
    const text = expectCode(await runCli(['ls', '--repo', fx.repo, '--credentials', fx.cred, snapshot, 'names']), 0).stdout.split('\n');
    // mode, uid, gid, size, date, time, then the path (and ` -> target` for symlinks).
    const shown = text.map((l) => /^-\S+\s+\d+\s+\d+\s+\d+ \S+ \S+ \/(.*)$/.exec(l)?.[1]).filter((p): p is string => p !== undefined);
    assert.equal(shown.length, names.length, text.join('\n'));
    assert.ok(shown.every((p) => !/[\n\t\x01\x7f]/.test(p)), 'one line per file, no raw control characters');
    const lines = jsonLines(expectCode(await runCli(['ls', '--repo', fx.repo, '--credentials', fx.cred, '--json', snapshot, 'names']), 0).stdout);
    const files = lines.filter((l) => l.type === 'file');
    for (const l of files) {
      const exact = l.path_bytes === undefined ? Buffer.from(String(l.path)) : Buffer.from(String(l.path_bytes), 'base64');
      assert.ok(names.some((n) => Buffer.concat([Buffer.from('/'), n]).equals(exact)), `path_bytes of ${String(l.path)}`);
    }
    let trials = 0;
    for (const [how, paths] of [
      ['ls', shown],
      ['ls --json', files.map((l) => String(l.path))],
    ] as const) {
      const out = join(fx.dir, `include-${how.replace(/\W/g, '')}`);
      expectCode(await runCli(restoreArgs(fx, snapshot, out, ...paths.flatMap((p) => ['--include', p]))), 0);
      const got = [...treeOf(out)].filter(([, i]) => i.type === 'f').map(([p]) => p).sort();
      assert.deepEqual(got, names.map((n) => n.toString('latin1')).sort(), `restore --include from ${how}`);
      trials += paths.length;
    }
    reportFigures({ scenario: 'ls / ls --json names round-trip into restore --include', trials, dataLost: 0 });
  });

  it('a 5 GiB sparse file with 12 KiB of data backs up and restores reading and writing only its data, and comes back sparse', async () => {
    const only = join(fx.dir, 'sparse-only');
    await mkdir(only);
    writeSparse(join(only, 'disk.img'));
    const backup = summaryOf(expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--json', only]), 0).stdout);
    assert.ok(Number(backup.bytes_read) <= 64 * KiB, `bytes_read ${backup.bytes_read}`);
    const out = join(fx.dir, 'sparse-out');
    const restore = JSON.parse(expectCode(await runCli(restoreArgs(fx, String(backup.snapshot_id), out, '--json')), 0).stdout.trim()) as { total_duration: number };
    const [before, after] = [treeOf(only).get('disk.img')!, treeOf(out).get('disk.img')!];
    assert.equal(after.size, SPARSE_SIZE);
    assert.ok(after.blocks <= before.blocks + 16, `restored file allocates ${after.blocks} blocks, the source ${before.blocks}`);
    assert.deepEqual(extentsWithData(join(out, 'disk.img')), extentsWithData(join(only, 'disk.img')));
    // Generous bounds for a busy machine; without holes the same file took 34 s (issue 15).
    assert.ok(Number(backup.total_duration) < 3, `backup took ${backup.total_duration} s`);
    assert.ok(restore.total_duration < 3, `restore took ${restore.total_duration} s`);
    reportFigures({ scenario: 'sparse 5 GiB file', trials: 1, bytesRead: Number(backup.bytes_read), backupSeconds: Number(backup.total_duration), restoreSeconds: restore.total_duration, blocksSource: before.blocks, blocksRestored: after.blocks, dataLost: 0 });
  });

  it('hard links come back as links across --include too: the names selected stay one file', async () => {
    const out = join(fx.dir, 'links-out');
    expectCode(await runCli(restoreArgs(fx, snapshot, out, '--include', 'links/sub', '--include', 'links/one.txt')), 0);
    const t = treeOf(out);
    assert.equal(t.get('links/two.txt'), undefined);
    assert.equal(t.get('links/sub/three.txt')!.ino, t.get('links/one.txt')!.ino);
    assert.equal(t.get('links/one.txt')!.nlink, 2);
    assert.equal(t.get('links/sub/big-link.bin')!.sha256, source.get('links/big.bin')!.sha256);
    reportFigures({ scenario: 'hard links with --include', trials: 1, dataLost: 0 });
  });

  it('as a normal user: user.* comes back, security.* and ACLs are skipped with one warning, files belong to the user', async () => {
    // nobody reads the repository and the key, and restores into folders it owns.
    for (const p of [fx.dir, join(fx.dir, 'keys')]) await chmod(p, 0o755);
    execFileSync('chmod', ['-R', 'a+rX', fx.repo, fx.key]);
    const out = join(fx.dir, 'nobody-out');
    const tmp = join(fx.dir, 'nobody-tmp');
    for (const d of [out, tmp]) {
      await mkdir(d);
      chownSync(d, NOBODY, NOBODY);
    }
    const run = expectCode(await runCli(restoreArgs(fx, snapshot, out, '--include', 'meta', '--include', 'names', '--temp-dir', tmp), { asUser: NOBODY }), 0);
    const warnings = run.stderr.split('\n').filter((l) => l.includes('"level":40'));
    assert.equal(warnings.length, 1, run.stderr);
    assert.match(warnings[0]!, /extended attribute (security|system\.posix_acl)\S* not restored \(only root may write/);
    const t = treeOf(out);
    for (const [path, info] of t) {
      assert.equal(info.uid, NOBODY, `${path} owner`);
      assert.ok(info.xattrs.every((x) => x.startsWith('user.')), `${path}: ${info.xattrs.join(', ')}`);
      if (info.sha256) assert.equal(info.sha256, source.get(path)!.sha256, path);
    }
    assert.deepEqual(t.get('meta/owned.txt')!.xattrs, source.get('meta/owned.txt')!.xattrs.filter((x) => x.startsWith('user.')));
    assert.deepEqual(t.get('meta/owned-dir')!.xattrs, source.get('meta/owned-dir')!.xattrs);
    reportFigures({ scenario: 'restore as a normal user', trials: 1, warnings: warnings.length, dataLost: 0 });
  });
});
