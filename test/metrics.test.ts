import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { pushMetrics } from '../src/observe/metrics.js';
import { pruneStaleGroups } from '../src/observe/metrics-prune.js';
import { redactRepository } from '../src/observe/repository-label.js';

interface Push {
  method: string;
  path: string;
  auth: string | undefined;
  body: string;
}

function capture(): { logger: Logger; lines: Array<{ level: number; msg: string; pushgateway?: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  return { logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) }), lines };
}

/** The value of one sample line of the exposition text, or undefined. */
function sample(body: string, name: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('Pushgateway metrics', () => {
  let server: Server;
  let base: string;
  const pushes: Push[] = [];
  let status = 200;
  /** What GET /api/v1/metrics answers: the groups the gateway holds. */
  let groups: Array<{ labels: Record<string, string> }> = [];

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        pushes.push({ method: req.method ?? '', path: req.url ?? '', auth: req.headers.authorization, body: Buffer.concat(chunks).toString('utf8') });
        if (req.method === 'GET' && req.url === '/api/v1/metrics' && status === 200) {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 'success', data: groups }));
          return;
        }
        res.writeHead(status).end(status === 200 ? '' : 'pushgateway says no');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('redacts repository URLs for labels', () => {
    assert.equal(redactRepository('sftp://u:pw@host:2222/srv/repo?x=1#y'), 'sftp://u@host:2222/srv/repo');
    assert.equal(redactRepository('s3://bucket/prefix/'), 's3://bucket/prefix');
    assert.equal(redactRepository('/mnt/repo'), '/mnt/repo');
    assert.equal(redactRepository('file:///mnt/repo'), 'file:///mnt/repo');
  });

  test('a successful run is POSTed to /metrics/job/kbrackup with source and repository as grouping key', async () => {
    pushes.length = 0;
    status = 200;
    const { logger, lines } = capture();
    const before = Date.now() / 1000;
    await pushMetrics(
      `${base}/`,
      { source: 'app', repository: 'sftp://backup:s3cret@nas:22/srv/repo' },
      {
        exitCode: 0,
        durationSeconds: 42.25,
        snapshotId: 'abc',
        errors: 0,
        counters: { files_new: 10, files_changed: 2, files_unmodified: 988, total_files_processed: 1000, total_bytes_processed: 123456789, data_added: 4096, data_added_packed: 2048 },
      },
      logger,
    );
    assert.equal(pushes.length, 1);
    const push = pushes[0]!;
    assert.equal(push.method, 'POST', 'POST replaces only the pushed metric names of the group');
    const repoB64 = Buffer.from('sftp://backup@nas:22/srv/repo').toString('base64url');
    assert.equal(push.path, `/metrics/job/kbrackup/source/app/repository%40base64/${repoB64}`);
    assert.doesNotMatch(push.path + push.body, /s3cret/);
    assert.match(push.body, /^# HELP kbrackup_backup_duration_seconds .+\n# TYPE kbrackup_backup_duration_seconds gauge\n/m);
    assert.equal(sample(push.body, 'kbrackup_backup_duration_seconds'), 42.25);
    assert.equal(sample(push.body, 'kbrackup_backup_exit_code'), 0);
    assert.equal(sample(push.body, 'kbrackup_backup_errors'), 0);
    assert.equal(sample(push.body, 'kbrackup_backup_files_processed'), 1000);
    assert.equal(sample(push.body, 'kbrackup_backup_bytes_processed'), 123456789);
    assert.equal(sample(push.body, 'kbrackup_backup_files_new'), 10);
    assert.equal(sample(push.body, 'kbrackup_backup_files_changed'), 2);
    assert.equal(sample(push.body, 'kbrackup_backup_files_unmodified'), 988);
    assert.equal(sample(push.body, 'kbrackup_backup_bytes_added'), 4096);
    assert.equal(sample(push.body, 'kbrackup_backup_bytes_added_packed'), 2048);
    const success = sample(push.body, 'kbrackup_backup_last_success_timestamp_seconds');
    assert.ok(success !== undefined && success >= before);
    assert.equal(sample(push.body, 'kbrackup_backup_last_run_timestamp_seconds'), success);
    for (const line of push.body.split('\n').filter((l) => l && !l.startsWith('#'))) {
      assert.match(line, /^kbrackup_[a-z_]+ [0-9.e+]+$/, 'labels come from the grouping key only');
    }
    assert.ok(lines.every((l) => l.level < 40));
  });

  test('in a pod the namespace joins the grouping key; a partial run moves the snapshot time, not the success time', async () => {
    pushes.length = 0;
    status = 200;
    await pushMetrics(base, { source: 'app', repository: 's3://bucket/x' }, { exitCode: 3, durationSeconds: 2, errors: 4 }, capture().logger, { POD_NAMESPACE: 'shop' });
    const push = pushes[0]!;
    assert.equal(push.path, `/metrics/job/kbrackup/namespace/shop/source/app/repository%40base64/${Buffer.from('s3://bucket/x').toString('base64url')}`);
    assert.equal(sample(push.body, 'kbrackup_backup_exit_code'), 3);
    assert.equal(sample(push.body, 'kbrackup_backup_errors'), 4);
    assert.equal(sample(push.body, 'kbrackup_backup_last_success_timestamp_seconds'), undefined);
    assert.equal(sample(push.body, 'kbrackup_backup_last_snapshot_timestamp_seconds'), sample(push.body, 'kbrackup_backup_last_run_timestamp_seconds'));
  });

  test('prune deletes the groups of removed sets (and of a changed repository) in its namespace only', async () => {
    pushes.length = 0;
    status = 200;
    groups = [
      { labels: { job: 'kbrackup', namespace: 'shop', source: 'db', repository: 's3://bucket/shop' } },
      { labels: { job: 'kbrackup', namespace: 'shop', source: 'removed', repository: 's3://bucket/shop' } },
      { labels: { job: 'kbrackup', namespace: 'shop', source: 'moved', repository: 's3://bucket/old' } },
      { labels: { job: 'kbrackup', namespace: 'other', source: 'removed', repository: 's3://bucket/other' } },
      { labels: { job: 'something-else', namespace: 'shop', source: 'removed' } },
    ];
    const url = base.replace('http://', 'http://metrics:pa55@');
    const result = await pruneStaleGroups(url, 'shop', new Map([['db', 's3://bucket/shop'], ['moved', 's3://bucket/new']]), capture().logger);
    assert.deepEqual(result, { deleted: ['shop/removed s3://bucket/shop', 'shop/moved s3://bucket/old'], kept: 1 });
    const deletes = pushes.filter((p) => p.method === 'DELETE');
    assert.deepEqual(deletes.map((d) => d.path), [
      `/metrics/job/kbrackup/namespace/shop/source/removed/repository%40base64/${Buffer.from('s3://bucket/shop').toString('base64url')}`,
      `/metrics/job/kbrackup/namespace/shop/source/moved/repository%40base64/${Buffer.from('s3://bucket/old').toString('base64url')}`,
    ]);
    assert.ok(pushes.every((p) => p.auth === `Basic ${Buffer.from('metrics:pa55').toString('base64')}`), 'credentials of the URL become basic auth');

    status = 500;
    const { logger, lines } = capture();
    assert.deepEqual(await pruneStaleGroups(base, 'shop', new Map(), logger), { deleted: [], kept: 0 });
    assert.equal(lines.filter((l) => l.level === 40).length, 1, 'an unreachable or failing gateway is one warning');
  });

  test('a failed run keeps the last success: no success timestamp, no snapshot figures', async () => {
    pushes.length = 0;
    status = 200;
    await pushMetrics(`${base}/prefix`, { source: '', repository: 's3://bucket/x' }, { exitCode: 11, durationSeconds: 0.5, error: 'locked' }, capture().logger);
    const push = pushes[0]!;
    assert.equal(push.path, `/prefix/metrics/job/kbrackup/source%40base64/%3D/repository%40base64/${Buffer.from('s3://bucket/x').toString('base64url')}`);
    assert.equal(sample(push.body, 'kbrackup_backup_exit_code'), 11);
    assert.equal(sample(push.body, 'kbrackup_backup_last_success_timestamp_seconds'), undefined);
    assert.equal(sample(push.body, 'kbrackup_backup_files_processed'), undefined);
    assert.ok(sample(push.body, 'kbrackup_backup_last_run_timestamp_seconds'));
  });

  test('credentials in the gateway URL become basic auth and never reach the log', async () => {
    pushes.length = 0;
    status = 500;
    const { logger, lines } = capture();
    const url = base.replace('http://', 'http://metrics:pa55@');
    await pushMetrics(url, { source: 'app', repository: '/repo' }, { exitCode: 0, durationSeconds: 1 }, logger);
    assert.equal(pushes[0]!.auth, `Basic ${Buffer.from('metrics:pa55').toString('base64')}`);
    assert.equal(pushes[0]!.path, `/metrics/job/kbrackup/source/app/repository%40base64/${Buffer.from('/repo').toString('base64url')}`);
    const warnings = lines.filter((l) => l.level === 40);
    assert.equal(warnings.length, 1, 'a failed push is one warning');
    assert.match(warnings[0]!.msg, /could not push metrics/);
    assert.doesNotMatch(JSON.stringify(lines), /pa55/);
  });

  test('an unreachable gateway is a warning, not an error', async () => {
    const { logger, lines } = capture();
    await pushMetrics('http://127.0.0.1:1', { source: 'app', repository: '/repo' }, { exitCode: 0, durationSeconds: 1 }, logger);
    assert.equal(lines.filter((l) => l.level >= 40).length, 1);
    const bad = capture();
    await pushMetrics('not a url', { source: 'app', repository: '/repo' }, { exitCode: 0, durationSeconds: 1 }, bad.logger);
    assert.equal(bad.lines.filter((l) => l.level >= 40).length, 1);
  });
});
