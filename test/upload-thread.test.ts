import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { text } from 'node:stream/consumers';
import type * as Errors from '../src/errors.js';
import { FilesystemTarget } from '../src/targets/filesystem/filesystem.js';
import type * as ThreadModule from '../src/targets/upload-thread.js';
import { threadWanted } from '../src/util/memory-limit.js';
import { targetOptions } from './helpers/targets.js';

// The thread runs compiled code (dist/targets/upload-worker.js), as a backup does: load that build.
const { UploadThreadTarget, UPLOAD_THREAD_MIN_MEMORY } = (await import(new URL('../dist/targets/upload-thread.js', import.meta.url).href)) as typeof ThreadModule;
const { TargetError } = (await import(new URL('../dist/errors.js', import.meta.url).href)) as typeof Errors;

const MiB = 1024 * 1024;
const { onRetry: _onRetry, signal: _signal, uploadThread: _uploadThread, ...plainOptions } = targetOptions();

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kbrackup-upload-thread-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('upload thread', () => {
  test('file puts go through the thread, everything else through the main connection', async () => {
    const repo = join(dir, 'repo');
    const target = new UploadThreadTarget(new FilesystemTarget(repo), { kind: 'filesystem', path: repo }, plainOptions);
    try {
      const file = join(dir, 'object');
      await writeFile(file, 'uploaded from the thread');
      await Promise.all([target.put('data/one', { file }), target.put('data/two', { bytes: Buffer.from('stored inline') })]);
      assert.equal(await readFile(join(repo, 'data', 'one'), 'utf8'), 'uploaded from the thread');
      assert.equal(await text(await target.get('data/two')), 'stored inline');
      assert.deepEqual((await target.head('data/one'))?.size, 24);
    } finally {
      await target.close();
    }
  });

  test('a failed put comes back as the TargetError the thread saw: target, object, whether to retry', async () => {
    const repo = join(dir, 'refusing');
    const target = new UploadThreadTarget(new FilesystemTarget(repo), { kind: 'filesystem', path: repo }, plainOptions);
    try {
      await assert.rejects(target.put('data/missing', { file: join(dir, 'no-such-file') }), (err: unknown) => {
        assert.ok(err instanceof TargetError, String(err));
        assert.equal(err.object, 'data/missing');
        assert.equal(err.transient, false);
        assert.match(err.message, /^file:\/\/.*refusing data\/missing: ./);
        return true;
      });
    } finally {
      await target.close();
    }
  });

  test('a thread that cannot start fails puts with a clear error and still closes', async () => {
    const repo = join(dir, 'unused');
    // No SFTP key: the thread's target refuses to open, as a misconfiguration would.
    const target = new UploadThreadTarget(new FilesystemTarget(repo), { kind: 'sftp', user: 'backup', host: '127.0.0.1', port: 1, path: '/repo' }, { ...plainOptions, sftpKey: '' });
    const file = join(dir, 'pending');
    await writeFile(file, 'never sent');
    await assert.rejects(target.put('data/x', { file }), /the upload thread failed: SFTP needs a private key/);
    await assert.rejects(target.put('data/y', { file }), /the upload thread failed/);
    await target.close();
  });

  test('auto runs it only without a memory limit or with at least 256 MiB; on and off are obeyed', () => {
    assert.equal(UPLOAD_THREAD_MIN_MEMORY, 256 * MiB);
    assert.equal(threadWanted('auto', UPLOAD_THREAD_MIN_MEMORY, 0), true);
    assert.equal(threadWanted('auto', UPLOAD_THREAD_MIN_MEMORY, 512 * MiB), true);
    assert.equal(threadWanted('auto', UPLOAD_THREAD_MIN_MEMORY, 256 * MiB), true);
    assert.equal(threadWanted('auto', UPLOAD_THREAD_MIN_MEMORY, 128 * MiB), false);
    assert.equal(threadWanted('on', UPLOAD_THREAD_MIN_MEMORY, 64 * MiB), true);
    assert.equal(threadWanted('off', UPLOAD_THREAD_MIN_MEMORY, 0), false);
  });
});
