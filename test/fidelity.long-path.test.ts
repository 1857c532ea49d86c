/** src/platform/long-path.ts on real folders: paths of PATH_MAX or more, which Linux refuses in one call. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withPath, withPathAsync } from '../src/platform/index.js';

/** What this process holds open below `dir` (its descriptors, as /proc names them). */
function openBelow(dir: string): string[] {
  const held: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) held.push(target);
    } catch {
      // The descriptor readdir itself used is gone by now.
    }
  }
  return held;
}

describe('platform: paths over PATH_MAX', () => {
  let dir: string;
  /** 30 levels of 250-byte names below `dir`: about 7,500 bytes. */
  let deep: Buffer;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kbrackup-long-path-'));
    deep = Buffer.from(dir);
    for (let i = 0; i < 30; i++) {
      deep = Buffer.concat([deep, Buffer.from(`/${String(i).padStart(2, '0')}${'x'.repeat(248)}`)]);
      withPath(deep, (p) => mkdirSync(p));
    }
  });
  after(() => execFileSync('rm', ['-rf', dir]));

  it('reaches what a single call cannot, synchronously and asynchronously, and opens no descriptor for short paths', async () => {
    const file = Buffer.concat([deep, Buffer.from('/leaf.txt')]);
    assert.ok(file.length > 7000);
    assert.throws(() => writeFileSync(file, 'x'), /ENAMETOOLONG/);
    withPath(file, (p) => writeFileSync(p, 'at the bottom'));
    assert.equal(await withPathAsync(file, (p) => readFile(p, 'utf8')), 'at the bottom');
    // GNU find walks with openat: the file is where the long path says.
    assert.match(execFileSync('find', [dir, '-name', 'leaf.txt'], { encoding: 'utf8' }), /leaf\.txt\n$/);
    const short = join(dir, 'short.txt');
    await writeFile(short, 'near');
    withPath(Buffer.from(short), (p) => assert.equal(p.toString(), short));
    withPath(file, (p) => lstatSync(p));
    await withPathAsync(file, async (p) => readFileSync(p));
    assert.deepEqual(openBelow(dir), [], 'the folders opened on the way are closed again');
  });

  it('never goes through a symlink where a long path is cut', async () => {
    // A symlink in place of a folder near the cut: the path through it must not reach the other side.
    const cut = Buffer.from(deep.toString('latin1').slice(0, deep.toString('latin1').lastIndexOf('/', 3999)), 'latin1');
    const aside = join(dir, 'aside');
    await mkdir(aside);
    execFileSync('mv', [cut.toString('latin1'), `${cut.toString('latin1')}.real`]);
    symlinkSync(aside, cut);
    const through = Buffer.concat([cut, deep.subarray(cut.length), Buffer.from('/leaf.txt')]);
    assert.throws(() => withPath(through, (p) => readFileSync(p)), /ELOOP|ENOTDIR/);
  });
});
