/**
 * src/platform on real files: the holes of sparse files (SEEK_DATA / SEEK_HOLE), extended
 * attributes that never follow symlinks, with Linux names as bytes, writeback started as files are
 * written (sync_file_range) and glibc's mmap threshold. No mocks: where a file system
 * lacks a feature, a real one that lacks it is used (procfs), and the build without the addon is the
 * same code with the addon switched off in a child process.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import {
  addonUnavailableReason,
  dataExtents,
  fgetXattr,
  flistXattrs,
  fsetXattr,
  getXattr,
  listXattrs,
  seekData,
  seekHole,
  setXattr,
  sparseSupported,
  startWriteback,
  SystemError,
  WriteBehind,
  xattrSupported,
  type Extent,
} from '../src/platform/index.js';

const INDEX = new URL('../src/platform/index.ts', import.meta.url).href;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** A file of `size` bytes that holds data only at the given extents (ftruncate, then writes). */
function sparseFile(path: string, size: number, extents: Extent[]): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    for (const { offset, length } of extents) writeSync(fd, Buffer.alloc(length, 0xa5), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}

function extentsOf(path: string, size: number): Extent[] {
  const fd = openSync(path, 'r');
  try {
    return [...dataExtents(fd, size)];
  } finally {
    closeSync(fd);
  }
}

function withFd<T>(path: string | Buffer, flags: string, fn: (fd: number) => T): T {
  const fd = openSync(path, flags);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** Asserts a SystemError with Node's fields, naming the file in its message. */
function systemError(code: string, syscall: string, path: string): (err: unknown) => true {
  return (err: unknown) => {
    assert.ok(err instanceof SystemError, `not a SystemError: ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.syscall, syscall);
    assert.equal(err.path, path);
    assert.ok(err.errno < 0);
    assert.ok(err.message.startsWith(`${code}: `) && err.message.includes(`${syscall} '${path}'`), err.message);
    return true;
  };
}

/** Runs `body` (an async function body of ESM, `m` being src/platform) in a child node; returns what it prints. */
function inChild(body: string, env: NodeJS.ProcessEnv = {}): unknown {
  const code = `const m = await import(${JSON.stringify(INDEX)});\n${body}`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return JSON.parse(out);
}

describe('platform: sparse files', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kbrackup-platform-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the addon is loaded in this build', () => {
    assert.equal(addonUnavailableReason, undefined);
    assert.equal(sparseSupported(), true);
    assert.equal(xattrSupported(), true);
  });

  it('a 1 GiB file with a few KiB of data gives exactly its data extents, well under a second', (t: TestContext) => {
    const path = join(dir, 'sparse.img');
    // Block-aligned data, so every file system reports exactly these ranges; the last one ends in the final block.
    const data: Extent[] = [
      { offset: 0, length: 4 * KiB },
      { offset: 64 * MiB, length: 12 * KiB },
      { offset: 512 * MiB + 256 * KiB, length: 4 * KiB },
      { offset: GiB - 4 * KiB, length: 4 * KiB },
    ];
    sparseFile(path, GiB, data);
    const start = performance.now();
    const found = extentsOf(path, GiB);
    const ms = performance.now() - start;
    assert.deepEqual(found, data);
    assert.ok(ms < 250, `dataExtents took ${ms.toFixed(2)} ms`);
    t.diagnostic(`dataExtents of a 1 GiB file with 4 extents (24 KiB): ${ms.toFixed(3)} ms`);
  });

  it('a file that is all hole has no extents, and a trailing hole is left out', () => {
    sparseFile(join(dir, 'hole'), 256 * MiB, []);
    assert.deepEqual(extentsOf(join(dir, 'hole'), 256 * MiB), []);
    sparseFile(join(dir, 'tail-hole'), 256 * MiB, [{ offset: 0, length: 8 * KiB }]);
    assert.deepEqual(extentsOf(join(dir, 'tail-hole'), 256 * MiB), [{ offset: 0, length: 8 * KiB }]);
  });

  it('a file without holes is one extent; an empty file none', () => {
    writeFileSync(join(dir, 'dense'), Buffer.alloc(3 * MiB + 5, 1));
    assert.deepEqual(extentsOf(join(dir, 'dense'), 3 * MiB + 5), [{ offset: 0, length: 3 * MiB + 5 }]);
    writeFileSync(join(dir, 'empty'), '');
    assert.deepEqual(extentsOf(join(dir, 'empty'), 0), []);
  });

  it('extents stop at the size asked for, and at the end of a file that shrank', () => {
    const path = join(dir, 'shrunk');
    sparseFile(path, 16 * MiB, [{ offset: 0, length: 4 * KiB }, { offset: 8 * MiB, length: 4 * KiB }]);
    assert.deepEqual(extentsOf(path, 8 * MiB + KiB), [{ offset: 0, length: 4 * KiB }, { offset: 8 * MiB, length: KiB }]);
    // As if the file shrank after its stat: the caller's size is larger than the file.
    assert.deepEqual(extentsOf(path, 32 * MiB), [{ offset: 0, length: 4 * KiB }, { offset: 8 * MiB, length: 4 * KiB }]);
  });

  it('seekData and seekHole: the next data or hole, -1 past the end', () => {
    const path = join(dir, 'seek');
    sparseFile(path, 4 * MiB, [{ offset: MiB, length: 4 * KiB }]);
    withFd(path, 'r', (fd) => {
      assert.equal(seekData(fd, 0), MiB);
      assert.equal(seekHole(fd, MiB), MiB + 4 * KiB);
      assert.equal(seekHole(fd, 0), 0);
      assert.equal(seekData(fd, MiB + 4 * KiB), -1, 'only a hole follows');
      assert.equal(seekHole(fd, 3 * MiB), 3 * MiB);
      assert.equal(seekHole(fd, 4 * MiB), -1, 'at the end');
    });
    assert.throws(() => seekData(1 << 30, 0), systemError('EBADF', 'lseek', `fd ${1 << 30}`));
    // NaN and fractions are refused, never rounded to another descriptor or offset.
    assert.throws(() => seekData(Number.NaN, 0), { code: 'EBADF' });
    withFd(path, 'r', (fd) => assert.throws(() => seekData(fd, 0.5), { code: 'EINVAL' }));
  });

  it('a file system that cannot tell holes (procfs: EINVAL) gives one extent', () => {
    withFd('/proc/self/status', 'r', (fd) => {
      assert.throws(() => seekData(fd, 0), systemError('EINVAL', 'lseek', `/proc/${process.pid}/status`));
      assert.deepEqual([...dataExtents(fd, 1000)], [{ offset: 0, length: 1000 }]);
    });
  });

  it('loads in a worker thread too, with a stack as small as the chunk thread has', async () => {
    const path = join(dir, 'worker.img');
    sparseFile(path, 64 * MiB, [{ offset: 32 * MiB, length: 4 * KiB }]);
    const script = join(dir, 'worker.mjs');
    writeFileSync(
      script,
      `import { parentPort, workerData } from 'node:worker_threads';
import { openSync } from 'node:fs';
const m = await import(${JSON.stringify(new URL('../dist/platform/index.js', import.meta.url).href)});
parentPort.postMessage([...m.dataExtents(openSync(workerData, 'r'), 64 * 1024 * 1024)]);`,
    );
    // Threads run the build, as the chunk thread does (dist/, from `npm run build`).
    const worker = new Worker(script, { workerData: path, resourceLimits: { stackSizeMb: 1 } });
    const message = await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
    await worker.terminate();
    assert.deepEqual(message, [{ offset: 32 * MiB, length: 4 * KiB }]);
  });
});

describe('platform: extended attributes', () => {
  let dir: string;
  let file: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kbrackup-platform-'));
    file = join(dir, 'file');
    writeFileSync(file, 'content');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('user.* set, get and list round-trip on a path', () => {
    assert.deepEqual(listXattrs(file), []);
    setXattr(file, 'user.comment', Buffer.from('hello'));
    setXattr(file, Buffer.from('user.empty'), Buffer.alloc(0));
    assert.deepEqual(getXattr(file, 'user.comment'), Buffer.from('hello'));
    assert.deepEqual(getXattr(file, 'user.empty'), Buffer.alloc(0));
    setXattr(file, 'user.comment', Buffer.from('replaced'));
    assert.deepEqual(getXattr(Buffer.from(file), Buffer.from('user.comment')), Buffer.from('replaced'));
    assert.deepEqual(listXattrs(file).map(String).sort(), ['user.comment', 'user.empty']);
  });

  it('names and values are any bytes, on a file whose name is not UTF-8', () => {
    const path = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x6e, 0xff, 0xfe, 0x0a, 0xc3, 0x28])]);
    writeFileSync(path, '');
    const name = Buffer.concat([Buffer.from('user.'), Buffer.from([0x80, 0xff, 0x01, 0x0a, 0x20, 0xe2, 0x82])]);
    const value = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    setXattr(path, name, value);
    assert.deepEqual(listXattrs(path), [name]);
    assert.deepEqual(getXattr(path, name), value);
    // The same bytes decoded as UTF-8 are another name: nothing was lost on the way.
    assert.throws(() => getXattr(path, name.toString('utf8')), systemError('ENODATA', 'lgetxattr', path.toString('utf8')));
  });

  it('an absent attribute is ENODATA, a missing file ENOENT, both naming the path', () => {
    assert.throws(() => getXattr(file, 'user.absent'), systemError('ENODATA', 'lgetxattr', file));
    assert.throws(() => getXattr(file, 'user.absent'), /\(user\.absent\)$/);
    const missing = join(dir, 'missing');
    assert.throws(() => listXattrs(missing), systemError('ENOENT', 'llistxattr', missing));
    assert.throws(() => setXattr(missing, 'user.a', Buffer.from('1')), systemError('ENOENT', 'lsetxattr', missing));
  });

  it('symlinks are never followed', () => {
    const target = join(dir, 'target');
    writeFileSync(target, '');
    setXattr(target, 'user.on-target', Buffer.from('t'));
    const link = join(dir, 'link');
    symlinkSync(target, link);
    assert.deepEqual(listXattrs(link), [], "the link's own attributes, not its target's");
    assert.throws(() => getXattr(link, 'user.on-target'), systemError('ENODATA', 'lgetxattr', link));
    // Linux keeps user.* off symlinks: a call that followed the link would have succeeded on the target.
    assert.throws(() => setXattr(link, 'user.x', Buffer.from('1')), systemError('EPERM', 'lsetxattr', link));
    assert.deepEqual(listXattrs(target).map(String), ['user.on-target']);
  });

  it('fd variants: restore sets attributes on its temp file, then renames it', () => {
    const temp = join(dir, '.restore-temp');
    const final = join(dir, 'restored');
    withFd(temp, 'wx', (fd) => {
      writeSync(fd, 'restored content');
      fsetXattr(fd, 'user.origin', Buffer.from('backup'));
      fsetXattr(fd, Buffer.from('user.\xff', 'latin1'), Buffer.from([0, 0, 0]));
      assert.deepEqual(fgetXattr(fd, 'user.origin'), Buffer.from('backup'));
      assert.deepEqual(flistXattrs(fd).map((n) => n.toString('latin1')).sort(), ['user.origin', 'user.\xff']);
      assert.throws(() => fgetXattr(fd, 'user.absent'), systemError('ENODATA', 'fgetxattr', temp));
    });
    renameSync(temp, final);
    assert.deepEqual(getXattr(final, 'user.origin'), Buffer.from('backup'));
    assert.throws(() => fgetXattr(1 << 30, 'user.origin'), systemError('EBADF', 'fgetxattr', `fd ${1 << 30}`));
  });

  it('a file system without user xattrs gives ENOTSUP, other refusals their own code', (t: TestContext) => {
    // procfs has no user.* namespace on any kernel (tmpfs gained one in Linux 6.6).
    assert.throws(() => setXattr('/proc/self/status', 'user.x', Buffer.from('1')), systemError('ENOTSUP', 'lsetxattr', '/proc/self/status'));
    assert.throws(() => setXattr('/proc/self/status', 'user.x', Buffer.from('1')), /ENOTSUP: operation not supported, lsetxattr/);
    // Device files take no user.* attributes: EPERM, a refusal, not a missing feature.
    assert.throws(() => setXattr('/dev/null', 'user.x', Buffer.from('1')), systemError('EPERM', 'lsetxattr', '/dev/null'));
    assert.throws(() => setXattr(file, 'user.big', Buffer.alloc(64 * KiB + 1)), systemError('E2BIG', 'lsetxattr', file));
    assert.throws(() => getXattr(file, `user.${'n'.repeat(251)}`), systemError('ERANGE', 'lgetxattr', file));
    const long = `${dir}/${'d/'.repeat(2100)}`;
    assert.throws(() => listXattrs(long), systemError('ENAMETOOLONG', 'llistxattr', long));
    t.diagnostic(`${tmpdir()} is ${execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', tmpdir()], { encoding: 'utf8' }).trim()}`);
  });

  it('arguments that would name another file or attribute are TypeErrors', () => {
    assert.throws(() => getXattr(`${file}\0x`, 'user.a'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => getXattr(file, Buffer.from('user.a\0b')), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => setXattr(file, 'user.a', 'text' as unknown as Buffer), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('values and name lists larger than 4 KiB (past the stack buffer) come back whole', () => {
    // ext4 keeps at most one block of attributes per inode; tmpfs takes 64 KiB values.
    const big = Buffer.from(Array.from({ length: 64 * KiB }, (_, i) => (i * 7) % 251));
    const where = [tmpdir(), '/dev/shm'].find((d) => {
      const probe = join(d, `kbrackup-xattr-probe-${process.pid}`);
      writeFileSync(probe, '');
      try {
        setXattr(probe, 'user.big', big);
        return true;
      } catch {
        return false;
      } finally {
        rmSync(probe);
      }
    });
    assert.ok(where, `neither ${tmpdir()} nor /dev/shm holds a 64 KiB attribute value`);
    const path = join(where, `kbrackup-xattr-big-${process.pid}`);
    writeFileSync(path, '');
    try {
      setXattr(path, 'user.big', big);
      assert.deepEqual(getXattr(path, 'user.big'), big);
      const names = Array.from({ length: 40 }, (_, i) => Buffer.from(`user.${String(i).padStart(2, '0')}${'n'.repeat(200)}`));
      for (const name of names) setXattr(path, name, Buffer.from('v'));
      assert.deepEqual(listXattrs(path).sort(Buffer.compare), [...names, Buffer.from('user.big')].sort(Buffer.compare));
      assert.deepEqual(withFd(path, 'r', (fd) => fgetXattr(fd, 'user.big')), big);
    } finally {
      rmSync(path);
    }
  });

  it('listXattrs on 10,000 files: the per-call cost', (t: TestContext) => {
    const many = join(dir, 'many');
    mkdirSync(many);
    const paths = Array.from({ length: 10_000 }, (_, i) => join(many, `f${i}`));
    paths.forEach((p, i) => {
      writeFileSync(p, '');
      if (i % 2) setXattr(p, 'user.tag', Buffer.from(String(i)));
    });
    const perCall = (fn: (p: string) => void): number => {
      const start = performance.now();
      for (const p of paths) fn(p);
      return ((performance.now() - start) * 1000) / paths.length;
    };
    let attributes = 0;
    const us = perCall((p) => (attributes += listXattrs(p).length));
    assert.equal(attributes, 5000);
    assert.ok(us < 50, `listXattrs took ${us.toFixed(2)} us per call`);
    t.diagnostic(`listXattrs: ${us.toFixed(2)} us per call over 10,000 files (half with one attribute); lstatSync ${perCall((p) => lstatSync(p)).toFixed(2)} us`);
  });
});

describe('platform: memory advice', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kbrackup-platform-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('startWriteback on a written file returns 0, for a range and to the end; errors come back as negative errno', () => {
    const path = join(dir, 'written.bin');
    withFd(path, 'w', (fd) => {
      writeSync(fd, Buffer.alloc(3 * MiB, 0x5a));
      assert.equal(startWriteback(fd, 0, MiB), 0);
      assert.equal(startWriteback(fd, MiB, 0), 0);
      assert.equal(startWriteback(fd, 0, -1), -constants.errno.EINVAL);
    });
    const closed = openSync(path, 'r');
    closeSync(closed);
    assert.equal(startWriteback(closed, 0, 0), -constants.errno.EBADF);
    // A descriptor that is not a file: sync_file_range refuses pipes.
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    withFd(fifo, 'r+', (fd) => assert.equal(startWriteback(fd, 0, 0), -constants.errno.ESPIPE));
  });

  it('WriteBehind keeps the file intact and never throws, even on a descriptor closed under it', () => {
    const path = join(dir, 'behind.bin');
    const data = Buffer.alloc(5 * MiB + 123, 0xc3);
    const fd = openSync(path, 'w');
    const behind = new WriteBehind(fd);
    for (let at = 0; at < data.length; at += 256 * KiB) {
      const n = Math.min(256 * KiB, data.length - at);
      writeSync(fd, data, at, n, at);
      behind.written(at + n);
    }
    closeSync(fd);
    assert.doesNotThrow(() => behind.written(data.length + 2 * MiB));
    assert.ok(readFileSync(path).equals(data));
  });

  it('mmapLargeAllocations applies on glibc', () => {
    const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime;
    // In a child: the threshold is process-wide, and this one's allocations should stay as they are.
    assert.equal(inChild('console.log(JSON.stringify(m.mmapLargeAllocations()));'), glibc !== undefined);
  });
});

describe('platform: a build without the addon', () => {
  it('imports, reports it, reads files as one extent, and xattr calls throw a typed error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kbrackup-platform-'));
    try {
      const path = join(dir, 'sparse.img');
      sparseFile(path, 64 * MiB, [{ offset: MiB, length: 4 * KiB }]);
      const report = inChild(
        `const { openSync } = await import('node:fs');
const fd = openSync(${JSON.stringify(path)}, 'r');
const thrown = (fn) => { try { fn(); return null; } catch (e) { return { name: e.name, code: e.code, message: e.message, exitCode: e.exitCode }; } };
console.log(JSON.stringify({
  reason: m.addonUnavailableReason, sparse: m.sparseSupported(), xattr: m.xattrSupported(),
  extents: [...m.dataExtents(fd, 64 * 1024 * 1024)],
  list: thrown(() => m.listXattrs(${JSON.stringify(path)})), fset: thrown(() => m.fsetXattr(fd, 'user.a', Buffer.from('1'))), seek: thrown(() => m.seekHole(fd, 0)),
  writeback: m.startWriteback(fd, 0, 0), behind: thrown(() => new m.WriteBehind(fd).written(8 * 1024 * 1024)), mmap: m.mmapLargeAllocations(),
}));`,
        { KBRACKUP_TEST_NO_ADDON: '1' },
      );
      const unavailable = (what: string) => ({ name: 'NativeUnavailableError', code: 'ERR_KBRACKUP_NO_ADDON', message: `${what} not available in this build: disabled by KBRACKUP_TEST_NO_ADDON`, exitCode: 1 });
      assert.deepEqual(report, {
        reason: 'disabled by KBRACKUP_TEST_NO_ADDON',
        sparse: false,
        xattr: false,
        extents: [{ offset: 0, length: 64 * MiB }],
        list: unavailable('extended attributes are'),
        fset: unavailable('extended attributes are'),
        seek: unavailable('SEEK_DATA / SEEK_HOLE is'),
        writeback: -constants.errno.ENOSYS,
        behind: null,
        mmap: false,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
