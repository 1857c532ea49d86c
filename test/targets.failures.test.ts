import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ConfigError, TargetError } from '../src/errors.js';
import { parseLocation } from '../src/targets/location.js';
import { openTarget } from '../src/targets/open.js';
import { RetryingTarget } from '../src/targets/retrying.js';
import { s3Config } from '../src/targets/s3/config.js';
import { S3Target } from '../src/targets/s3/s3.js';
import { sftpConfig } from '../src/targets/sftp/config.js';
import { SftpTarget } from '../src/targets/sftp/sftp.js';
import type { Target } from '../src/targets/target.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { startCuttingProxy } from './helpers/proxy.js';
import { startS3Server, type S3Server } from './helpers/s3server.js';
import { startSshd, type Sshd } from './helpers/sshd.js';
import { s3TestConfig, sftpTestConfig, sha256Of, targetOptions } from './helpers/targets.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

let s3: S3Server;
let sshd: Sshd;
let scratch: string;
let upload: { path: string; sha256: string };

before(async () => {
  [s3, sshd, scratch] = await Promise.all([startS3Server(['kbrackup']), startSshd(), mkdtemp(join(tmpdir(), 'kbrackup-failures-'))]);
  const path = join(scratch, 'upload.bin');
  await writePseudoRandom(path, 12 * MiB);
  upload = { path, sha256: await sha256File(path) };
});

after(async () => {
  await Promise.all([s3?.stop(), sshd?.stop()]);
  await rm(scratch, { recursive: true, force: true });
});

/** What a test opened (targets, proxies, servers); closed after each test, even a failed one, so nothing keeps the process alive. */
const opened: (() => Promise<void>)[] = [];

function track<T>(thing: T, close: (thing: T) => Promise<void>): T {
  opened.push(() => close(thing));
  return thing;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((close) => close().catch(() => undefined)));
});

/** A retrying target with tiny backoff that records its retries, as openTarget would build it. */
function retrying(inner: Target, retries = 3): { target: Target; attempts: number[] } {
  track(inner, (t) => t.close());
  const attempts: number[] = [];
  return { target: new RetryingTarget(inner, { retries, baseDelayMs: 5, maxDelayMs: 20, onRetry: (_e, attempt) => attempts.push(attempt) }), attempts };
}

/** Asserts a permanent TargetError whose one-line message names the target and matches `pattern`. */
function permanent(target: Target, pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof TargetError, String(err));
    assert.equal(err.transient, false, err.message);
    assert.ok(err.message.startsWith(target.description), err.message);
    assert.match(err.message, pattern);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  };
}

/** An HTTP server that answers every request with one S3 error, as S3 would for bad credentials or overload. */
async function startErrorServer(status: number, code: string): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'application/xml' });
      res.end(req.method === 'HEAD' ? undefined : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code} happened</Message></Error>`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** A local port nobody listens on. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 1));
    });
  });
}

describe('s3 failures', () => {
  it('wrong access key: permanent, not retried, message names target and object', async () => {
    const { target, attempts } = retrying(new S3Target(s3TestConfig({ ...s3, accessKeyId: 'NOT-A-KEY' })));
    await assert.rejects(target.put('config', { bytes: Buffer.from('x') }), permanent(target, / config: the access key id is not known.*AWS_ACCESS_KEY_ID/));
    assert.deepEqual(attempts, []);
  });

  // s3rver does not check SigV4 signatures, so a wrong secret is played by a server that answers like S3 does.
  for (const [status, code, pattern, transient] of [
    [403, 'SignatureDoesNotMatch', /the request signature does not match; check AWS_SECRET_ACCESS_KEY/, false],
    [403, 'AccessDenied', /access denied to bucket "kbrackup"/, false],
    [403, 'ExpiredToken', /session token is expired/, false],
    [503, 'SlowDown', /SlowDown \(HTTP 503\).*\(gave up after 3 attempts\)/, true],
    [500, 'InternalError', /InternalError \(HTTP 500\).*\(gave up after 3 attempts\)/, true],
  ] as const) {
    it(`S3 error ${code} (HTTP ${status}) is ${transient ? 'retried' : 'permanent'}, with a clear message`, async () => {
      const server = track(await startErrorServer(status, code), (x) => x.stop());
      const { target, attempts } = retrying(new S3Target(s3TestConfig({ ...s3, endpoint: server.endpoint, secretAccessKey: 'wrong-secret-value' })), 2);
      await assert.rejects(target.put('config', { bytes: Buffer.from('x') }), (err: unknown) => {
        assert.ok(err instanceof TargetError);
        assert.equal(err.transient, transient);
        assert.ok(err.message.startsWith(`${target.description} config: `), err.message);
        assert.match(err.message, pattern);
        assert.doesNotMatch(err.message, /wrong-secret-value/);
        return true;
      });
      assert.deepEqual(attempts, transient ? [1, 2] : []);
      // HEAD answers carry no body: a 403 can only be reported as access denied.
      if (status === 403) await assert.rejects(target.head('config'), permanent(target, /access denied to bucket "kbrackup"/));
    });
  }

  it('missing bucket: init explains, writes fail at once', async () => {
    const { target, attempts } = retrying(new S3Target(s3TestConfig(s3, { bucket: 'no-such-bucket' })));
    await assert.rejects(target.prepare(), permanent(target, /bucket "no-such-bucket" does not exist; create it first/));
    await assert.rejects(target.put('config', { bytes: Buffer.from('x') }), permanent(target, /bucket "no-such-bucket" does not exist/));
    assert.deepEqual(attempts, []);
  });

  it('unreachable endpoint: transient, retried a bounded number of times, then a clear message', async () => {
    const port = await closedPort();
    const { target, attempts } = retrying(new S3Target(s3TestConfig({ ...s3, endpoint: `http://127.0.0.1:${port}` })), 2);
    const started = Date.now();
    await assert.rejects(target.put('config', { bytes: Buffer.from('x') }), (err: unknown) => {
      assert.ok(err instanceof TargetError);
      assert.equal(err.transient, true);
      assert.equal(err.message, `${target.description} config: connection to http://127.0.0.1:${port} failed (ECONNREFUSED) (gave up after 3 attempts)`);
      return true;
    });
    assert.deepEqual(attempts, [1, 2]);
    assert.ok(Date.now() - started < 5_000);
  });

  for (const [kind, threshold] of [
    ['single PUT', 64 * MiB],
    ['multipart', 5 * MiB],
  ] as const) {
    it(`a connection dropped mid-upload (${kind}) is retried and the object is byte-exact`, async () => {
      const proxy = track(await startCuttingProxy(s3.port, 3 * MiB), (p) => p.stop());
      const config = s3TestConfig(s3, { prefix: `dropped-${threshold}`, multipartThreshold: threshold, partSize: 5 * MiB });
      const { target, attempts } = retrying(new S3Target({ ...config, endpoint: `http://127.0.0.1:${proxy.port}` }));
      await target.put('packs/ab/dropped', { file: upload.path });
      assert.equal(proxy.cuts, 1);
      assert.ok(attempts.length >= 1);
      const direct = track(new S3Target(config), (t) => t.close());
      assert.equal(await sha256Of(await direct.get('packs/ab/dropped')), upload.sha256);
    });
  }

  it('rejects bad server-side encryption and endpoint settings before connecting', () => {
    const location = { bucket: 'b', prefix: '' };
    assert.throws(() => s3Config(location, targetOptions({ s3Sse: 'rot13' })), (err: unknown) => err instanceof ConfigError && /--s3-sse .*AES256, aws:kms/.test(err.message));
    assert.throws(() => s3Config(location, targetOptions({ s3Sse: 'AES256', s3SseKmsKeyId: 'k' })), /--s3-sse-kms-key-id .*needs --s3-sse aws:kms/);
    assert.throws(() => s3Config(location, targetOptions({ s3Endpoint: 'minio:9000' })), /--s3-endpoint .*http/);
    assert.throws(() => s3Config(location, targetOptions({ s3Endpoint: 'ftp://user:secret@minio' })), (err: unknown) => !/secret/.test(String(err)));
  });
});

describe('s3 options', () => {
  it('sends upload checksums only where required by custom endpoints, unless AWS_REQUEST_CHECKSUM_CALCULATION says otherwise', () => {
    const location = { bucket: 'b', prefix: 'p' };
    assert.equal(s3Config(location, targetOptions(), {}).requestChecksums, undefined);
    assert.equal(s3Config(location, targetOptions({ s3Endpoint: 'http://minio:9000' }), {}).requestChecksums, 'WHEN_REQUIRED');
    const viaEnv = s3Config(location, targetOptions(), { AWS_ENDPOINT_URL_S3: 'https://s3.example.net' });
    assert.deepEqual([viaEnv.endpoint, viaEnv.requestChecksums], ['https://s3.example.net', 'WHEN_REQUIRED']);
    const chosen = s3Config(location, targetOptions({ s3Endpoint: 'http://minio:9000' }), { AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_SUPPORTED' });
    assert.equal(chosen.requestChecksums, undefined);
  });

  it('sends storage class and server-side encryption headers on single and multipart uploads', async () => {
    const needles = ['x-amz-storage-class: STANDARD_IA', 'x-amz-server-side-encryption: aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id: alias/backups'];
    const proxy = track(await startCuttingProxy(s3.port, Infinity, 0, needles), (p) => p.stop());
    const config = s3TestConfig({ ...s3, endpoint: `http://127.0.0.1:${proxy.port}` }, { prefix: 'options', multipartThreshold: 8 * MiB, partSize: 5 * MiB });
    const target = track(new S3Target({ ...config, storageClass: 'STANDARD_IA', sse: 'aws:kms', sseKmsKeyId: 'alias/backups' }), (t) => t.close());
    await target.put('small', { bytes: Buffer.from('x') });
    await target.put('large', { file: upload.path });
    // Once on the PUT, once on CreateMultipartUpload; parts and completion carry none.
    for (const needle of needles) assert.equal(proxy.count(needle), 2, needle);
  });
});

describe('sftp failures', () => {
  const location = () => ({ user: sshd.user, host: sshd.host, port: sshd.port, path: join(sshd.dataDir, 'failures') });

  async function refused(options: Parameters<typeof targetOptions>[0], pattern: RegExp): Promise<void> {
    const inner = new SftpTarget(await sftpConfig(location(), targetOptions({ sftpKey: sshd.userKey, ...options })));
    const { target, attempts } = retrying(inner);
    await assert.rejects(target.prepare(), permanent(target, pattern));
    assert.deepEqual(attempts, []);
  }

  async function accepted(options: Parameters<typeof targetOptions>[0]): Promise<void> {
    const target = track(new SftpTarget(await sftpConfig(location(), targetOptions({ sftpKey: sshd.userKey, ...options }))), (t) => t.close());
    await target.prepare();
    await target.put('probe', { bytes: Buffer.from('ok') });
    assert.equal((await target.head('probe'))?.size, 2);
  }

  it('says which flag or variable to set when key or host key is not configured', async () => {
    await assert.rejects(sftpConfig(location(), targetOptions({ sftpKnownHosts: sshd.knownHosts })), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /--sftp-key FILE \(KBRACKUP_SFTP_KEY\)/);
      return true;
    });
    await assert.rejects(
      sftpConfig(location(), targetOptions({ sftpKey: sshd.userKey })),
      /--sftp-known-hosts FILE \(KBRACKUP_SFTP_KNOWN_HOSTS\) or --sftp-host-fingerprint SHA256:\.\.\. \(KBRACKUP_SFTP_HOST_FINGERPRINT\)/,
    );
    await assert.rejects(sftpConfig(location(), targetOptions({ sftpKey: sshd.userKey, sftpHostFingerprint: 'MD5:aa:bb' })), /not a SHA256:/);
  });

  it('an encrypted key needs its passphrase file, and works with it', async () => {
    const key = join(scratch, 'encrypted_key');
    // Few KDF rounds: the passphrase check, not bcrypt's cost, is under test.
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-a', '1', '-N', 'correct horse', '-f', key]);
    const passphrase = join(scratch, 'passphrase');
    await writeFile(passphrase, 'correct horse\n');
    const wrong = join(scratch, 'wrong-passphrase');
    await writeFile(wrong, 'battery staple\n');
    const base = { sftpKey: key, sftpKnownHosts: sshd.knownHosts };
    await assert.rejects(sftpConfig(location(), targetOptions(base)), /encrypted; set --sftp-key-passphrase-file FILE \(KBRACKUP_SFTP_KEY_PASSPHRASE_FILE\)/);
    await assert.rejects(sftpConfig(location(), targetOptions({ ...base, sftpKeyPassphraseFile: wrong })), /passphrase .* does not decrypt it/);
    const config = await sftpConfig(location(), targetOptions({ ...base, sftpKeyPassphraseFile: passphrase }));
    assert.equal(config.passphrase, 'correct horse');
  });

  it('refuses a server whose host key is not in known_hosts', async () => {
    const file = join(scratch, 'known_hosts_other');
    await writeFile(file, `# another server only\n[127.0.0.1]:1 ${sshd.hostPublicKey}\nexample.org ${sshd.hostPublicKey}\n`);
    await refused({ sftpKnownHosts: file }, /host key of \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:\S+\) is unknown: it is not in .*ssh-keyscan -p \d+ 127\.0\.0\.1/);
  });

  it('refuses a server whose host key differs from the known one', async () => {
    const file = join(scratch, 'known_hosts_changed');
    const otherKey = (await readFile(`${sshd.otherKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
    await writeFile(file, `[127.0.0.1]:${sshd.port} ${otherKey}\n`);
    await refused({ sftpKnownHosts: file }, /does not match the one in .*refusing to connect/);
  });

  it('refuses a host key marked @revoked', async () => {
    const file = join(scratch, 'known_hosts_revoked');
    await writeFile(file, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n@revoked * ${sshd.hostPublicKey}\n`);
    await refused({ sftpKnownHosts: file }, /@revoked/);
  });

  it('accepts hashed known_hosts entries (ssh-keygen -H)', async () => {
    const file = join(scratch, 'known_hosts_hashed');
    await copyFile(sshd.knownHosts, file);
    await run('ssh-keygen', ['-H', '-f', file]);
    assert.match(await readFile(file, 'utf8'), /^\|1\|/);
    await accepted({ sftpKnownHosts: file });
  });

  it('refuses a pinned fingerprint that does not match, accepts the right one', async () => {
    const wrong = `SHA256:${'A'.repeat(43)}`;
    await refused({ sftpHostFingerprint: wrong }, new RegExp(`does not match --sftp-host-fingerprint ${wrong}; refusing`));
    await accepted({ sftpHostFingerprint: sshd.fingerprint });
  });

  it('refuses a user key the server does not accept', async () => {
    await refused({ sftpKey: sshd.otherKey, sftpKnownHosts: sshd.knownHosts }, new RegExp(`refused the key from --sftp-key for user "${sshd.user}"`));
  });

  it('unreachable server: transient, retried, then a clear message', async () => {
    const port = await closedPort();
    const inner = new SftpTarget(await sftpConfig({ ...location(), port }, targetOptions({ sftpKey: sshd.userKey, sftpHostFingerprint: sshd.fingerprint })));
    const { target, attempts } = retrying(inner, 2);
    await assert.rejects(target.put('x', { bytes: Buffer.from('x') }), (err: unknown) => {
      assert.ok(err instanceof TargetError && err.transient);
      assert.match(err.message, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.* \\(gave up after 3 attempts\\)$`));
      return true;
    });
    assert.deepEqual(attempts, [1, 2]);
  });

  it('a connection dropped mid-upload is re-opened, the put retried, the object byte-exact and no temp file listed', async () => {
    const proxy = track(await startCuttingProxy(sshd.port, 3 * MiB), (p) => p.stop());
    const path = join(sshd.dataDir, 'dropped');
    const config = await sftpTestConfig(sshd, path, { sftpKnownHosts: '', sftpHostFingerprint: sshd.fingerprint });
    const { target, attempts } = retrying(new SftpTarget({ ...config, port: proxy.port }));
    await target.prepare();
    await target.put('packs/ab/dropped', { file: upload.path });
    assert.equal(proxy.cuts, 1);
    assert.ok(attempts.length >= 1);
    assert.equal(await sha256Of(await target.get('packs/ab/dropped')), upload.sha256);
    const listed: string[] = [];
    for await (const info of target.list('')) listed.push(info.name);
    assert.deepEqual(listed, ['packs/ab/dropped']);
  });

  it('openTarget builds the retrying sftp target from an sftp:// URL', async () => {
    const location = parseLocation(`sftp://${sshd.user}@127.0.0.1:${sshd.port}${join(sshd.dataDir, 'from-url')}`);
    const target = track(await openTarget(location, targetOptions({ sftpKey: sshd.userKey, sftpKnownHosts: sshd.knownHosts, retries: 2 })), (t) => t.close());
    assert.ok(target instanceof RetryingTarget);
    await target.prepare();
    await target.put('kbrackup.json', { bytes: Buffer.from('{}') });
    assert.equal(await readFile(join(sshd.dataDir, 'from-url', 'kbrackup.json'), 'utf8'), '{}');
  });
});
