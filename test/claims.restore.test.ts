import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IntegrityError, KbrackupError } from '../src/errors.js';
import { applyDirMeta, writeSymlink } from '../src/restore/files-writer.js';
import { LargeFileWriter } from '../src/restore/large-writer.js';
import { SmallFileWriter } from '../src/restore/small-writer.js';
import type * as WriteThreadModule from '../src/restore/write-thread.js';
import { SafeDirs } from '../src/restore/safe-path.js';
import { XattrWriter } from '../src/restore/xattrs.js';
import type { DirEntry, FileEntry, SymlinkEntry } from '../src/repo/tree/entry.js';
import { fileEntry } from './helpers/forge.js';

/**
 * What restore promises about what it writes (README "Threat model", docs/SECURITY.md "The trust chain"
 * 6), checked on the modules that keep it, in this process: SafeDirs never leaves the destination nor
 * goes through a symlink, and the file writer never puts a byte under a file's name that is not its
 * recorded size and SHA-256. The CLI tests (hostile-forged) reach these only behind decodeEntry's own
 * name checks, so without these a second line of defence could go missing unnoticed.
 */
// The write thread runs compiled code (dist/restore/write-worker.js), as a restore does: load that build.
const { WriteThread } = (await import(new URL('../dist/restore/write-thread.js', import.meta.url).href)) as typeof WriteThreadModule;
const TREE = 'trees/ab/abc';
const isRoot = process.getuid?.() === 0;

describe('restore writes only inside the destination (safe-path)', () => {
  let dir: string;
  let dest: string;
  let outside: string;
  let n = 0;
  /** A fresh destination next to `outside`, so an escape would show there. */
  const fresh = async () => {
    const d = join(dest, `d${++n}`);
    await mkdir(d);
    return d;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kbrackup-safe-'));
    dest = join(dir, 'dest');
    outside = join(dir, 'outside');
    await mkdir(dest);
    await mkdir(outside);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('refuses every path that is not a chain of plain names, creating nothing', async () => {
    const d = await fresh();
    const dirs = new SafeDirs(d);
    for (const path of ['..', '../x', 'a/..', 'a/../../x', '.', './a', 'a/.', '/abs', 'a/', 'a//b', 'a\0b', '\0']) {
      for (const create of [true, false]) {
        assert.throws(() => dirs.ensure(path, create), (err: unknown) => err instanceof KbrackupError && /refusing the unsafe path .* it would leave the restore destination/.test(err.message), `${JSON.stringify(path)} (create ${create})`);
      }
    }
    assert.deepEqual(await readdir(d), []);
    assert.deepEqual(await readdir(dir), ['dest', 'outside']);
  });

  it('makes real folders below the destination and returns their path; without create it only names them', async () => {
    const d = await fresh();
    const dirs = new SafeDirs(d);
    assert.equal(dirs.ensure('', true), d);
    assert.equal(dirs.ensure('', false), d);
    assert.equal(dirs.ensure('x/y', false), `${d}/x/y`);
    assert.deepEqual(await readdir(d), [], 'create false makes nothing');
    assert.equal(dirs.ensure('a/b/c', true), `${d}/a/b/c`);
    assert.ok((await lstat(join(d, 'a', 'b', 'c'))).isDirectory());
    // A folder that is already there (made by the destination's owner) is used as it is.
    await mkdir(join(d, 'pre'));
    assert.equal(dirs.ensure('pre/q', true), `${d}/pre/q`);
    assert.ok((await lstat(join(d, 'pre', 'q'))).isDirectory());
    // Asked again (cached), the same answer.
    assert.equal(dirs.ensure('a/b/c', true), `${d}/a/b/c`);
  });

  it('never goes through a symlink or a file, at any depth, whatever it points to', async () => {
    const d = await fresh();
    await symlink(outside, join(d, 'link'));
    await mkdir(join(d, 'real'));
    await symlink(outside, join(d, 'real', 'deeper'));
    await symlink('.', join(d, 'self'));
    await writeFile(join(d, 'file'), 'x');
    const dirs = new SafeDirs(d);
    for (const [path, what] of [
      ['link', 'a symlink'],
      ['link/x', 'a symlink'],
      ['real/deeper/x', 'a symlink'],
      ['self/x', 'a symlink'],
      ['file/x', 'not a folder'],
    ] as const) {
      assert.throws(() => dirs.ensure(path, true), (err: unknown) => err instanceof KbrackupError && err.message.includes(`is ${what}; refusing to restore through it`), path);
    }
    assert.deepEqual(await readdir(outside), []);
  });
});

describe('restore writes only verified content under a file\'s name (files-writer)', () => {
  let dir: string;
  let n = 0;
  const xattrs = new XattrWriter((message) => assert.fail(`unexpected warning: ${message}`));
  /** A small file as restore writes it on the main thread (the write thread gets the same verified bytes: restore-thread). */
  const writeWhole = (d: string, path: string, entry: FileEntry, data: Buffer | undefined) => new SmallFileWriter(undefined, xattrs).write(d, path, entry, data, TREE);
  const fresh = async () => {
    const d = join(dir, `d${++n}`);
    await mkdir(d);
    return d;
  };
  const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
  /** The file entry of `data` with a made-up blob id: the writer checks content, the reader ids. */
  const entryOf = (name: string, data: Buffer, extra: Partial<FileEntry> = {}): FileEntry => ({ ...fileEntry(name, { data, parts: [{ id: 'a'.repeat(64), length: data.length }] }, 0o640), uid: 1234, gid: 4321, mtime: '1600000000123456789', ...extra });
  const refused = (err: unknown, file: string) => err instanceof IntegrityError && err.object === TREE && err.message.includes(file);

  const thread = new WriteThread();
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kbrackup-writer-'));
  });
  after(async () => {
    await thread.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a small file whose bytes differ from its recorded size or SHA-256 is refused, and nothing is left', async () => {
    const d = await fresh();
    const data = Buffer.from('alpha\n');
    // Same size, other bytes: only the SHA-256 tells.
    await assert.rejects(writeWhole(d, 'dir/f', entryOf('f', data), Buffer.from('bravo\n')), (err: unknown) => refused(err, 'dir/f: restored content does not match its recorded size and SHA-256'));
    // The right bytes but a size that says otherwise (a file stored without a SHA-256: sparse).
    const unhashed = { ...entryOf('g', data), sha256: undefined, size: 7 };
    await assert.rejects(writeWhole(d, 'g', unhashed, data), (err: unknown) => refused(err, 'g: restored content does not match'));
    // No data at all for a file that has some.
    await assert.rejects(writeWhole(d, 'h', entryOf('h', data), undefined), (err: unknown) => refused(err, 'h: restored content'));
    assert.deepEqual(await readdir(d), []);
  });

  it('a verified small file gets its bytes, mode, times and (as root) owner under its name, through a hidden temp name', async () => {
    const d = await fresh();
    const data = Buffer.from('alpha\n');
    await writeWhole(d, 'f', entryOf('f', data), data);
    await writeWhole(d, 'empty', entryOf('empty', Buffer.alloc(0)), undefined);
    await writeWhole(d, 'sparse', { ...entryOf('sparse', data), sha256: undefined }, data);
    assert.deepEqual((await readdir(d)).sort(), ['empty', 'f', 'sparse']);
    assert.deepEqual(await readFile(join(d, 'f')), data);
    assert.equal((await stat(join(d, 'empty'))).size, 0);
    const s = await stat(join(d, 'f'), { bigint: true });
    assert.equal(Number(s.mode & 0o7777n), 0o640);
    // futimes takes float seconds: nanoseconds come back within a microsecond.
    assert.ok(s.mtimeNs > 1600000000123455000n && s.mtimeNs < 1600000000123458000n, `mtime ${s.mtimeNs}`);
    assert.equal(Number(s.uid), isRoot ? 1234 : process.getuid!());
    // A time before 1970 is set as such, not as "now".
    await writeWhole(d, 'old', entryOf('old', data, { mtime: '-315619200000000000' }), data);
    assert.equal((await stat(join(d, 'old'))).mtimeMs, -315619200000);
  });

  // A large file's body is written inline, or on the write thread (hashed there, checked here): the same promises.
  for (const mode of ['inline', 'thread'] as const) {
    const on = () => (mode === 'thread' ? thread : undefined);
    it(`a large file is refused at the first byte past its size, on a wrong SHA-256, and its temp file is removed (${mode})`, async () => {
      const d = await fresh();
      const data = Buffer.alloc(300_000, 7);
      const past = new LargeFileWriter(d, 'big', entryOf('big', data), TREE, xattrs, on());
      await past.openFile();
      await past.data(data.subarray(0, 200_000));
      await assert.rejects(past.data(data.subarray(0, 100_001)), (err: unknown) => refused(err, "big: its content goes on past the file's recorded size of 300000 bytes"));
      assert.throws(() => past.hole(100_001), (err: unknown) => refused(err, 'past the file'));
      await past.abort();

      const wrong = new LargeFileWriter(d, 'big', entryOf('big', data), TREE, xattrs, on());
      await wrong.openFile();
      await wrong.data(Buffer.alloc(300_000, 8));
      await assert.rejects(wrong.finish(), (err: unknown) => refused(err, 'big: restored content does not match its recorded size and SHA-256'));
      await wrong.abort();

      const short = new LargeFileWriter(d, 'big', entryOf('big', data), TREE, xattrs, on());
      await short.openFile();
      await short.data(data.subarray(0, 299_999));
      await assert.rejects(short.finish(), (err: unknown) => refused(err, 'big: restored content does not match'));
      await short.abort();
      assert.deepEqual(await readdir(d), []);
    });

    it(`a large file comes back whole, in parts, with holes and zero runs left unwritten (${mode})`, async () => {
      const d = await fresh();
      const head = Buffer.alloc(100_000, 1);
      // Zero runs of any length, not only whole compare blocks of 64 KiB.
      const zeros = Buffer.alloc(1024 * 1024 + 100_000);
      const tail = Buffer.alloc(5000, 2);
      const whole = Buffer.concat([head, zeros, tail]);
      const writer = new LargeFileWriter(d, 'f', entryOf('f', whole), TREE, xattrs, on());
      await writer.openFile();
      // Until it is verified the file has a hidden temp name of its own, never its final one.
      assert.match((await readdir(d)).join(), /^\.kbrackup-[0-9a-f]{12}-[0-9a-z]+$/);
      for (const piece of [head, zeros, tail]) await writer.data(piece);
      await writer.finish();
      assert.equal(sha(await readFile(join(d, 'f'))), sha(whole));
      // The megabyte of zeros is a hole: well under its size is allocated.
      assert.ok((await stat(join(d, 'f'))).blocks * 512 < 512 * 1024, 'zero run written as a hole');

      const size = 3 * 1024 * 1024;
      const sparse = new LargeFileWriter(d, 's', { ...entryOf('s', head), sha256: undefined, size }, TREE, xattrs, on());
      await sparse.openFile();
      sparse.hole(1024 * 1024);
      await sparse.data(head);
      sparse.hole(size - 1024 * 1024 - head.length);
      await sparse.finish();
      const s = await stat(join(d, 's'));
      assert.equal(s.size, size, 'a trailing hole is kept by the size');
      assert.ok(s.blocks * 512 < 512 * 1024);
      assert.deepEqual((await readFile(join(d, 's'))).subarray(1024 * 1024, 1024 * 1024 + head.length), head);
      // Two pieces, a hole, a piece: gathered pieces are written where the first starts, the last at its own offset.
      const tail2 = Buffer.alloc(3000, 3);
      const gapped = new LargeFileWriter(d, 'g', { ...entryOf('g', head), sha256: undefined, size: head.length + 100_000 + tail2.length }, TREE, xattrs, on());
      await gapped.openFile();
      await gapped.data(head.subarray(0, 40_000));
      await gapped.data(head.subarray(40_000));
      gapped.hole(100_000);
      await gapped.data(tail2);
      await gapped.finish();
      assert.deepEqual(await readFile(join(d, 'g')), Buffer.concat([head, Buffer.alloc(100_000), tail2]));
      assert.equal(Number((await stat(join(d, 'f'))).mode & 0o7777), 0o640);
      assert.deepEqual((await readdir(d)).sort(), ['f', 'g', 's']);
    });
  }

  it('a file whose metadata cannot be applied is not left behind, under its name or a temp name', async () => {
    const d = await fresh();
    const data = Buffer.alloc(10, 1);
    // An attribute name longer than Linux takes (ERANGE): a real failure, not one skipped with a warning.
    const bad = entryOf('f', data, { xattrs: [[Buffer.from(`user.${'x'.repeat(300)}`), Buffer.from('v')]] });
    await assert.rejects(writeWhole(d, 'f', bad, data), /ERANGE/);
    const large = new LargeFileWriter(d, 'f', bad, TREE, xattrs);
    await large.openFile();
    await large.data(data);
    await assert.rejects(large.finish(), /ERANGE/);
    await large.abort();
    // Aborted before its temp file was opened (the first chunk's request failed): nothing to remove.
    await new LargeFileWriter(d, 'g', bad, TREE, xattrs).abort();
    assert.deepEqual(await readdir(d), []);
  });

  it('a symlink replaces what is at its name instead of writing through it; folders get their mode and time', async () => {
    const d = await fresh();
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    await symlink(elsewhere, join(d, 'l'));
    const link: SymlinkEntry = { type: 'symlink', name: 'l', mode: 0o777, uid: 0, gid: 0, mtime: '1500000000000000000', linkTarget: 'new-target' };
    writeSymlink(`${d}/l`, { ...link, uid: 1234, gid: 4321 }, xattrs);
    assert.equal(await readlink(join(d, 'l')), 'new-target');
    assert.equal((await lstat(join(d, 'l'))).uid, isRoot ? 1234 : process.getuid!());
    writeSymlink(`${d}/fresh`, link, xattrs);
    assert.equal(await readlink(join(d, 'fresh')), 'new-target');
    assert.equal((await lstat(join(d, 'l'))).mtimeMs, 1500000000000);
    assert.deepEqual(await readdir(elsewhere), []);
    await mkdir(join(d, 'sub'));
    const folder: DirEntry = { type: 'dir', name: 'sub', mode: 0o750, uid: 1234, gid: 4321, mtime: '1400000000000000000', tree: 'b'.repeat(64) };
    const fds = (await readdir('/proc/self/fd')).length;
    for (let i = 0; i < 20; i++) await applyDirMeta(`${d}/sub`, folder, xattrs);
    assert.ok((await readdir('/proc/self/fd')).length < fds + 10, 'each folder is closed again');
    const s = await stat(join(d, 'sub'));
    assert.equal(s.mode & 0o7777, 0o750);
    assert.equal(s.uid, isRoot ? 1234 : process.getuid!());
    assert.equal(s.mtimeMs, 1400000000000);
  });
});
