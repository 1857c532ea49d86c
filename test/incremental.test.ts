import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, open, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readCredentials } from '../src/repo/credentials.js';
import { encodeBlobList } from '../src/repo/index/blob-list.js';
import { openRepository } from '../src/repo/keyring.js';
import { FilesystemTarget } from '../src/targets/filesystem/filesystem.js';
import { syntheticEntries } from './fixtures/synthetic-index.js';
import { POD, runCli, summaryOf } from './helpers/cli.js';
import { sha256File, writePseudoRandom } from './helpers/data.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

const MiB = 1024 * 1024;

async function backup(fx: Fixture, path: string, extra: string[] = []) {
  const result = expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--json', ...extra, path], POD), 0);
  return { summary: summaryOf(result.stdout), peakRss: result.peakRss };
}

describe('stateless incremental backups and deduplication', () => {
  const fixtures: Fixture[] = [];
  after(async () => {
    for (const fx of fixtures) await fx.cleanup();
  });

  it('an unchanged re-run of 20,000 small files and a 2 GiB file reads no file content', async () => {
    const fx = await makeFixture();
    fixtures.push(fx);
    const src = join(fx.dir, 'src');
    for (let d = 0; d < 20; d++) {
      await mkdir(join(src, `d${d}`), { recursive: true });
      await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(src, `d${d}`, `f${i}.txt`), `file ${d}/${i}\n`)));
    }
    // Sparse: its holes are never read (SEEK_DATA), and the re-run reads none of it either.
    await writeFile(join(src, 'big.img'), '');
    await truncate(join(src, 'big.img'), 2048 * MiB);
    const first = await backup(fx, src);
    assert.equal(first.summary.files_new, 20_001);
    const again = await backup(fx, src);
    assert.equal(again.summary.bytes_read, 0);
    assert.equal(again.summary.files_unmodified, 20_001);
    assert.equal(again.summary.files_new, 0);
    assert.equal(again.summary.data_added, 0);
    const forced = await backup(fx, src, ['--force']);
    // --force reads again all the first run read: every small file, and none of the sparse file's holes.
    assert.equal(forced.summary.bytes_read, first.summary.bytes_read);
    assert.ok(Number(first.summary.bytes_read) < Number(first.summary.total_bytes_processed) - 2000 * MiB);
    const snaps = JSON.parse(expectCode(await runCli(['snapshots', '--repo', fx.repo, '--credentials', fx.cred, '--json']), 0).stdout) as { id: string; parent?: string }[];
    assert.equal(snaps[1]?.parent, snaps[0]?.id);
  });

  it('a 1-byte change in the middle of 1 GiB, and 100 bytes inserted at its start, each add at most 16 MiB', async () => {
    const fx = await makeFixture();
    fixtures.push(fx);
    const src = join(fx.dir, 'src');
    await mkdir(src);
    const file = join(src, 'data.bin');
    await writePseudoRandom(file, 1024 * MiB, 'incremental');
    await backup(fx, src);
    const handle = await open(file, 'r+');
    await handle.write(Buffer.from('!'), 0, 1, 512 * MiB);
    await handle.close();
    const changed = await backup(fx, src);
    assert.equal(changed.summary.files_changed, 1);
    assert.ok(Number(changed.summary.data_added) <= 16 * MiB, `1-byte change added ${changed.summary.data_added}`);
    // Insert 100 bytes at the start: rewrite the file shifted by streaming it through a second file.
    const shifted = join(fx.dir, 'shifted.bin');
    await writeFile(shifted, Buffer.alloc(100, 0x5a));
    const out = await open(shifted, 'a');
    const inp = await open(file, 'r');
    for await (const chunk of inp.createReadStream({ highWaterMark: 4 * MiB })) await out.write(chunk as Buffer);
    await out.close();
    await rm(file);
    await writeFile(file, '');
    await (await import('node:fs/promises')).rename(shifted, file);
    const inserted = await backup(fx, src);
    assert.ok(Number(inserted.summary.data_added) <= 16 * MiB, `100-byte insertion added ${inserted.summary.data_added}`);
    const restored = join(fx.dir, 'out');
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', restored]), 0);
    assert.equal(await sha256File(join(restored, 'data.bin')), await sha256File(file));
  });

  it('peak RSS against an index of 1,000,000 chunk ids is within 16 MiB of an empty one', async () => {
    const empty = await makeFixture();
    const full = await makeFixture();
    fixtures.push(empty, full);
    const target = new FilesystemTarget(full.repo);
    const repo = await openRepository(target, { credentials: await readCredentials(full.cred) });
    await repo.writeIndex(encodeBlobList(syntheticEntries(1_000_000)), full.dir);
    const src = join(empty.dir, 'src');
    await mkdir(src);
    await writePseudoRandom(join(src, 'data.bin'), 64 * MiB, 'index-rss');
    const a = await backup(empty, src);
    const b = await backup(full, src);
    console.log(`peak RSS: empty index ${(a.peakRss / MiB).toFixed(1)} MiB, 1,000,000 ids ${(b.peakRss / MiB).toFixed(1)} MiB`);
    assert.ok(a.peakRss > 20 * MiB && b.peakRss > 20 * MiB, 'RSS sampling failed');
    assert.ok(Math.abs(b.peakRss - a.peakRss) <= 16 * MiB, `empty ${a.peakRss}, 1M ids ${b.peakRss}`);
    // Synthetic ids never match real data: everything is stored (each repository cuts with its own seed).
    assert.ok(Number(b.summary.data_added) >= 64 * MiB, `data_added ${b.summary.data_added}`);
  });

  it('repair index rebuilds lost index objects from the content objects; nothing is lost meanwhile', async () => {
    const fx = await makeFixture();
    fixtures.push(fx);
    const src = join(fx.dir, 'src');
    await mkdir(src);
    await writePseudoRandom(join(src, 'a.bin'), 4 * MiB, 'repair');
    await writeFile(join(src, 'small.txt'), 'small');
    await backup(fx, src);
    await rm(join(fx.repo, 'index'), { recursive: true });
    // Without an index the data is simply stored again: deduplication is lost, data is not.
    const other = join(fx.dir, 'src2');
    await mkdir(other);
    await writePseudoRandom(join(other, 'a.bin'), 4 * MiB, 'repair');
    const repaired = expectCode(await runCli(['repair', 'index', '--repo', fx.repo, '--credentials', fx.cred]), 0);
    assert.match(repaired.stdout, /index rebuilt from [2-9] content objects: [2-9] blobs/);
    assert.equal((await readdir(join(fx.repo, 'index'))).length, 1);
    const after = await backup(fx, other);
    assert.equal(after.summary.data_added, 0);
    const out = join(fx.dir, 'out');
    expectCode(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out, '--source', 'src']), 0);
    assert.equal(await sha256File(join(out, 'a.bin')), await sha256File(join(src, 'a.bin')));
  });
});
