/**
 * Issue 15, faulty targets: s3rver behind a proxy that answers 500, 503 and 429 SlowDown, resets
 * connections mid-transfer, cuts answers in half and answers late. Backups and restores through it
 * complete with retries, or fail cleanly (exit 1, one line naming target and object); a snapshot never
 * points at missing data (each is restored and compared), and a failed restore leaves no partial file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { jsonLines, summaryOf, type RunResult } from './helpers/cli.js';
import { writePseudoRandom } from './helpers/data.js';
import { everyNth, startFaultProxy, type Fault, type FaultProxy, type SeenRequest } from './helpers/fault-proxy.js';
import { reportFigures } from './helpers/figures.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';
import { lostBytes, partialFiles } from './helpers/restore-check.js';
import { initS3Repo, type S3Repo } from './helpers/s3repo.js';
import { startS3Server, type S3Server } from './helpers/s3server.js';

const MiB = 1024 * 1024;

const FAULTS: Record<string, Fault> = {
  '500 InternalError': { kind: 'status', status: 500, code: 'InternalError' },
  '503 ServiceUnavailable': { kind: 'status', status: 503, code: 'ServiceUnavailable' },
  '429 SlowDown': { kind: 'status', status: 429, code: 'SlowDown' },
  'connection reset': { kind: 'reset' },
  'truncated body': { kind: 'truncate' },
  'slow response': { kind: 'slow', delayMs: 800 },
};
/** A trial faults every Nth request it picks, each time with the next kind of fault in turn, at most
 * PER_KIND times a kind, so every kind meets every trial and retries (6 by default) can win. */
const TRIALS = [2, 3];
const PER_KIND = 1;

/** A rule giving the picked requests the faults in turn; `counts` says how many of each were given. */
function rotating(n: number, picks: (req: SeenRequest) => boolean): { rule: (req: SeenRequest) => Fault | undefined; counts: Record<string, number> } {
  const kinds = Object.keys(FAULTS);
  const counts = Object.fromEntries(kinds.map((k) => [k, 0]));
  let next = 0;
  const every = everyNth(n, FAULTS['500 InternalError']!, picks, kinds.length * PER_KIND);
  return {
    rule: (req) => {
      if (!every.rule(req)) return undefined;
      const kind = kinds[next++ % kinds.length]!;
      counts[kind]!++;
      return FAULTS[kind];
    },
    counts,
  };
}

/** The one error line of a failed run: it names the target and an object, and nothing else is printed. */
function failureMessage(run: RunResult): string {
  expectCode(run, 1);
  const errors = jsonLines(run.stderr).filter((l) => l.level === 50);
  assert.equal(errors.length, 1, run.stderr);
  assert.deepEqual(run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{')), [], 'only JSON log lines');
  return String(errors[0]!.msg);
}

/** Snapshot objects in s3rver's folder for the repository. */
async function storedSnapshots(server: S3Server, prefix: string): Promise<string[]> {
  const dir = join(server.directory, 'kbrackup', prefix, 'snapshots');
  return (await readdir(dir, { recursive: true })).filter((n) => n.endsWith('._S3rver_object'));
}

describe('S3 through a faulty network and server (issue 15)', () => {
  let fx: Fixture;
  let server: S3Server;
  let proxy: FaultProxy;
  let s3: S3Repo;
  let src: string;
  let snapshots = 0;
  const prefix = 'faults';

  before(async () => {
    fx = await makeFixture();
    server = await startS3Server(['kbrackup']);
    proxy = await startFaultProxy(server.port);
    // Small chunks and packs: many objects, so many requests for the faults to land on.
    s3 = await initS3Repo(fx, server, proxy.endpoint, prefix, ['--chunk-size', '256KiB', '--pack-size', '1MiB']);
    src = join(fx.dir, 'src');
    await mkdir(join(src, 'small'), { recursive: true });
    await writePseudoRandom(join(src, 'big.bin'), 3 * MiB, 'faults big');
    for (let i = 0; i < 200; i++) await writeFile(join(src, 'small', `${i}.txt`), `small file ${i}\n`.repeat(40 + i));
  });
  after(async () => {
    await proxy?.stop();
    await server?.stop();
    await fx?.cleanup();
  });

  function restore(snapshot: string, out: string, ...extra: string[]): Promise<RunResult> {
    return s3.cli(['restore', '--repo', s3.repo, '--key', fx.key, snapshot, '--target', out, ...extra]);
  }

  it('500, 503, 429 SlowDown, resets, bodies cut mid-read, slow answers: backups and restores complete with retries, byte-exact', async () => {
    const injected = Object.fromEntries(Object.keys(FAULTS).map((k) => [k, 0]));
    let lost = 0;
    for (const [trial, n] of TRIALS.entries()) {
      // New data each trial, so chunks and packs are uploaded under the faults; any request may meet one.
      await writePseudoRandom(join(src, `trial-${trial}.bin`), 3 * MiB, `trial ${trial}`);
      const writes = rotating(n, () => true);
      proxy.rule = writes.rule;
      const backup = await s3.cli(['backup', '--repo', s3.repo, '--credentials', s3.cred, '--json', src]);
      proxy.rule = () => undefined;
      const snapshot = String(summaryOf(expectCode(backup, 0).stdout).snapshot_id);
      snapshots++;
      assert.equal((await storedSnapshots(server, prefix)).length, snapshots);
      // The snapshot points at nothing missing: all of it restores, every byte, through reads of its content
      // that fail too (metadata reads met faults in the backup already; content reads break mid-stream).
      const reads = rotating(n, (req) => req.method === 'GET' && /\/(chunks|packs)\//.test(req.path));
      proxy.rule = reads.rule;
      const out = join(fx.dir, `out-${trial}`);
      const restored = await restore(snapshot, out);
      proxy.rule = () => undefined;
      expectCode(restored, 0);
      lost += lostBytes(src, out);
      for (const kind of Object.keys(FAULTS)) {
        assert.equal(writes.counts[kind], PER_KIND, `backup ${trial}: ${kind}`);
        assert.equal(reads.counts[kind], PER_KIND, `restore ${trial}: ${kind}`);
        injected[kind] = injected[kind]! + writes.counts[kind]! + reads.counts[kind]!;
      }
    }
    assert.equal(lost, 0);
    for (const [kind, count] of Object.entries(injected)) {
      reportFigures({ scenario: `S3 ${kind}, backup and restore`, trials: TRIALS.length * 2, faultsInjected: count, dataLost: lost });
    }
  });

  it('a storage that keeps failing: the backup stops naming target and object, no snapshot, earlier ones intact', async () => {
    const before = await storedSnapshots(server, prefix);
    await writePseudoRandom(join(src, 'refused.bin'), 2 * MiB, 'refused');
    proxy.rule = (req) => (req.method === 'PUT' && req.path.includes('/chunks/') ? FAULTS['500 InternalError'] : undefined);
    const run = await s3.cli(['backup', '--repo', s3.repo, '--credentials', s3.cred, '--retries', '1', src]);
    proxy.rule = () => undefined;
    const message = failureMessage(run);
    assert.match(message, /^s3:\/\/kbrackup\/faults at http:\/\/127\.0\.0\.1:\d+ chunks\/[0-9a-f]{2}\/[0-9a-f]{64}: InternalError \(HTTP 500\).*gave up after 2 attempts/);
    assert.deepEqual(await storedSnapshots(server, prefix), before);
    const out = join(fx.dir, 'after-refusal');
    expectCode(await restore('latest', out), 0);
    assert.equal(lostBytes(src, out, ['big.bin']), 0);
    assert.deepEqual(partialFiles(src, out), []);
    reportFigures({ scenario: 'S3 permanent upload failure', trials: 1, snapshotsWritten: 0, dataLost: 0 });
  });

  it('a restore whose reads keep failing stops naming target and object, and leaves no partial file', async () => {
    proxy.rule = (req) => (req.method === 'GET' && req.path.includes('/chunks/') ? FAULTS['503 ServiceUnavailable'] : undefined);
    const out = join(fx.dir, 'failed-restore');
    const run = await restore('latest', out, '--retries', '1');
    proxy.rule = () => undefined;
    const message = failureMessage(run);
    assert.match(message, /^s3:\/\/kbrackup\/faults at http:\/\/127\.0\.0\.1:\d+ chunks\/[0-9a-f]{2}\/[0-9a-f]{64}: ServiceUnavailable \(HTTP 503\).*gave up after 2 attempts/);
    assert.deepEqual(partialFiles(src, out), []);
    reportFigures({ scenario: 'S3 permanent read failure during restore', trials: 1, partialFiles: 0, dataLost: 0 });
  });
});
