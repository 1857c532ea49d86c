import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jsonLines, runCli, summaryOf, type RunResult } from './helpers/cli.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { startCuttingProxy, type CuttingProxy } from './helpers/proxy.js';
import { expectCode } from './helpers/repo.js';
import { startS3Server, type S3Server } from './helpers/s3server.js';
import { startSshd, type Sshd } from './helpers/sshd.js';

const MiB = 1024 * 1024;

let scratch: string;
let keys: { pub: string; key: string };

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kbrackup-cli-remote-'));
  const owner = join(scratch, 'keys', 'owner');
  expectCode(await runCli(['keygen', '--out', owner]), 0);
  keys = { pub: `${owner}.pub.asc`, key: `${owner}.key.asc` };
});

after(() => rm(scratch, { recursive: true, force: true }));

/** SHA-256 of every file below `dir`, by relative path. */
async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[relative(dir, path)] = await sha256File(path);
  }
  return out;
}

/** A source folder with a large file (several chunks), small files (packs) and nesting. */
async function makeSource(dir: string): Promise<void> {
  await mkdir(join(dir, 'db', 'wal'), { recursive: true });
  await writePseudoRandom(join(dir, 'db', 'data.bin'), 9 * MiB + 17, dir);
  for (let i = 0; i < 40; i++) await writeFile(join(dir, 'db', 'wal', `${i}.log`), `entry ${i}\n`.repeat(i * 50));
  await writeFile(join(dir, 'empty'), '');
}

/** How one remote backend is reached by the CLI, directly or through a proxy that drops a connection. */
interface Remote {
  name: string;
  repo: string;
  env: NodeJS.ProcessEnv;
  args: string[];
  /** The same repository reached through `proxy`. */
  through(proxy: CuttingProxy): { repo: string; args: string[] };
  port: number;
  /** Checks that init created what the backend needs. */
  checkInit(): Promise<void>;
  /** Makes every new chunk upload fail for good (the server refuses it); returns the undo. */
  refuseChunks(): Promise<() => Promise<void>>;
  /** A misconfiguration and the clear message it must produce. */
  misconfigured: { repo: string; args: string[]; message: RegExp };
  stop(): Promise<void>;
}

function cli(remote: Remote, args: string[], extra: string[] = remote.args): Promise<RunResult> {
  return runCli([...args, ...extra], { env: { ...process.env, ...remote.env } });
}

function roundTrip(open: () => Promise<Remote>): void {
  let remote: Remote;
  let src: string;
  let first: string;

  before(async () => {
    remote = await open();
    src = await mkdtemp(join(scratch, `${remote.name}-src-`));
    await makeSource(src);
  });

  after(() => remote?.stop());

  it('init creates the repository; trust signs it later (made with the public key only)', async () => {
    const cred = join(src, '..', `${remote.name}.cred`);
    expectCode(await cli(remote, ['init', '--repo', remote.repo, '--recipient', keys.pub, '--credentials-out', cred]), 0);
    await remote.checkInit();
    const signed = expectCode(await cli(remote, ['trust', '--repo', remote.repo, '--key', keys.key]), 0);
    assert.match(signed.stdout, /signed repository [0-9a-f]{32} at .* with key [0-9a-f]{64}/);
  });

  it('backs up (uploads on their own thread), again incrementally (on the main thread), and restores byte-exactly', async () => {
    const cred = join(src, '..', `${remote.name}.cred`);
    const one = summaryOf(expectCode(await cli(remote, ['backup', '--repo', remote.repo, '--credentials', cred, '--json', '--upload-thread', 'on', src]), 0).stdout);
    first = String(one.snapshot_id);
    assert.equal(one.files_new, 42);
    await writeFile(join(src, 'db', 'wal', 'new.log'), 'appended later\n');
    await writePseudoRandom(join(src, 'db', 'second.bin'), 3 * MiB, `${src}-second`);
    const two = summaryOf(expectCode(await cli(remote, ['backup', '--repo', remote.repo, '--credentials', cred, '--json', '--upload-thread', 'off', src]), 0).stdout);
    assert.equal(two.files_new, 2);
    const out = join(src, '..', `${remote.name}-restore`);
    expectCode(await cli(remote, ['restore', '--repo', remote.repo, '--key', keys.key, 'latest', '--target', out]), 0);
    assert.deepEqual(await digests(out), await digests(src));
  });

  it('a connection dropped mid-backup is retried: the backup completes, earlier snapshots stay restorable', async (t) => {
    const cred = join(src, '..', `${remote.name}.cred`);
    const before = await digests(src);
    delete before[join('db', 'wal', 'new.log')];
    delete before[join('db', 'second.bin')];
    await writePseudoRandom(join(src, 'db', 'grown.bin'), 6 * MiB, `${src}-grown`);
    const proxy = await startCuttingProxy(remote.port, 2 * MiB);
    // Stopped even if an assertion fails, or its open server would keep the test process alive.
    t.after(() => proxy.stop());
    const via = remote.through(proxy);
    // The upload thread's connection carries the chunks, so the drop hits it and its report must say "retry".
    const run = expectCode(await cli(remote, ['backup', '--repo', via.repo, '--credentials', cred, '--json', '--upload-thread', 'on', src], via.args), 0);
    // The drop happened mid-upload and the run still wrote its snapshot.
    await proxy.stop();
    assert.equal(proxy.cuts, 1);
    assert.ok(Number(summaryOf(run.stdout).data_added) >= 6 * MiB);
    const snapshots = JSON.parse(expectCode(await cli(remote, ['snapshots', '--repo', remote.repo, '--key', keys.key, '--json']), 0).stdout) as unknown[];
    assert.equal(snapshots.length, 3);
    const latest = join(src, '..', `${remote.name}-latest`);
    expectCode(await cli(remote, ['restore', '--repo', remote.repo, '--key', keys.key, 'latest', '--target', latest]), 0);
    assert.deepEqual(await digests(latest), await digests(src));
    const earliest = join(src, '..', `${remote.name}-first`);
    expectCode(await cli(remote, ['restore', '--repo', remote.repo, '--key', keys.key, first, '--target', earliest]), 0);
    assert.deepEqual(await digests(earliest), before);
  });

  it('an upload refused on the upload thread fails the backup with a clear message; the repository stays intact', async () => {
    const cred = join(src, '..', `${remote.name}.cred`);
    const expected = await digests(src);
    await writePseudoRandom(join(src, 'db', 'refused.bin'), 2 * MiB, `${src}-refused`);
    const undo = await remote.refuseChunks();
    let run: RunResult;
    try {
      run = await cli(remote, ['backup', '--repo', remote.repo, '--credentials', cred, '--retries', '0', '--upload-thread', 'on', src]);
    } finally {
      await undo();
      await rm(join(src, 'db', 'refused.bin'));
    }
    assert.equal(run.code, 1, run.stderr);
    const logged = jsonLines(run.stderr).map((l) => String(l.msg ?? l.message));
    // Names the target and the object, as a failure on the main thread would.
    assert.ok(logged.some((m) => m.includes(`${remote.name}://`) && / chunks\/[0-9a-f]{2}\/[0-9a-f]+/.test(m)), run.stderr);
    assert.deepEqual(run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{')), []);
    const latest = join(src, '..', `${remote.name}-after-refusal`);
    expectCode(await cli(remote, ['restore', '--repo', remote.repo, '--key', keys.key, 'latest', '--target', latest]), 0);
    assert.deepEqual(await digests(latest), expected);
  });

  it('a misconfigured target fails with a clear one-line message', async () => {
    const { repo, args, message } = remote.misconfigured;
    const cred = join(src, '..', `${remote.name}-bad.cred`);
    const run = await cli(remote, ['init', '--repo', repo, '--recipient', keys.pub, '--credentials-out', cred], args);
    assert.equal(run.code, 1, run.stderr);
    const logged = jsonLines(run.stderr).map((l) => String(l.msg ?? l.message));
    assert.ok(logged.some((m) => message.test(m)), run.stderr);
    assert.deepEqual(run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{')), []);
  });
}

describe('kbrackup on remote repositories', { concurrency: 2 }, () => {
  // Each backend's steps build on each other, so they run in order (the two backends side by side).
  describe('s3 (s3rver)', { concurrency: 1 }, () => {
    roundTrip(async (): Promise<Remote> => {
      const server: S3Server = await startS3Server(['kbrackup']);
      const endpointArgs = (port: number) => ['--s3-endpoint', `http://127.0.0.1:${port}`];
      return {
        name: 's3',
        repo: 's3://kbrackup/team/backups',
        env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, KBRACKUP_S3_FORCE_PATH_STYLE: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
        args: endpointArgs(server.port),
        through: (proxy) => ({ repo: 's3://kbrackup/team/backups', args: endpointArgs(proxy.port) }),
        port: server.port,
        async checkInit() {
          await stat(join(server.directory, 'kbrackup', 'team', 'backups', 'kbrackup.json._S3rver_object'));
        },
        async refuseChunks() {
          // s3rver keeps objects as files below this folder; a file in its place makes every chunk put fail.
          const chunks = join(server.directory, 'kbrackup', 'team', 'backups', 'chunks');
          await rename(chunks, `${chunks}.kept`);
          await writeFile(chunks, '');
          return async () => {
            await rm(chunks);
            await rename(`${chunks}.kept`, chunks);
          };
        },
        misconfigured: { repo: 's3://no-such-bucket/backups', args: endpointArgs(server.port), message: /bucket "no-such-bucket" does not exist; create it first/ },
        stop: () => server.stop(),
      };
    });
  });

  describe('sftp (OpenSSH sshd)', { concurrency: 1 }, () => {
    roundTrip(async (): Promise<Remote> => {
      const sshd: Sshd = await startSshd();
      const path = join(sshd.dataDir, 'not', 'yet', 'there');
      const url = (port: number) => `sftp://${sshd.user}@127.0.0.1:${port}${path}`;
      return {
        name: 'sftp',
        repo: url(sshd.port),
        env: { KBRACKUP_SFTP_KEY: sshd.userKey, KBRACKUP_SFTP_KNOWN_HOSTS: sshd.knownHosts },
        args: [],
        // known_hosts names the real port; through the proxy the host key is pinned instead.
        through: (proxy) => ({ repo: url(proxy.port), args: ['--sftp-known-hosts', '', '--sftp-host-fingerprint', sshd.fingerprint] }),
        port: sshd.port,
        async checkInit() {
          assert.ok((await stat(join(path, 'kbrackup.json'))).isFile());
        },
        async refuseChunks() {
          // A file where the chunk folders are makes every chunk put fail on the server.
          const chunks = join(path, 'chunks');
          await rename(chunks, `${chunks}.kept`);
          await writeFile(chunks, '');
          return async () => {
            await rm(chunks);
            await rename(`${chunks}.kept`, chunks);
          };
        },
        misconfigured: {
          repo: url(sshd.port),
          args: ['--sftp-known-hosts', join(sshd.dataDir, '..', 'authorized_keys')],
          message: /host key of \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:\S+\) is unknown/,
        },
        stop: () => sshd.stop(),
      };
    });
  });
});
