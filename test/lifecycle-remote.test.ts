import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { S3Target } from '../src/targets/s3/s3.js';
import { SftpTarget } from '../src/targets/sftp/sftp.js';
import type { Target } from '../src/targets/target.js';
import { runCli } from './helpers/cli.js';
import { backup, checkRepo, cli, crashTrial, digests, files, pruneSummary, restored, snapshotList, writeSource, type Kill, type RepoAccess, type Survivor } from './helpers/lifecycle.js';
import { expectCode } from './helpers/repo.js';
import { startS3Server } from './helpers/s3server.js';
import { startSshd } from './helpers/sshd.js';
import { s3TestConfig, sftpTestConfig } from './helpers/targets.js';

const KiB = 1024;
const PRUNE = ['--grace', '0s', '--max-unused', '0%'];
/** Kills per remote backend: the folder target has the many, these show the same order holds over a network. */
const KILLS = 3;

let scratch: string;
let keys: { pub: string; key: string };

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'kbrackup-lifecycle-remote-'));
  const owner = join(scratch, 'keys', 'owner');
  expectCode(await runCli(['keygen', '--out', owner]), 0);
  keys = { pub: `${owner}.pub.asc`, key: `${owner}.key.asc` };
});
after(() => rm(scratch, { recursive: true, force: true }));

/** A remote repository: how the CLI reaches it, the storage seen directly (to damage it), and how to stop it. */
interface Remote {
  access: RepoAccess;
  storage: () => Promise<Target>;
  stop(): Promise<void>;
}

function lifecycle(name: string, open: (cred: string) => Promise<Remote>): void {
  let remote: Remote;
  let access: RepoAccess;
  let src: string;
  const kept: Survivor[] = [];

  before(async () => {
    remote = await open(join(scratch, `${name}.cred`));
    access = remote.access;
    src = join(scratch, `${name}-src`);
  });
  after(() => remote?.stop());

  it('forget --prune removes what only forgotten snapshots used; the rest restores byte for byte and checks clean', async () => {
    expectCode(await cli(access, ['init', '--key', keys.key, '--credentials-out', access.cred]), 0);
    const states = [
      { small: files(0, 30, 'a'), big: 768 * KiB, bigSeed: 'a' },
      { small: [...files(0, 15, 'a'), ...files(15, 30, 'b')], big: 768 * KiB, bigSeed: 'b' },
      { small: [...files(0, 10, 'a'), ...files(15, 30, 'b'), ...files(30, 40, 'c')], big: 768 * KiB, bigSeed: 'b' },
    ];
    for (const state of states) {
      await writeSource(src, { ...state, size: 15_000 });
      kept.splice(0, kept.length, { id: await backup(access, src), expected: await digests(src) });
    }
    const run = expectCode(await cli(access, ['forget', '--credentials', access.cred, '--keep-last', '1', '--prune', ...PRUNE, '--json']), 0);
    const stats = pruneSummary(run);
    assert.ok(stats.objects.delete > 0 && stats.objects.repack > 0, JSON.stringify(stats));
    assert.equal(stats.index.objects_after, 1);
    assert.deepEqual((await snapshotList(access)).map((s) => s.id), [kept[0]!.id]);
    assert.deepEqual(await restored(access, kept[0]!.id, join(scratch, `${name}-out`)), kept[0]!.expected);
    assert.equal((await checkRepo(access)).code, 0);
    const read = await checkRepo(access, ['--key', keys.key, '--read-data']);
    assert.equal(read.code, 0, JSON.stringify(read.errors));
    assert.equal(read.summary.read_data.objects, read.summary.objects);
    assert.match(expectCode(await cli(access, ['unlock', '--credentials', access.cred]), 0).stdout, /no stale locks/);
  });

  it(`prune killed ${KILLS} times at random moments leaves every survivor restorable and check clean; the next prune finishes`, async () => {
    const kills: Kill[] = [];
    for (let n = 0; kills.filter((k) => k.killed).length < KILLS; n++) {
      assert.ok(n < KILLS * 4, `only ${kills.filter((k) => k.killed).length} of ${n} prunes were killed before they ended`);
      // New garbage for each trial: a new state, the oldest snapshot forgotten.
      await writeSource(src, { small: [...files(0, 10, 'a'), ...files(30, 40, `t${n}`)], big: 768 * KiB, bigSeed: `t${n}` });
      kept.push({ id: await backup(access, src), expected: await digests(src) });
      expectCode(await cli(access, ['forget', '--credentials', access.cred, kept.shift()!.id]), 0);
      kills.push(await crashTrial(access, kept, scratch, [4, 5, 6, 7][n % 4]!, (n * 7) % 25, PRUNE));
    }
  });

  it('check names a pack deleted on the storage and the snapshot that needs it', async () => {
    const storage = await remote.storage();
    let pack = '';
    for await (const o of storage.list('packs')) pack = o.name;
    await storage.delete(pack);
    await storage.close();
    const { code, errors } = await checkRepo(access);
    assert.equal(code, 1);
    assert.deepEqual(errors.map((e) => e.object), [pack]);
    assert.deepEqual(errors[0]!.snapshots, [kept[0]!.id.slice(0, 8)]);
  });
}

describe('snapshot lifecycle on remote repositories', { concurrency: 2 }, () => {
  describe('s3 (s3rver)', { concurrency: 1 }, () => {
    lifecycle('s3', async (cred) => {
      const server = await startS3Server(['kbrackup']);
      return {
        access: {
          repo: 's3://kbrackup/lifecycle',
          cred,
          key: keys.key,
          args: ['--s3-endpoint', server.endpoint],
          env: { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, KBRACKUP_S3_FORCE_PATH_STYLE: 'true', AWS_EC2_METADATA_DISABLED: 'true' },
        },
        storage: async () => new S3Target(s3TestConfig(server, { prefix: 'lifecycle' })),
        stop: () => server.stop(),
      };
    });
  });

  describe('sftp (OpenSSH sshd)', { concurrency: 1 }, () => {
    lifecycle('sftp', async (cred) => {
      const sshd = await startSshd();
      const path = join(sshd.dataDir, 'lifecycle');
      return {
        access: { repo: `sftp://${sshd.user}@127.0.0.1:${sshd.port}${path}`, cred, key: keys.key, args: [], env: { KBRACKUP_SFTP_KEY: sshd.userKey, KBRACKUP_SFTP_KNOWN_HOSTS: sshd.knownHosts } },
        storage: async () => new SftpTarget(await sftpTestConfig(sshd, path)),
        stop: () => sshd.stop(),
      };
    });
  });
});
