/**
 * Issue 15, faulty targets: an OpenSSH server behind a TCP proxy that drops connections mid-upload and
 * mid-download, or goes away for good. Backups and restores complete on new connections, or fail cleanly
 * (exit 1, one line naming the target), never leaving a snapshot that points at missing data nor a
 * partial file in a restore's destination.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { jsonLines, runCli, summaryOf, type RunResult } from './helpers/cli.js';
import { writePseudoRandom } from './helpers/data.js';
import { reportFigures } from './helpers/figures.js';
import { startCuttingProxy, type CuttingProxy } from './helpers/proxy.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';
import { lostBytes, partialFiles } from './helpers/restore-check.js';
import { startSshd, type Sshd } from './helpers/sshd.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Where each trial cuts a connection: early, and once the big file's chunks are flowing. */
const CUT_AFTER = [512 * KiB, 1536 * KiB];

describe('SFTP through connections that drop (issue 15)', () => {
  let fx: Fixture;
  let sshd: Sshd;
  let path: string;
  let src: string;
  let cred: string;

  before(async () => {
    fx = await makeFixture();
    sshd = await startSshd();
    path = join(sshd.dataDir, 'repo');
    cred = join(fx.dir, 'sftp.cred');
    src = join(fx.dir, 'src');
    await mkdir(join(src, 'small'), { recursive: true });
    await writePseudoRandom(join(src, 'big.bin'), 4 * MiB, 'sftp faults');
    for (let i = 0; i < 100; i++) await writeFile(join(src, 'small', `${i}.txt`), `small ${i}\n`.repeat(50 + i));
    expectCode(await sftp(['init', '--repo', url(sshd.port), '--key', fx.key, '--credentials-out', cred, '--chunk-size', '256KiB', '--pack-size', '1MiB']), 0);
  });
  after(async () => {
    await sshd?.stop();
    await fx?.cleanup();
  });

  function url(port: number): string {
    return `sftp://${sshd.user}@127.0.0.1:${port}${path}`;
  }

  /** The CLI with the SFTP key; through a proxy the host key is pinned (known_hosts names the real port). */
  function sftp(args: string[], proxy?: CuttingProxy): Promise<RunResult> {
    const pin = proxy ? ['--sftp-known-hosts', '', '--sftp-host-fingerprint', sshd.fingerprint] : [];
    return runCli([...args, ...pin], { env: { ...process.env, KBRACKUP_SFTP_KEY: sshd.userKey, KBRACKUP_SFTP_KNOWN_HOSTS: sshd.knownHosts } });
  }

  async function snapshotCount(): Promise<number> {
    return (await readdir(join(path, 'snapshots'), { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
  }

  /** The one error line of a failed run, naming the target; nothing but JSON log lines on stderr. */
  function failureMessage(run: RunResult): string {
    expectCode(run, 1);
    const errors = jsonLines(run.stderr).filter((l) => l.level === 50);
    assert.equal(errors.length, 1, run.stderr);
    assert.deepEqual(run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{')), []);
    return String(errors[0]!.msg);
  }

  it('connections dropped mid-upload and mid-download: backups and restores complete, byte-exact', async (t) => {
    let cuts = 0;
    let lost = 0;
    for (const [trial, after] of CUT_AFTER.entries()) {
      await writePseudoRandom(join(src, `new-${trial}.bin`), 2 * MiB, `sftp trial ${trial}`);
      const up = await startCuttingProxy(sshd.port, after, 2);
      t.after(() => up.stop());
      const backup = expectCode(await sftp(['backup', '--repo', url(up.port), '--credentials', cred, '--json', src], up), 0);
      await up.stop();
      cuts += up.cuts;
      assert.ok(up.cuts >= 1, `trial ${trial}: no upload connection was cut`);

      const down = await startCuttingProxy(sshd.port, after, 2, [], { direction: 'download' });
      t.after(() => down.stop());
      const out = join(fx.dir, `out-${trial}`);
      expectCode(await sftp(['restore', '--repo', url(down.port), '--key', fx.key, String(summaryOf(backup.stdout).snapshot_id), '--target', out], down), 0);
      await down.stop();
      cuts += down.cuts;
      assert.ok(down.cuts >= 1, `trial ${trial}: no download connection was cut`);
      lost += lostBytes(src, out);
    }
    assert.equal(lost, 0);
    assert.equal(await snapshotCount(), CUT_AFTER.length);
    // An upload cut off cannot remove its temp file on the server; listings never show such files.
    const leftovers = (await readdir(path, { recursive: true })).filter((n) => basename(n).startsWith('.tmp-')).length;
    reportFigures({ scenario: 'SFTP connections dropped mid-transfer, backup and restore', trials: CUT_AFTER.length * 2, connectionsCut: cuts, serverTempFilesLeft: leftovers, dataLost: lost });
  });

  it('a server gone mid-backup: the backup fails naming the target, no snapshot is written, the last one restores', async (t) => {
    const before = await snapshotCount();
    await writePseudoRandom(join(src, 'unsent.bin'), 2 * MiB, 'unsent');
    const gone = await startCuttingProxy(sshd.port, 1 * MiB, 1, [], { refuseAfterCut: true });
    t.after(() => gone.stop());
    const message = failureMessage(await sftp(['backup', '--repo', url(gone.port), '--credentials', cred, '--retries', '1', src], gone));
    assert.match(message, new RegExp(`^sftp://${sshd.user}@127\\.0\\.0\\.1:${gone.port}${path}\\b.*gave up after 2 attempts`));
    assert.equal(await snapshotCount(), before);
    const out = join(fx.dir, 'after-gone');
    expectCode(await sftp(['restore', '--repo', url(sshd.port), '--key', fx.key, 'latest', '--target', out]), 0);
    assert.deepEqual(partialFiles(src, out), []);
    assert.equal(lostBytes(src, out, ['big.bin', 'new-1.bin']), 0);
    reportFigures({ scenario: 'SFTP server gone mid-backup', trials: 1, snapshotsWritten: 0, dataLost: 0 });
  });

  it('a server gone mid-restore: the restore fails naming the target and leaves no partial file', async (t) => {
    const gone = await startCuttingProxy(sshd.port, 1 * MiB, 1, [], { direction: 'download', refuseAfterCut: true });
    t.after(() => gone.stop());
    const out = join(fx.dir, 'restore-gone');
    const message = failureMessage(await sftp(['restore', '--repo', url(gone.port), '--key', fx.key, 'latest', '--target', out, '--retries', '1'], gone));
    assert.match(message, new RegExp(`^sftp://${sshd.user}@127\\.0\\.0\\.1:${gone.port}${path}\\b.*gave up after 2 attempts`));
    assert.deepEqual(partialFiles(src, out), []);
    reportFigures({ scenario: 'SFTP server gone mid-restore', trials: 1, partialFiles: 0, dataLost: 0 });
  });
});
