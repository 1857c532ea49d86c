import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { NotFoundError, TargetError } from '../src/errors.js';
import { FilesystemTarget } from '../src/targets/filesystem/filesystem.js';
import { S3Target } from '../src/targets/s3/s3.js';
import { SftpTarget } from '../src/targets/sftp/sftp.js';
import type { ObjectInfo, Target } from '../src/targets/target.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { startCuttingProxy } from './helpers/proxy.js';
import { startS3Server, type S3Server } from './helpers/s3server.js';
import { startSshd, type Sshd } from './helpers/sshd.js';
import { s3TestConfig, sftpTestConfig, sha256Of } from './helpers/targets.js';

const MiB = 1024 * 1024;
const LARGE = 100 * MiB;
const MANY = 1100;

/** A backend under test: a fresh, prepared target, plus optional checks only that backend can make. */
interface Backend {
  name: string;
  open(): Promise<Target>;
  /** Called after the large object is stored, e.g. to prove S3 took the multipart path. */
  checkLarge?(): Promise<void>;
  stop(): Promise<void>;
}

let scratch: string;
let large: { path: string; sha256: string };

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kbrackup-conformance-'));
  const path = join(scratch, 'large.bin');
  await writePseudoRandom(path, LARGE);
  large = { path, sha256: await sha256File(path) };
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Name and size of a listed or headed object, after checking it says when it was stored (prune's grace period needs it). */
function nameAndSize(info: ObjectInfo): ObjectInfo {
  const { modified, ...rest } = info;
  assert.ok(modified !== undefined && Math.abs(Date.now() - modified) < 10 * 60_000, `${info.name}: modified ${modified} is not a recent time`);
  return rest;
}

async function listAll(target: Target, dir: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of target.list(dir)) out.push(nameAndSize(info));
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

async function headOf(target: Target, name: string): Promise<ObjectInfo | undefined> {
  const info = await target.head(name);
  return info && nameAndSize(info);
}

async function read(target: Target, name: string, range?: { offset: number; length: number }): Promise<Buffer> {
  return buffer(await target.get(name, range));
}

/** The one suite every backend must pass. */
function conformance(backend: () => Promise<Backend>): void {
  let b: Backend;
  let target: Target;

  before(async () => {
    b = await backend();
    target = await b.open();
    await target.prepare();
  });

  after(async () => {
    await target?.close();
    await b?.stop();
  });

  it('stores bytes and reads them back whole', async () => {
    const data = randomBytes(1000);
    await target.put('config', { bytes: data });
    assert.deepEqual(await read(target, 'config'), data);
    assert.deepEqual(await headOf(target, 'config'), { name: 'config', size: 1000 });
  });

  it('stores an empty object', async () => {
    await target.put('empty', { bytes: new Uint8Array(0) });
    assert.equal((await read(target, 'empty')).length, 0);
    assert.deepEqual(await headOf(target, 'empty'), { name: 'empty', size: 0 });
  });

  it('stores from a file, with and without a known size', async () => {
    const file = join(scratch, `small-${b.name}.bin`);
    const data = randomBytes(70_000);
    await writeFile(file, data);
    await target.put('chunks/ab/from-file', { file });
    await target.put('chunks/ab/from-file-sized', { file, size: data.length });
    assert.deepEqual(await read(target, 'chunks/ab/from-file'), data);
    assert.deepEqual(await read(target, 'chunks/ab/from-file-sized'), data);
  });

  it('replaces an object that is written again', async () => {
    await target.put('locks/one', { bytes: Buffer.from('first version') });
    await target.put('locks/one', { bytes: Buffer.from('second') });
    assert.equal((await read(target, 'locks/one')).toString(), 'second');
    assert.deepEqual(await headOf(target, 'locks/one'), { name: 'locks/one', size: 6 });
  });

  it('reads byte ranges: start, middle, last byte, and zero length', async () => {
    const data = randomBytes(4096);
    await target.put('ranges', { bytes: data });
    assert.deepEqual(await read(target, 'ranges', { offset: 0, length: 10 }), data.subarray(0, 10));
    assert.deepEqual(await read(target, 'ranges', { offset: 1000, length: 2000 }), data.subarray(1000, 3000));
    assert.deepEqual(await read(target, 'ranges', { offset: 4095, length: 1 }), data.subarray(4095));
    assert.equal((await read(target, 'ranges', { offset: 17, length: 0 })).length, 0);
  });

  it('reports absent objects: head is undefined, get rejects with NotFoundError naming the object', async () => {
    assert.equal(await target.head('snapshots/none'), undefined);
    for (const range of [undefined, { offset: 0, length: 0 }, { offset: 5, length: 5 }]) {
      await assert.rejects(target.get('snapshots/none', range), (err: unknown) => {
        assert.ok(err instanceof NotFoundError, String(err));
        assert.equal(err.object, 'snapshots/none');
        assert.match(err.message, /snapshots\/none/);
        assert.equal(err.transient, false);
        return true;
      });
    }
  });

  it('keeps nested names and lists folders recursively, only below the folder asked for', async () => {
    await target.put('nest/a/b/c/d', { bytes: Buffer.from('deep') });
    await target.put('nest/a/x', { bytes: Buffer.from('x') });
    await target.put('nestling', { bytes: Buffer.from('not in nest/') });
    await target.put('nest2/y', { bytes: Buffer.from('not in nest/ either') });
    assert.deepEqual(await listAll(target, 'nest'), [
      { name: 'nest/a/b/c/d', size: 4 },
      { name: 'nest/a/x', size: 1 },
    ]);
    assert.deepEqual(await listAll(target, 'nest/a/b'), [{ name: 'nest/a/b/c/d', size: 4 }]);
    assert.deepEqual(await listAll(target, 'no-such-folder'), []);
    const everything = (await listAll(target, '')).map((o) => o.name);
    assert.ok(everything.includes('nest/a/b/c/d') && everything.includes('nestling') && everything.includes('config'), everything.join(','));
  });

  // Four subfolders of more than 256 each: Node 20's recursive opendir listed only 256 of a subfolder.
  it(`lists more than 1,000 objects (${MANY}, so S3 has to paginate), more than 256 in one subfolder`, async () => {
    const names = Array.from({ length: MANY }, (_, i) => `many/${(i % 4).toString(16).padStart(2, '0')}/${i}`);
    for (let i = 0; i < names.length; i += 200) {
      await Promise.all(names.slice(i, i + 200).map((name) => target.put(name, { bytes: Buffer.from(name) })));
    }
    const listed = await listAll(target, 'many');
    assert.equal(listed.length, MANY);
    assert.equal(new Set(listed.map((o) => o.name)).size, MANY);
    for (const o of listed) assert.equal(o.size, Buffer.byteLength(o.name), o.name);
  });

  it('deletes objects; deleting an absent one is fine; many deletes at once', async () => {
    await target.put('gone', { bytes: Buffer.from('bye') });
    await target.delete('gone');
    assert.equal(await target.head('gone'), undefined);
    await target.delete('gone');
    await target.delete('never/was/here');
    const names = ['d/aa/1', 'd/bb/2', 'd/cc/3', 'd/dd/4'];
    await Promise.all([...names, 'd/keep'].map((name) => target.put(name, { bytes: Buffer.from(name) })));
    await Promise.all([...names, 'd/absent'].map((name) => target.delete(name)));
    assert.deepEqual(await listAll(target, 'd'), [{ name: 'd/keep', size: 6 }]);
  });

  it(`stores a ${LARGE / MiB} MiB object byte-exactly, and reads a range across a part boundary`, async () => {
    await target.put('packs/big', { file: large.path });
    assert.deepEqual(await headOf(target, 'packs/big'), { name: 'packs/big', size: LARGE });
    assert.equal(await sha256Of(await target.get('packs/big')), large.sha256);
    await b.checkLarge?.();
    const offset = 8 * MiB - 100;
    const file = await open(large.path);
    const expected = Buffer.alloc(300);
    await file.read(expected, 0, 300, offset);
    await file.close();
    assert.deepEqual(await read(target, 'packs/big', { offset, length: 300 }), expected);
  });
}

// The backends run side by side (each waits mostly on its own server process), each one's tests in order.
describe('target conformance', { concurrency: 3 }, () => {
  describe('filesystem target', { concurrency: 1 }, () => {
    conformance(async () => {
      const root = await mkdtemp(join(tmpdir(), 'kbrackup-fs-'));
      return {
        name: 'filesystem',
        open: async () => new FilesystemTarget(join(root, 'repo')),
        stop: () => rm(root, { recursive: true, force: true }),
      };
    });

    it('makes a fan-out folder again when someone removed it after it was first made', async (t) => {
      const root = await mkdtemp(join(tmpdir(), 'kbrackup-fs-'));
      t.after(() => rm(root, { recursive: true, force: true }));
      const target = new FilesystemTarget(join(root, 'repo'));
      await target.put('chunks/ab/one', { bytes: Buffer.from('one') });
      await rm(join(root, 'repo', 'chunks', 'ab'), { recursive: true });
      await target.put('chunks/ab/two', { bytes: Buffer.from('two') });
      assert.equal(await readFile(join(root, 'repo', 'chunks', 'ab', 'two'), 'utf8'), 'two');
      await rm(join(root, 'repo', 'chunks', 'ab'), { recursive: true });
      const file = join(root, 'three');
      await writeFile(file, 'three');
      await target.put('chunks/ab/three', { file, consumable: true });
      assert.equal(await readFile(join(root, 'repo', 'chunks', 'ab', 'three'), 'utf8'), 'three');
    });

    it('a put whose source file is gone says so, rather than "no such object"', async (t) => {
      const root = await mkdtemp(join(tmpdir(), 'kbrackup-fs-'));
      t.after(() => rm(root, { recursive: true, force: true }));
      const target = new FilesystemTarget(join(root, 'repo'));
      const missing = join(root, 'vanished');
      await assert.rejects(target.put('data/x', { file: missing }), (err: unknown) => {
        assert.ok(err instanceof TargetError && !(err instanceof NotFoundError), String(err));
        assert.match(err.message, /data\/x: the file to store, .*vanished, is gone$/);
        return true;
      });
    });
  });

  describe('s3 target (s3rver)', { concurrency: 1 }, () => {
    conformance(async () => {
      const server: S3Server = await startS3Server(['kbrackup']);
      // Requests go through a pass-through proxy that counts them, to see which upload path was taken.
      const proxy = await startCuttingProxy(server.port, Infinity, 0, ['partNumber=']);
      const config = s3TestConfig({ ...server, endpoint: `http://127.0.0.1:${proxy.port}` }, { prefix: 'team/repo', multipartThreshold: 16 * MiB, partSize: 8 * MiB });
      return {
        name: 's3',
        open: async () => new S3Target(config),
        async checkLarge() {
          assert.equal(proxy.count('partNumber='), Math.ceil(LARGE / (8 * MiB)));
        },
        async stop() {
          await proxy.stop();
          await server.stop();
        },
      };
    });
  });

  describe('sftp target (OpenSSH sshd)', { concurrency: 1 }, () => {
    conformance(async () => {
      const sshd: Sshd = await startSshd();
      const config = await sftpTestConfig(sshd, join(sshd.dataDir, 'backups', 'repo'));
      return {
        name: 'sftp',
        open: async () => new SftpTarget(config),
        stop: () => sshd.stop(),
      };
    });
  });
});
