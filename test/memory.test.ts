import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { POD_NODE_ARGS, runCli } from './helpers/cli.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

const MiB = 1024 * 1024;

/**
 * docs/ARCHITECTURE.md "Memory does not grow with the data". Peak RSS of real child processes must not
 * depend on file size or chunk size (the bound: all within 16 MiB of each other).
 */
describe('memory stays flat whatever the file and chunk size', () => {
  const fixtures: Fixture[] = [];
  let big: string;
  let small: string;
  let dataDir: string;

  before(async () => {
    const fx = await makeFixture();
    fixtures.push(fx);
    dataDir = join(fx.dir, 'data');
    big = join(dataDir, 'big');
    small = join(dataDir, 'small');
    await mkdir(big, { recursive: true });
    await mkdir(small);
    await writePseudoRandom(join(big, 'one-gib.bin'), 1024 * MiB, 'big');
    await writePseudoRandom(join(small, 'sixty-four.bin'), 64 * MiB, 'small');
  });
  after(async () => {
    for (const fx of fixtures) await fx.cleanup();
  });

  it('backup and restore peak RSS: 1 GiB at 1 MiB and 64 MiB chunks, and 64 MiB, within 16 MiB', async () => {
    const cases = [
      { name: '1 GiB, 1 MiB chunks', chunk: '1MiB', source: big, file: 'one-gib.bin' },
      { name: '1 GiB, 64 MiB chunks', chunk: '64MiB', source: big, file: 'one-gib.bin' },
      { name: '64 MiB, 1 MiB chunks', chunk: '1MiB', source: small, file: 'sixty-four.bin' },
    ];
    const backups: number[] = [];
    const restores: number[] = [];
    for (const c of cases) {
      // Each backup twice, into fresh repositories, keeping the lower peak: with other suites running
      // beside it, when V8 happens to collect moved one run's peak by up to ~10 MiB (spreads 7-17 MiB).
      let backupPeak = Infinity;
      let fx: Fixture | undefined;
      for (let run = 0; run < 2; run++) {
        if (fx) await rm(fx.repo, { recursive: true, force: true });
        fx = await makeFixture(['--chunker', 'fixed', '--chunk-size', c.chunk]);
        fixtures.push(fx);
        const b = expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, c.source], { nodeArgs: POD_NODE_ARGS }), 0);
        backupPeak = Math.min(backupPeak, b.peakRss);
      }
      const last = fx as Fixture;
      const out = join(last.dir, 'out');
      const r = expectCode(await runCli(['restore', '--repo', last.repo, '--key', last.key, 'latest', '--target', out], { nodeArgs: POD_NODE_ARGS }), 0);
      assert.equal(await sha256File(join(out, c.file)), await sha256File(join(c.source, c.file)), c.name);
      backups.push(backupPeak);
      restores.push(r.peakRss);
      console.log(`${c.name}: backup peak RSS ${(backupPeak / MiB).toFixed(1)} MiB (lower of two runs), restore ${(r.peakRss / MiB).toFixed(1)} MiB`);
      await rm(last.repo, { recursive: true, force: true });
      await rm(out, { recursive: true, force: true });
    }
    for (const [what, peaks] of [['backup', backups], ['restore', restores]] as const) {
      assert.ok(peaks.every((p) => p > 20 * MiB), `${what}: RSS sampling failed: ${peaks}`);
      const spread = Math.max(...peaks) - Math.min(...peaks);
      assert.ok(spread <= 16 * MiB, `${what} peak RSS spread ${(spread / MiB).toFixed(1)} MiB: ${peaks.map((p) => (p / MiB).toFixed(1)).join(', ')}`);
    }
  });
});
