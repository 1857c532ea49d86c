import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import { LockedError } from '../src/errors.js';
import { ApiServer } from '../src/k8s/apiserver.js';
import { detectCluster } from '../src/k8s/cluster.js';
import { startKubernetes, type KubernetesOptions } from '../src/k8s/index.js';
import { leaseName, RepositoryLease } from '../src/k8s/lease.js';

/** One request the fake API server saw. */
interface Seen {
  method: string;
  path: string;
  auth: string | undefined;
  body: any;
}

/** A Lease as stored by the fake API server. */
interface StoredLease {
  metadata: { name: string; namespace: string; resourceVersion: string; [k: string]: unknown };
  spec: Record<string, any>;
  [k: string]: unknown;
}

/** Plays the API server: core/v1 Events and coordination.k8s.io/v1 Leases, with optimistic concurrency. */
class FakeApiServer {
  readonly seen: Seen[] = [];
  readonly leases = new Map<string, StoredLease>();
  /** Paths (prefixes) answered with 403 Forbidden. */
  readonly forbidden: string[] = [];
  /** Called before a request is handled, to simulate another job acting in between. */
  beforeHandle: ((req: Seen) => void) | undefined;
  #version = 100;
  #server: Server;
  port = 0;

  constructor(key: Buffer, cert: Buffer) {
    this.#server = createServer({ key, cert }, (req, res) => void this.#handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  reset(): void {
    this.seen.length = 0;
    this.leases.clear();
    this.forbidden.length = 0;
    this.beforeHandle = undefined;
  }

  /** Store a Lease as if another job had written it. */
  put(name: string, spec: Record<string, any>, namespace = 'apps'): void {
    this.leases.set(name, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace, resourceVersion: String(++this.#version) }, spec });
  }

  requests(method: string, pathPart: string): Seen[] {
    return this.seen.filter((s) => s.method === method && s.path.includes(pathPart));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const seen: Seen = { method: req.method ?? '', path: req.url ?? '', auth: req.headers.authorization, body: text ? JSON.parse(text) : undefined };
    this.seen.push(seen);
    this.beforeHandle?.(seen);
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    };
    const status = (code: number, reason: string, message: string): void => reply(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });
    if (seen.auth !== 'Bearer test-token') return status(401, 'Unauthorized', 'Unauthorized');
    if (this.forbidden.some((p) => seen.path.startsWith(p))) return status(403, 'Forbidden', `forbidden: User "system:serviceaccount:apps:default" cannot ${seen.method} ${seen.path}`);
    const event = /^\/api\/v1\/namespaces\/([^/]+)\/events$/.exec(seen.path);
    if (event && seen.method === 'POST') {
      return reply(201, { ...seen.body, metadata: { ...seen.body.metadata, name: `${seen.body.metadata.generateName}${this.#version++}` } });
    }
    const lease = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(seen.path);
    if (!lease) return status(404, 'NotFound', 'no such path');
    const [, namespace, name] = lease;
    if (seen.method === 'GET' && name) {
      const stored = this.leases.get(name);
      return stored ? reply(200, stored) : status(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`);
    }
    if (seen.method === 'POST' && !name) {
      const body = seen.body as StoredLease;
      if (this.leases.has(body.metadata.name)) return status(409, 'AlreadyExists', `leases.coordination.k8s.io "${body.metadata.name}" already exists`);
      const stored = { ...body, metadata: { ...body.metadata, namespace: namespace!, resourceVersion: String(++this.#version) } };
      this.leases.set(body.metadata.name, stored);
      return reply(201, stored);
    }
    if (seen.method === 'PUT' && name) {
      const current = this.leases.get(name);
      if (!current) return status(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`);
      if (seen.body.metadata?.resourceVersion !== current.metadata.resourceVersion) {
        return status(409, 'Conflict', `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified`);
      }
      const stored = { ...seen.body, metadata: { ...seen.body.metadata, resourceVersion: String(++this.#version) } } as StoredLease;
      this.leases.set(name, stored);
      return reply(200, stored);
    }
    return status(405, 'MethodNotAllowed', 'method not allowed');
  }
}

/** A pino logger whose lines the test can read. */
function capture(): { logger: Logger; lines: Array<{ level: number; msg: string; [k: string]: unknown }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

const MICRO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const REPO = 'sftp://backup:s3cret@nas.example:22/srv/kbrackup?token=abc';
const SAFE_REPO = 'sftp://backup@nas.example:22/srv/kbrackup';

describe('Kubernetes integration against a fake API server', () => {
  let dir: string;
  let saDir: string;
  let fake: FakeApiServer;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kbrackup-k8s-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=kubernetes', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    saDir = join(dir, 'serviceaccount');
    execFileSync('mkdir', ['-p', saDir]);
    writeFileSync(join(saDir, 'token'), 'test-token\n');
    writeFileSync(join(saDir, 'namespace'), 'apps');
    writeFileSync(join(saDir, 'ca.crt'), readFileSync(join(dir, 'cert.pem')));
    fake = new FakeApiServer(readFileSync(join(dir, 'key.pem')), readFileSync(join(dir, 'cert.pem')));
    await fake.start();
    env = {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(fake.port),
      POD_NAME: 'nightly-29000000-abcde',
      POD_UID: 'pod-uid-1',
      JOB_NAME: 'nightly-29000000',
      JOB_UID: 'job-uid-1',
      CRONJOB_NAME: 'nightly',
    };
  });

  after(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const options = (extra: Partial<KubernetesOptions> = {}): KubernetesOptions => ({
    mode: 'auto',
    repo: REPO,
    source: 'app',
    env,
    serviceAccountDir: saDir,
    pollIntervalMs: 10,
    ...extra,
  });

  test('detects the in-cluster API server from the service env vars and the service account', () => {
    const found = detectCluster('auto', env, saDir);
    assert.equal(found.config?.server, `https://127.0.0.1:${fake.port}`);
    assert.equal(found.config?.namespace, 'apps');
    assert.ok(found.config?.ca?.toString().includes('BEGIN CERTIFICATE'));
    assert.equal(detectCluster('auto', { ...env, POD_NAMESPACE: 'other' }, saDir).config?.namespace, 'other');
    assert.match(detectCluster('auto', {}, saDir).reason ?? '', /KUBERNETES_SERVICE_HOST/);
    assert.match(detectCluster('auto', env, join(dir, 'missing')).reason ?? '', /no service account token/);
    assert.equal(detectCluster('off', env, saDir).config, undefined);
  });

  test('outside a cluster it logs one line and does nothing', async () => {
    fake.reset();
    const { logger, lines } = capture();
    const session = await startKubernetes(options({ env: {}, serviceAccountDir: join(dir, 'missing') }), logger);
    await session.finish({ exitCode: 0, durationSeconds: 1 });
    await session.close();
    assert.equal(session.active, false);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!.msg, /not in a cluster/);
    assert.equal(fake.seen.length, 0);

    const off = capture();
    await startKubernetes(options({ mode: 'off' }), off.logger);
    assert.equal(off.lines.length, 0, 'off means silence');
    assert.equal(fake.seen.length, 0);
  });

  test('a backup takes the Lease, records Started and Succeeded on the Job, and releases the Lease', async () => {
    fake.reset();
    const { logger, lines } = capture();
    const session = await startKubernetes(options(), logger);
    assert.equal(session.active, true);
    const name = leaseName(SAFE_REPO);
    assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    assert.ok(name.length <= 63);

    const [create] = fake.requests('POST', '/leases');
    assert.equal(create?.path, '/apis/coordination.k8s.io/v1/namespaces/apps/leases');
    assert.equal(create?.auth, 'Bearer test-token');
    assert.equal(create?.body.metadata.name, name);
    assert.equal(create?.body.metadata.annotations['kbrackup.io/repository'], SAFE_REPO);
    assert.equal(create?.body.spec.holderIdentity, 'nightly-29000000-abcde');
    assert.equal(create?.body.spec.leaseDurationSeconds, 60);
    assert.match(create?.body.spec.renewTime, MICRO);
    assert.match(create?.body.spec.acquireTime, MICRO);

    const [started] = fake.requests('POST', '/events');
    assert.equal(started?.path, '/api/v1/namespaces/apps/events');
    assert.deepEqual(started?.body.involvedObject, { apiVersion: 'batch/v1', kind: 'Job', name: 'nightly-29000000', namespace: 'apps', uid: 'job-uid-1' });
    assert.equal(started?.body.reason, 'BackupStarted');
    assert.equal(started?.body.type, 'Normal');
    assert.equal(started?.body.metadata.generateName, 'nightly-29000000.');
    assert.equal(started?.body.reportingInstance, 'nightly-29000000-abcde');
    assert.match(started?.body.message, /^Backup of source app to sftp:\/\/backup@nas\.example:22\/srv\/kbrackup started$/);

    await session.finish({
      exitCode: 0,
      durationSeconds: 42.25,
      snapshotId: '1a2b3c4d5e6f',
      counters: { files_new: 10, files_changed: 2, files_unmodified: 988, total_files_processed: 1000, total_bytes_processed: 5 * 1024 ** 3, data_added: 12 * 1024 ** 2 },
    });
    const done = fake.requests('POST', '/events')[1];
    assert.equal(done?.body.reason, 'BackupSucceeded');
    assert.equal(done?.body.type, 'Normal');
    assert.equal(done?.body.message, 'Backup of source app to sftp://backup@nas.example:22/srv/kbrackup succeeded: snapshot 1a2b3c4d, 1000 files (5.00 GiB) processed, 10 new, 2 changed, 988 unmodified, 12.0 MiB added, 42.3 s');

    const release = fake.requests('PUT', `/leases/${name}`).at(-1);
    assert.equal(release?.body.spec.holderIdentity, undefined);
    assert.equal(release?.body.spec.leaseDurationSeconds, 1);
    assert.equal(fake.leases.get(name)?.spec.holderIdentity, undefined);

    for (const s of fake.seen) assert.doesNotMatch(JSON.stringify(s.body ?? ''), /s3cret|token=abc/);
    assert.ok(lines.every((l) => l.level < 40), 'no warnings on the happy path');

    await session.finish({ exitCode: 1, durationSeconds: 1 });
    await session.close();
    assert.equal(fake.requests('POST', '/events').length, 2, 'finish and close are idempotent');
  });

  test('partial and failed runs record Warning Events with their figures', async () => {
    fake.reset();
    const partial = await startKubernetes(options({ operation: 'restore' }), capture().logger);
    await partial.finish({ exitCode: 3, durationSeconds: 3, errors: 2, snapshotId: 'abcdef0123' });
    const failed = await startKubernetes(options({ operation: 'restore' }), capture().logger);
    await failed.finish({ exitCode: 12, durationSeconds: 0.5, error: 'wrong key: no recipient key opens this repository' });
    const events = fake.requests('POST', '/events').map((e) => e.body);
    assert.deepEqual(events.map((e) => [e.reason, e.type]), [
      ['RestoreStarted', 'Normal'],
      ['RestorePartial', 'Warning'],
      ['RestoreStarted', 'Normal'],
      ['RestoreFailed', 'Warning'],
    ]);
    assert.match(events[1].message, /partial: snapshot abcdef01, 2 errors, 3\.0 s, exit 3$/);
    assert.match(events[3].message, /failed: 0\.5 s, exit 12, wrong key: no recipient key opens this repository$/);
    assert.equal(fake.requests('POST', '/leases').length, 0, 'a restore takes no Lease');
  });

  test('takes over an expired Lease with the resourceVersion it read', async () => {
    fake.reset();
    const name = leaseName(SAFE_REPO);
    fake.put(name, { holderIdentity: 'crashed-pod', leaseDurationSeconds: 60, renewTime: new Date(Date.now() - 600_000).toISOString(), leaseTransitions: 4 });
    const rv = fake.leases.get(name)!.metadata.resourceVersion;
    const session = await startKubernetes(options(), capture().logger);
    const [takeover] = fake.requests('PUT', `/leases/${name}`);
    assert.equal(takeover?.body.metadata.resourceVersion, rv);
    assert.equal(takeover?.body.spec.holderIdentity, 'nightly-29000000-abcde');
    assert.equal(takeover?.body.spec.leaseTransitions, 5);
    assert.equal(fake.requests('POST', '/leases').length, 0);
    await session.close();
  });

  test('a live Lease held by another job: exit 11 with a clear message and a Failed Event', async () => {
    fake.reset();
    const name = leaseName(SAFE_REPO);
    fake.put(name, { holderIdentity: 'other-pod', leaseDurationSeconds: 60, renewTime: new Date().toISOString() });
    await assert.rejects(startKubernetes(options({ leaseWaitSeconds: 0 }), capture().logger), (err: unknown) => {
      assert.ok(err instanceof LockedError);
      assert.equal(err.exitCode, 11);
      assert.match(err.message, new RegExp(`in use: Lease apps/${name} is held by other-pod`));
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    assert.equal(fake.requests('PUT', '/leases').length, 0);
    assert.equal(fake.leases.get(name)?.spec.holderIdentity, 'other-pod');
    assert.deepEqual(fake.requests('POST', '/events').map((e) => e.body.reason), ['BackupFailed']);
  });

  test('waits while another job holds the Lease and takes it once released', async () => {
    fake.reset();
    const name = leaseName(SAFE_REPO);
    fake.put(name, { holderIdentity: 'other-pod', leaseDurationSeconds: 60, renewTime: new Date().toISOString() });
    let gets = 0;
    fake.beforeHandle = (req) => {
      if (req.method === 'GET' && ++gets === 3) fake.put(name, { leaseDurationSeconds: 1, renewTime: new Date().toISOString() });
    };
    const { logger, lines } = capture();
    const session = await startKubernetes(options({ leaseWaitSeconds: 600 }), logger);
    assert.equal(fake.leases.get(name)?.spec.holderIdentity, 'nightly-29000000-abcde');
    assert.equal(lines.filter((l) => /waiting up to 600 s/.test(l.msg)).length, 1, 'says once that it waits');
    await session.close();
  });

  test('stops waiting for the Lease when the run is cancelled', async () => {
    fake.reset();
    fake.put(leaseName(SAFE_REPO), { holderIdentity: 'other-pod', leaseDurationSeconds: 60, renewTime: new Date().toISOString() });
    const controller = new AbortController();
    fake.beforeHandle = () => controller.abort(new Error('SIGTERM'));
    await assert.rejects(startKubernetes(options({ leaseWaitSeconds: 600, signal: controller.signal }), capture().logger), /SIGTERM/);
  });

  test('409 on create: another job created the Lease first, so this one looks again and finds it held', async () => {
    fake.reset();
    const name = leaseName(SAFE_REPO);
    fake.beforeHandle = (req) => {
      if (req.method === 'POST' && req.path.endsWith('/leases')) fake.put(name, { holderIdentity: 'faster-pod', leaseDurationSeconds: 60, renewTime: new Date().toISOString() });
    };
    await assert.rejects(startKubernetes(options({ leaseWaitSeconds: 0 }), capture().logger), /held by faster-pod/);
    assert.deepEqual(fake.seen.filter((s) => s.path.includes('/leases')).map((s) => s.method), ['GET', 'POST', 'GET']);
  });

  test('409 on takeover: another job took the expired Lease in between', async () => {
    fake.reset();
    const name = leaseName(SAFE_REPO);
    fake.put(name, { holderIdentity: 'crashed-pod', leaseDurationSeconds: 60, renewTime: new Date(Date.now() - 600_000).toISOString() });
    fake.beforeHandle = (req) => {
      if (req.method === 'PUT') fake.put(name, { holderIdentity: 'faster-pod', leaseDurationSeconds: 60, renewTime: new Date().toISOString() });
    };
    await assert.rejects(startKubernetes(options({ leaseWaitSeconds: 0 }), capture().logger), /held by faster-pod/);
    assert.equal(fake.leases.get(name)?.spec.holderIdentity, 'faster-pod');
  });

  test('403 on leases: one clear line, the backup goes on and Events still work', async () => {
    fake.reset();
    fake.forbidden.push('/apis/coordination.k8s.io/');
    const { logger, lines } = capture();
    const session = await startKubernetes(options(), logger);
    assert.equal(session.active, true);
    await session.finish({ exitCode: 0, durationSeconds: 1 });
    const warnings = lines.filter((l) => l.level >= 40);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.msg, /may not get\/create\/update leases \(forbidden: .*\); carrying on without the repository Lease$/);
    assert.deepEqual(fake.requests('POST', '/events').map((e) => e.body.reason), ['BackupStarted', 'BackupSucceeded']);
  });

  test('403 on events: one clear line, no further Event attempts, the Lease still works', async () => {
    fake.reset();
    fake.forbidden.push('/api/v1/namespaces/apps/events');
    const { logger, lines } = capture();
    const session = await startKubernetes(options(), logger);
    await session.event('partial');
    await session.finish({ exitCode: 0, durationSeconds: 1 });
    const warnings = lines.filter((l) => l.level >= 40);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.msg, /may not create events \(forbidden: .*\); carrying on without Events$/);
    assert.equal(fake.requests('POST', '/events').length, 1);
    assert.equal(fake.leases.get(leaseName(SAFE_REPO))?.spec.leaseDurationSeconds, 1, 'released');
  });

  test('an unreachable API server is a warning, never a failed backup', async () => {
    const { logger, lines } = capture();
    const session = await startKubernetes(options({ env: { ...env, KUBERNETES_SERVICE_PORT: '1' } }), logger);
    await session.finish({ exitCode: 0, durationSeconds: 1 });
    assert.equal(lines.filter((l) => l.level >= 40).length, 2, 'one line for the Lease, one for Events');
  });

  test('renews the Lease while held, and notices when it was lost', async () => {
    fake.reset();
    const { logger, lines } = capture();
    const api = new ApiServer({ server: `https://127.0.0.1:${fake.port}`, tokenFile: join(saDir, 'token'), ca: readFileSync(join(saDir, 'ca.crt')), namespace: 'apps' });
    const lease = new RepositoryLease(api, { repository: 's3://bucket/x', holder: 'me', durationSeconds: 15, waitSeconds: 0, pollIntervalMs: 10, renewIntervalMs: 10 }, logger);
    await lease.acquire();
    const first = fake.leases.get(lease.name)!.spec.renewTime as string;
    while (fake.requests('PUT', `/leases/${lease.name}`).length < 3) await sleep(5);
    const renewed = fake.leases.get(lease.name)!.spec;
    assert.equal(renewed.holderIdentity, 'me');
    assert.match(renewed.renewTime, MICRO);
    assert.ok(renewed.renewTime >= first);

    fake.put(lease.name, { holderIdentity: 'thief', leaseDurationSeconds: 15, renewTime: new Date().toISOString() });
    while (!lines.some((l) => /lost the repository Lease to thief/.test(l.msg))) await sleep(5);
    const puts = fake.requests('PUT', '/leases').length;
    await sleep(50);
    assert.equal(fake.requests('PUT', '/leases').length, puts, 'no renewals after the Lease was lost');
    await lease.release();
    assert.equal(fake.leases.get(lease.name)?.spec.holderIdentity, 'thief', 'release leaves the new holder alone');
  });
});
