import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, type RunResult } from './helpers/cli.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

/** A clear one-line error: the expected exit code, the message, and never a stack trace. */
function expectError(result: RunResult, code: number, message: RegExp): void {
  expectCode(result, code);
  assert.match(result.stderr, message);
  assert.doesNotMatch(result.stderr, /\n\s+at .+:\d+:\d+/, `stack trace in:\n${result.stderr}`);
}

async function objectsUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of await readdir(dir, { recursive: true })) {
    if ((await stat(join(dir, rel))).isFile()) out.push(join(dir, rel));
  }
  return out;
}

describe('bad input gets a clear error and the right exit code', () => {
  let fx: Fixture;
  let src: string;

  before(async () => {
    fx = await makeFixture();
    src = join(fx.dir, 'src');
    await mkdir(src);
    await writeFile(join(src, 'small.txt'), 'small file content\n');
    await writeFile(join(src, 'large.bin'), Buffer.alloc(600 * 1024, 7));
    expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, src]), 0);
  });
  after(() => fx.cleanup());

  it('missing PATH', async () => {
    expectError(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, join(fx.dir, 'nope')]), 1, /backup PATH .*nope cannot be read/);
    expectError(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred]), 1, /exactly one PATH/);
  });

  it('repository not initialised: exit 10', async () => {
    expectError(await runCli(['snapshots', '--repo', join(fx.dir, 'empty-repo'), '--credentials', fx.cred]), 10, /no kbrackup repository at .*kbrackup init/);
  });

  it('init refuses an existing or non-empty repository', async () => {
    expectError(await runCli(['init', '--repo', fx.repo, '--recipient', fx.pub, '--credentials-out', join(fx.dir, 'x.cred')]), 1, /already holds a kbrackup repository/);
    const other = join(fx.dir, 'nonempty');
    await mkdir(other);
    await writeFile(join(other, 'data'), 'x');
    expectError(await runCli(['init', '--repo', other, '--recipient', fx.pub, '--credentials-out', join(fx.dir, 'y.cred')]), 1, /is not empty/);
  });

  it('wrong key, wrong credentials, wrong passphrase: exit 12', async () => {
    const other = join(fx.dir, 'other');
    expectCode(await runCli(['keygen', '--out', other]), 0);
    expectError(await runCli(['restore', '--repo', fx.repo, '--key', `${other}.key.asc`, 'latest', '--target', join(fx.dir, 'o')]), 12, /cannot decrypt/);
    const otherRepo = join(fx.dir, 'other-repo');
    expectCode(await runCli(['init', '--repo', otherRepo, '--recipient', fx.pub, '--credentials-out', join(fx.dir, 'other.cred')]), 0);
    expectError(await runCli(['snapshots', '--repo', fx.repo, '--credentials', join(fx.dir, 'other.cred')]), 12, /belongs to repository/);
    const pass = join(fx.dir, 'pass');
    await writeFile(pass, 'correct horse\n');
    const locked = join(fx.dir, 'locked');
    expectCode(await runCli(['keygen', '--out', locked, '--passphrase-file', pass]), 0);
    await writeFile(join(fx.dir, 'wrong'), 'wrong horse\n');
    const prepo = join(fx.dir, 'prepo');
    expectCode(await runCli(['init', '--repo', prepo, '--key', `${locked}.key.asc`, '--passphrase-file', pass, '--credentials-out', join(fx.dir, 'p.cred')]), 0);
    expectCode(await runCli(['backup', '--repo', prepo, '--credentials', join(fx.dir, 'p.cred'), src]), 0);
    expectError(await runCli(['restore', '--repo', prepo, '--key', `${locked}.key.asc`, '--passphrase-file', join(fx.dir, 'wrong'), 'latest', '--target', join(fx.dir, 'p')]), 12, /wrong passphrase/);
    expectError(await runCli(['restore', '--repo', prepo, '--key', `${locked}.key.asc`, 'latest', '--target', join(fx.dir, 'p')]), 12, /protected by a passphrase; pass --passphrase-file/);
    expectCode(await runCli(['restore', '--repo', prepo, '--key', `${locked}.key.asc`, '--passphrase-file', pass, 'latest', '--target', join(fx.dir, 'p')]), 0);
    assert.equal(await readFile(join(fx.dir, 'p', 'small.txt'), 'utf8'), 'small file content\n');
  });

  it('passphrase-only repository: round trip, and a wrong passphrase is refused', async () => {
    const pass = join(fx.dir, 'repo-pass');
    await writeFile(pass, 'repository passphrase\n');
    await writeFile(join(fx.dir, 'wrong-repo-pass'), 'not it\n');
    const repo = join(fx.dir, 'pass-repo');
    expectCode(await runCli(['init', '--repo', repo, '--passphrase-file', pass]), 0);
    expectCode(await runCli(['backup', '--repo', repo, '--passphrase-file', pass, src]), 0);
    expectError(await runCli(['snapshots', '--repo', repo, '--passphrase-file', join(fx.dir, 'wrong-repo-pass')]), 12, /wrong passphrase/);
    expectCode(await runCli(['restore', '--repo', repo, '--passphrase-file', pass, 'latest', '--target', join(fx.dir, 'pp')]), 0);
    assert.equal((await readFile(join(fx.dir, 'pp', 'large.bin'))).length, 600 * 1024);
  });

  it('a corrupted or truncated object is named, and nothing half-restored is left', async () => {
    const chunk = (await objectsUnder(join(fx.repo, 'chunks')))[0] as string;
    const original = await readFile(chunk);
    // The middle of a chunk object is its encrypted blob (its end is the trailer, which restore does not need).
    const middle = Math.floor(original.length / 2);
    const damaged = Buffer.from(original);
    damaged[middle] = (damaged[middle] as number) ^ 1;
    await writeFile(chunk, damaged);
    const out = join(fx.dir, 'corrupt-out');
    const name = chunk.slice(fx.repo.length + 1);
    expectError(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out]), 1, new RegExp(name));
    await truncate(chunk, middle);
    expectError(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', out, '--conflict', 'overwrite']), 1, new RegExp(name));
    assert.deepEqual((await readdir(out)).filter((n) => n.startsWith('.kbrackup') || n === 'large.bin'), []);
    await writeFile(chunk, original);
  });

  it('temp dir missing, unknown snapshot, unknown flag, invalid option value', async () => {
    expectError(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--temp-dir', join(fx.dir, 'no-tmp'), src]), 1, /temp dir .*no-tmp is not a writable folder/);
    expectError(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'abcdef12', '--target', join(fx.dir, 'x')]), 1, /no snapshot abcdef12/);
    expectError(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'not-an-id', '--target', join(fx.dir, 'x')]), 1, /is not a snapshot id/);
    expectError(await runCli(['backup', '--repo', fx.repo, '--bogus', src]), 1, /Unknown option '--bogus'/);
    expectError(await runCli(['restore', '--repo', fx.repo, '--key', fx.key, 'latest', '--target', join(fx.dir, 'x'), '--conflict', 'maybe']), 1, /conflict: must be one of/);
    expectError(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, src], { env: { ...process.env, KBRACKUP_TEMP_LIMIT: 'lots' } }), 1, /temp_?[lL]imit.*size/);
    expectError(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, '--temp-limit', '1MiB', src]), 1, /cannot hold one chunk and one pack/);
    expectError(await runCli(['frobnicate']), 1, /unknown command "frobnicate"/);
  });

  it('every option also comes from its environment variable and from --config', async () => {
    const env = { ...process.env, KBRACKUP_REPO: fx.repo, KBRACKUP_CREDENTIALS: fx.cred };
    expectCode(await runCli(['snapshots'], { env }), 0);
    const config = join(fx.dir, 'config.json');
    await writeFile(config, JSON.stringify({ repo: fx.repo, credentials: fx.cred, json: true }));
    const viaFile = expectCode(await runCli(['snapshots', '--config', config]), 0);
    assert.ok(Array.isArray(JSON.parse(viaFile.stdout)));
    await writeFile(config, JSON.stringify({ repo: fx.repo, colour: 'blue' }));
    expectError(await runCli(['snapshots', '--config', config]), 1, /colour/);
  });
});
