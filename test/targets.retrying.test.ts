import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { NotFoundError, TargetError } from '../src/errors.js';
import { FilesystemTarget } from '../src/targets/filesystem/filesystem.js';
import { RetryingTarget, type RetryOptions } from '../src/targets/retrying.js';
import type { ByteRange, ObjectInfo, PutSource, Target } from '../src/targets/target.js';

type Op = 'put' | 'get' | 'head' | 'list' | 'delete' | 'prepare';

/**
 * A real filesystem target made to fail: each operation throws `failures[op]` transient errors (or the
 * given error) before it starts working, and counts its calls.
 */
class FailingTarget implements Target {
  readonly description: string;
  readonly calls: Record<Op, number> = { put: 0, get: 0, head: 0, list: 0, delete: 0, prepare: 0 };

  constructor(
    private readonly inner: Target,
    private readonly failures: Partial<Record<Op, number>>,
    private readonly error: () => Error = () => new TargetError(inner.description, 'x', 'connection reset', { transient: true }),
  ) {
    this.description = inner.description;
  }

  private trip(op: Op): void {
    this.calls[op]++;
    const left = this.failures[op] ?? 0;
    if (left > 0) {
      this.failures[op] = left - 1;
      throw this.error();
    }
  }

  async put(name: string, source: PutSource): Promise<void> {
    this.calls.put++;
    if ((this.failures.put ?? 0) > 0) {
      this.failures.put = (this.failures.put ?? 0) - 1;
      // Fail half-way through reading the file, as a dropped upload would.
      if ('file' in source) await new Promise((resolve) => createReadStream(source.file, { end: 9 }).on('data', resolve));
      throw this.error();
    }
    return this.inner.put(name, source);
  }

  async get(name: string, range?: ByteRange): Promise<Readable> {
    this.trip('get');
    return this.inner.get(name, range);
  }

  async head(name: string): Promise<ObjectInfo | undefined> {
    this.trip('head');
    return this.inner.head(name);
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    this.trip('list');
    let first = true;
    for await (const info of this.inner.list(dir)) {
      yield info;
      // A failure after objects were handed out: not retried, or they would be listed twice.
      if (first && this.failures.list === -1) throw this.error();
      first = false;
    }
  }

  async delete(name: string): Promise<void> {
    this.trip('delete');
    return this.inner.delete(name);
  }

  async prepare(): Promise<void> {
    this.trip('prepare');
    return this.inner.prepare();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

let root: string;
let plain: FilesystemTarget;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'kbrackup-retrying-'));
  plain = new FilesystemTarget(join(root, 'repo'));
  await plain.prepare();
  await plain.put('existing', { bytes: Buffer.from('hello') });
  await plain.put('dir/a', { bytes: Buffer.from('a') });
  await plain.put('dir/b', { bytes: Buffer.from('bb') });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

function retrying(inner: Target, options: Partial<RetryOptions> = {}): { target: RetryingTarget; retries: { attempt: number; delayMs: number }[] } {
  const retries: { attempt: number; delayMs: number }[] = [];
  const target = new RetryingTarget(inner, {
    retries: 3,
    baseDelayMs: 4,
    maxDelayMs: 10,
    onRetry: (_err, attempt, delayMs) => retries.push({ attempt, delayMs }),
    ...options,
  });
  return { target, retries };
}

describe('retrying target', () => {
  it('retries transient failures with capped exponential backoff and then succeeds', async () => {
    const failing = new FailingTarget(plain, { get: 2, head: 2, delete: 2, prepare: 2 });
    const { target, retries } = retrying(failing);
    assert.equal((await buffer(await target.get('existing'))).toString(), 'hello');
    assert.equal((await target.head('existing'))?.size, 5);
    await target.prepare();
    await target.delete('absent');
    assert.deepEqual(failing.calls, { put: 0, get: 3, head: 3, list: 0, delete: 3, prepare: 3 });
    assert.deepEqual(
      retries.map((r) => r.attempt),
      [1, 2, 1, 2, 1, 2, 1, 2],
    );
    for (const r of retries) assert.ok(r.delayMs >= 0 && r.delayMs <= (r.attempt === 1 ? 4 : 8), JSON.stringify(r));
  });

  it('re-reads the source file when a put is retried', async () => {
    const file = join(root, 'source.bin');
    const data = Buffer.alloc(256 * 1024, 7);
    await writeFile(file, data);
    const failing = new FailingTarget(plain, { put: 2 });
    const { target, retries } = retrying(failing);
    await target.put('chunks/retried', { file });
    assert.equal(failing.calls.put, 3);
    assert.equal(retries.length, 2);
    assert.deepEqual(await readFile(join(root, 'repo', 'chunks', 'retried')), data);
  });

  it('does not retry permanent errors', async () => {
    const failing = new FailingTarget(plain, { head: 5 }, () => new TargetError(plain.description, 'existing', 'access denied'));
    const { target, retries } = retrying(failing);
    await assert.rejects(target.head('existing'), /access denied/);
    assert.equal(failing.calls.head, 1);
    assert.equal(retries.length, 0);
    const missing = new FailingTarget(plain, {});
    await assert.rejects(retrying(missing).target.get('absent'), NotFoundError);
    assert.equal(missing.calls.get, 1);
  });

  it('does not retry errors that are not target errors (bugs)', async () => {
    const failing = new FailingTarget(plain, { head: 5 }, () => new TypeError('boom'));
    await assert.rejects(retrying(failing).target.head('existing'), TypeError);
    assert.equal(failing.calls.head, 1);
  });

  it('gives up after the configured number of retries and says so', async () => {
    const failing = new FailingTarget(plain, { head: 100 });
    const { target, retries } = retrying(failing, { retries: 2 });
    await assert.rejects(target.head('existing'), (err: unknown) => {
      assert.ok(err instanceof TargetError);
      assert.equal(err.transient, true);
      assert.equal(err.message, `${plain.description} x: connection reset (gave up after 3 attempts)`);
      return true;
    });
    assert.equal(failing.calls.head, 3);
    assert.equal(retries.length, 2);
  });

  it('retries a listing that fails before its first object, never one that fails later', async () => {
    const early = new FailingTarget(plain, { list: 1 });
    const names: string[] = [];
    for await (const info of retrying(early).target.list('dir')) names.push(info.name);
    assert.deepEqual(names.sort(), ['dir/a', 'dir/b']);
    assert.equal(early.calls.list, 2);

    const late = new FailingTarget(plain, { list: -1 });
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const info of retrying(late).target.list('dir')) seen.push(info.name);
    }, /connection reset/);
    assert.equal(seen.length, 1);
    assert.equal(late.calls.list, 1);
  });

  it('stops waiting when the job is cancelled', async () => {
    const failing = new FailingTarget(plain, { head: 100 });
    const controller = new AbortController();
    const { target } = retrying(failing, { retries: 10, baseDelayMs: 60_000, maxDelayMs: 60_000, signal: controller.signal });
    const started = Date.now();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(target.head('existing'), /connection reset/);
    assert.ok(Date.now() - started < 5_000);
    assert.equal(failing.calls.head, 1);
  });
});
