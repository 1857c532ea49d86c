import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

/** Count snapshots through the CLI, as a user would. */
async function snapshotCount(fx: Fixture): Promise<number> {
  return (JSON.parse(expectCode(await runCli(['snapshots', '--repo', fx.repo, '--credentials', fx.cred, '--json']), 0).stdout) as unknown[]).length;
}

async function chunkCount(fx: Fixture): Promise<number> {
  return (await readdir(join(fx.repo, 'chunks'), { recursive: true }).catch(() => [])).length;
}

/**
 * Kill a backup by signal once it has stored new data, i.e. in the middle of its work. The signal goes
 * exactly once (a second SIGTERM would exit at once, skipping the cleanup under test): checks run one
 * after another, never overlapping, and stop when the process is gone.
 */
async function killWhenBusy(fx: Fixture, signal: NodeJS.Signals): Promise<(pid: number) => void> {
  const baseline = await chunkCount(fx);
  return (pid: number) => {
    void (async () => {
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, 20).unref());
        try {
          process.kill(pid, 0);
        } catch {
          return;
        }
        if ((await chunkCount(fx)) > baseline + 4) {
          process.kill(pid, signal);
          return;
        }
      }
    })();
  };
}

describe('interrupted backups never damage earlier snapshots', () => {
  let fx: Fixture;
  let src: string;
  let tmp: string;

  before(async () => {
    fx = await makeFixture(['--chunk-size', '1MiB']);
    src = join(fx.dir, 'src');
    tmp = join(fx.dir, 'tmp');
    await mkdir(src);
    await mkdir(tmp);
    await writePseudoRandom(join(src, 'first.bin'), 2 * 1024 * 1024, 'first');
    expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, src]), 0);
    await writePseudoRandom(join(src, 'second.bin'), 512 * 1024 * 1024, 'second');
  });
  after(() => fx.cleanup());

  it('kill -9 mid-backup leaves the earlier snapshot restorable', async () => {
    const result = await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--temp-dir', tmp, src], { onSpawn: await killWhenBusy(fx, 'SIGKILL') });
    assert.equal(result.signal, 'SIGKILL');
    assert.equal(await snapshotCount(fx), 1);
    const out = join(fx.dir, 'out-kill');
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out]), 0);
    assert.deepEqual(await readdir(out), ['first.bin']);
    assert.equal(await sha256File(join(out, 'first.bin')), await sha256File(join(src, 'first.bin')));
  });

  it('SIGTERM stops cleanly: exit 143, clear message, temp files removed, no new snapshot', async () => {
    const before = new Set(await readdir(tmp));
    const result = await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--temp-dir', tmp, '--json', src], { onSpawn: await killWhenBusy(fx, 'SIGTERM') });
    expectCode(result, 143);
    assert.match(result.stderr, /"message_type":"exit_error","code":143,"message":"stopped by SIGTERM/);
    assert.deepEqual((await readdir(tmp)).filter((n) => !before.has(n)), []);
    assert.equal(await snapshotCount(fx), 1);
    // The next backup completes and the repository holds both versions.
    expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, src]), 0);
    assert.equal(await snapshotCount(fx), 2);
  });

  it('SIGINT (Ctrl-C) stops cleanly with exit 130, like restic', async () => {
    await writePseudoRandom(join(src, 'third.bin'), 256 * 1024 * 1024, 'third');
    const before = new Set(await readdir(tmp));
    const result = await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--temp-dir', tmp, '--json', src], { onSpawn: await killWhenBusy(fx, 'SIGINT') });
    expectCode(result, 130);
    assert.match(result.stderr, /"message_type":"exit_error","code":130,"message":"stopped by SIGINT/);
    assert.deepEqual((await readdir(tmp)).filter((n) => !before.has(n)), []);
    assert.equal(await snapshotCount(fx), 2);
  });
});
