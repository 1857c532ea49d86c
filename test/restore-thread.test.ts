import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setXattr } from '../src/platform/index.js';
import { runCli } from './helpers/cli.js';
import { writePseudoRandom } from './helpers/data.js';
import { summaryOf } from './helpers/output.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';
import { comparable, treeOf } from './helpers/tree.js';

/**
 * Restored files are verified on the main thread and written on a thread of their own
 * (src/restore/write-thread.ts) unless a memory limit below 96 MiB applies: both ways must write the
 * same files, keep the conflict rules for folders that were there before, and fail on a full
 * destination with one line naming the file, leaving no temp file behind.
 */
describe('restore writes files on a thread of their own, as on the main thread', () => {
  let fx: Fixture;
  let src: string;
  const FILES = 1500;

  before(async () => {
    fx = await makeFixture();
    src = join(fx.dir, 'src');
    // Several folders of files from 0 to ~3 KiB (more than one batch of the write thread), modes and
    // times of their own, empty files, and one file with an attribute (written on the main thread).
    for (let i = 0; i < FILES; i++) {
      const dir = join(src, `d${i % 7}`);
      await mkdir(dir, { recursive: true });
      const file = join(dir, `f${i}.txt`);
      await writeFile(file, i % 50 === 0 ? '' : `file ${i}\n`.repeat(i % 300));
      await chmod(file, [0o644, 0o600, 0o755, 0o444][i % 4]!);
      await utimes(file, 1_600_000_000 + i, 1_600_000_000 + i * 7);
    }
    setXattr(join(src, 'd1', 'f1.txt'), 'user.kbrackup', Buffer.from('labelled'));
    // One file over restore's 1 MiB small-file bound: written chunk by chunk (by the write thread when on).
    await writePseudoRandom(join(src, 'big.bin'), 2 * 1024 * 1024);
    await utimes(join(src, 'big.bin'), 1_600_000_000, 1_600_000_000);
    expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, src]), 0);
  });
  after(() => fx.cleanup());

  const restore = (target: string, ...more: string[]) => runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', target, '--json', ...more]);
  const fields = ['type', 'size', 'mode', 'uid', 'gid', 'mtime', 'sha256', 'xattrs'] as const;
  /** The fields compared; folder times are left out (set through float seconds, they come back within a microsecond: fidelity checks them). */
  const state = (dir: string) => {
    const tree = comparable(treeOf(dir), [...fields]);
    for (const info of Object.values(tree)) if (info.type === 'd') delete info.mtime;
    return tree;
  };

  it('on and off restore every file as it was, and no temp file is left', async () => {
    const expected = state(src);
    for (const setting of ['on', 'off']) {
      const out = join(fx.dir, `out-${setting}`);
      const summary = summaryOf(expectCode(await restore(out, '--write-thread', setting), 0).stdout);
      assert.equal(summary.files_restored, FILES + 1, setting);
      assert.deepEqual(state(out), expected, `--write-thread ${setting}`);
    }
  });

  it('into folders that were there before, the conflict rules still decide (skip, then update)', async () => {
    const out = join(fx.dir, 'out-again');
    expectCode(await restore(out), 0);
    await writeFile(join(out, 'd3', 'f3.txt'), 'changed since\n');
    const skipped = summaryOf(expectCode(await restore(out, '--conflict', 'skip', '--write-thread', 'on'), 0).stdout);
    assert.equal(skipped.files_skipped, FILES + 1);
    assert.equal(skipped.files_restored, 0);
    const updated = summaryOf(expectCode(await restore(out, '--conflict', 'update', '--write-thread', 'on'), 0).stdout);
    assert.equal(updated.files_restored, 1, 'only the file changed since is written again');
    assert.deepEqual(state(out), state(src));
  });

  it('a full destination: one line naming the file and what to do, exit 1, no temp file left (on and off)', async () => {
    // Small files (on the thread or not) and the large one (chunk by chunk), each into a full destination.
    const cases = [
      { setting: 'on', include: '/d3', file: 'd3/f\\d+\\.txt' },
      { setting: 'off', include: '/d3', file: 'd3/f\\d+\\.txt' },
      { setting: 'on', include: '/big.bin', file: 'big\\.bin' },
      { setting: 'off', include: '/big.bin', file: 'big\\.bin' },
    ];
    for (const [n, { setting, include, file }] of cases.entries()) {
      const out = join(fx.dir, `full-${n}`);
      await mkdir(out);
      // A 64 KiB tmpfs over the destination, in a mount namespace of the restore's own: room for 16 files.
      const run = await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out, '--write-thread', setting, '--include', include], {
        wrap: ['unshare', '-m', 'sh', '-c', 'mount -t tmpfs -o size=64k none "$0" || exit 99; "$@"; rc=$?; echo "temp files: $(find "$0" -name ".kbrackup-*" | wc -l)"; exit $rc', out],
      });
      const what = `${include}, --write-thread ${setting}`;
      assert.notEqual(run.code, 99, `cannot mount a tmpfs in a private mount namespace (unshare -m needs root): ${run.stderr}`);
      assert.equal(run.code, 1, `${what}: ${run.stderr}`);
      assert.match(run.stderr, new RegExp(`cannot write ${out}/${file} in the restore destination: no space left on device \\(ENOSPC\\); free space there, or restore part of the snapshot with --include`), what);
      assert.doesNotMatch(run.stderr, /unexpected error|\n\s+at /, 'no stack trace');
      assert.match(run.stdout, /^temp files: 0$/m, what);
    }
  });
});
