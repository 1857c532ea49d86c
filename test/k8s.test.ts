import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import { KubeConfig } from '@kubernetes/client-node';
import { CancelledError, LockedError } from '../src/errors.js';
import { ApiServer } from '../src/k8s/apiserver.js';
import { detectCluster } from '../src/k8s/cluster.js';
import { startKubernetes, type KubernetesOptions } from '../src/k8s/index.js';
import { kubeClients, type KubeClients } from '../src/k8s/kube-client.js';
import { leaseName, RepositoryLease } from '../src/k8s/lease.js';
import { childName, SnapshotBackup, SnapshotBackupError, type SnapshotBackupOptions } from '../src/k8s/snapshot-backup.js';
import { validatePlan } from '../src/k8s/snapshot-plan.js';
import { FakeApiServer, selfSignedCert, writeServiceAccount } from './helpers/fake-apiserver.js';
import { byKind, CI, render } from './helpers/helm.js';
import { waitUntil } from './helpers/wait.js';

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
    const { key, cert } = selfSignedCert(dir);
    saDir = join(dir, 'serviceaccount');
    writeServiceAccount(saDir, cert);
    fake = new FakeApiServer(key, cert);
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
    await waitUntil(() => fake.requests('PUT', `/leases/${lease.name}`).length >= 3, 'three renewals of the Lease');
    const renewed = fake.leases.get(lease.name)!.spec;
    assert.equal(renewed.holderIdentity, 'me');
    assert.match(renewed.renewTime, MICRO);
    assert.ok(renewed.renewTime >= first);

    fake.put(lease.name, { holderIdentity: 'thief', leaseDurationSeconds: 15, renewTime: new Date().toISOString() });
    await waitUntil(() => lines.some((l) => /lost the repository Lease to thief/.test(l.msg)), 'the log line saying the Lease was lost');
    const puts = fake.requests('PUT', '/leases').length;
    await sleep(50);
    assert.equal(fake.requests('PUT', '/leases').length, puts, 'no renewals after the Lease was lost');
    await lease.release();
    assert.equal(fake.leases.get(lease.name)?.spec.holderIdentity, 'thief', 'release leaves the new holder alone');
  });
});

/** A backup Job as the chart renders it for a set with one snapshot source and one plain PVC source. */
const PLAN_JOB = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { labels: { 'app.kubernetes.io/component': 'backup', 'kbrackup.io/backup-set': 'db' } },
  spec: {
    backoffLimit: 0,
    activeDeadlineSeconds: 60,
    template: {
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'kbrackup', image: 'kbrackup:test', args: ['backup', '/data'] }],
        volumes: [
          { name: 'temp', emptyDir: { sizeLimit: '1Gi' } },
          { name: 'source-db', persistentVolumeClaim: { claimName: 'pg-data', readOnly: true } },
          { name: 'source-files', persistentVolumeClaim: { claimName: 'files', readOnly: true } },
        ],
      },
    },
  },
};

describe('volume snapshot backups against a fake API server (client-node)', () => {
  let dir: string;
  let fake: FakeApiServer;
  let api: KubeClients;
  const owner = { jobName: 'kb-kbrackup-db-29000000', jobUid: 'orchestrator-uid' };
  const plan = validatePlan({ job: PLAN_JOB, snapshots: [{ volume: 'source-db', persistentVolumeClaim: 'pg-data', volumeSnapshotClassName: 'csi-snap' }] }, 'test plan');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kbrackup-k8s-snap-'));
    const { key, cert } = selfSignedCert(dir);
    fake = new FakeApiServer(key, cert);
    await fake.start();
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: `https://127.0.0.1:${fake.port}`, caData: cert.toString('base64') }],
      users: [{ name: 'sa', token: 'test-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'sa' }],
      currentContext: 'fake',
    });
    api = kubeClients(kc, 5000);
  });

  after(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The live PVC, and controllers that make snapshots ready after `readyAfter` reads and finish the backup Job with `exitCode`. */
  function cluster(options: { readyAfter?: number; exitCode?: number; snapshotError?: string; jobNeverFinishes?: boolean } = {}): void {
    fake.reset();
    fake.set('persistentvolumeclaims', { metadata: { name: 'pg-data' }, spec: { storageClassName: 'fast', resources: { requests: { storage: '10Gi' } } }, status: { phase: 'Bound' } });
    let reads = 0;
    fake.beforeHandle = (req) => {
      const snapshot = /\/volumesnapshots\/(.+)$/.exec(req.path)?.[1];
      const stored = snapshot ? fake.store('volumesnapshots').get(snapshot) : undefined;
      if (req.method === 'GET' && stored) {
        if (options.snapshotError) stored.status = { readyToUse: false, error: { message: options.snapshotError } };
        else if (++reads >= (options.readyAfter ?? 2)) stored.status = { readyToUse: true, restoreSize: '12Gi' };
      }
      const job = /\/jobs\/(.+)$/.exec(req.path)?.[1];
      const storedJob = job ? fake.store('jobs').get(job) : undefined;
      if (req.method === 'GET' && storedJob && !options.jobNeverFinishes && !storedJob.status) {
        const code = options.exitCode ?? 0;
        storedJob.status = { conditions: [{ type: code === 0 ? 'Complete' : 'Failed', status: 'True' }] };
        fake.set('pods', {
          metadata: { name: `${job}-abcde`, labels: { 'batch.kubernetes.io/job-name': job! } },
          status: { containerStatuses: [{ name: 'kbrackup', ready: false, restartCount: 0, image: 'x', imageID: 'x', state: { terminated: { exitCode: code, finishedAt: new Date().toISOString() } } }] },
        });
      }
    };
  }

  const flow = (extra: Partial<SnapshotBackupOptions> = {}, logger = capture().logger): SnapshotBackup =>
    new SnapshotBackup(api, { plan, namespace: 'apps', owner, readyTimeoutMs: 5000, pollIntervalMs: 10, ...extra }, logger);

  test('snapshots the PVC, clones it, runs the backup Job on the clone, then deletes clone and snapshot', async () => {
    cluster();
    assert.equal(await flow().run(), 0);
    const name = 'kb-kbrackup-db-29000000-source-db';
    const [snapshot] = fake.requests('POST', '/volumesnapshots');
    assert.equal(snapshot?.path, '/apis/snapshot.storage.k8s.io/v1/namespaces/apps/volumesnapshots');
    assert.deepEqual(snapshot?.body.spec, { source: { persistentVolumeClaimName: 'pg-data' }, volumeSnapshotClassName: 'csi-snap' });
    assert.equal(snapshot?.body.metadata.name, name);
    assert.equal(snapshot?.body.metadata.labels['kbrackup.io/snapshot-job'], owner.jobName);
    assert.deepEqual(snapshot?.body.metadata.ownerReferences, [{ apiVersion: 'batch/v1', kind: 'Job', name: owner.jobName, uid: 'orchestrator-uid', controller: false, blockOwnerDeletion: false }]);

    const [claim] = fake.requests('POST', '/persistentvolumeclaims');
    assert.equal(claim?.body.metadata.name, name);
    assert.deepEqual(claim?.body.spec, {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '12Gi' } },
      dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name },
      storageClassName: 'fast',
    });

    const [job] = fake.requests('POST', '/jobs');
    assert.equal(job?.path, '/apis/batch/v1/namespaces/apps/jobs');
    assert.equal(job?.body.metadata.name, 'kb-kbrackup-db-29000000-backup');
    assert.equal(job?.body.metadata.labels['kbrackup.io/backup-set'], 'db', 'the rendered labels stay');
    assert.deepEqual(job?.body.spec.template.spec.volumes, [
      { name: 'temp', emptyDir: { sizeLimit: '1Gi' } },
      { name: 'source-db', persistentVolumeClaim: { claimName: name, readOnly: true } },
      { name: 'source-files', persistentVolumeClaim: { claimName: 'files', readOnly: true } },
    ]);
    assert.deepEqual(job?.body.spec.template.spec.containers, PLAN_JOB.spec.template.spec.containers);

    const order = fake.seen.filter((s) => s.method !== 'GET').map((s) => `${s.method} ${s.path.split('/').slice(-2).join('/')}`);
    assert.deepEqual(order, ['POST apps/volumesnapshots', 'POST apps/persistentvolumeclaims', 'POST apps/jobs', `DELETE persistentvolumeclaims/${name}`, `DELETE volumesnapshots/${name}`]);
    assert.equal(fake.store('jobs').size, 1, 'the finished backup Job stays for its logs');
    assert.equal(fake.store('volumesnapshots').size + fake.store('persistentvolumeclaims').size, 1, 'only the live PVC is left');
  });

  test('the backup exit code is passed on (3 = partial), and cleanup still runs', async () => {
    cluster({ exitCode: 3 });
    assert.equal(await flow().run(), 3);
    assert.equal(fake.store('volumesnapshots').size, 0);
    assert.deepEqual([...fake.store('persistentvolumeclaims').keys()], ['pg-data']);
  });

  test('a failed snapshot stops with its error; nothing is cloned or backed up', async () => {
    cluster({ snapshotError: 'Failed to create snapshot: rpc error: code = Internal desc = out of quota' });
    await assert.rejects(flow().run(), (err: unknown) => {
      assert.ok(err instanceof SnapshotBackupError);
      assert.equal(err.message, 'VolumeSnapshot apps/kb-kbrackup-db-29000000-source-db failed: Failed to create snapshot: rpc error: code = Internal desc = out of quota');
      return true;
    });
    assert.equal(fake.requests('POST', '/persistentvolumeclaims').length + fake.requests('POST', '/jobs').length, 0);
    assert.equal(fake.store('volumesnapshots').size, 0, 'the snapshot is deleted again');
  });

  test('a snapshot that never becomes ready times out with a message saying where to look', async () => {
    cluster({ readyAfter: Number.POSITIVE_INFINITY });
    await assert.rejects(flow({ readyTimeoutMs: 100 }).run(), /is not readyToUse after 0 s \(KBRACKUP_SNAPSHOT_TIMEOUT\); check its VolumeSnapshotClass/);
    assert.equal(fake.store('volumesnapshots').size, 0);
  });

  test('SIGTERM while the backup runs: the backup Job is deleted (its pod stops), then clone and snapshot', async () => {
    cluster({ jobNeverFinishes: true });
    const controller = new AbortController();
    const running = flow({ signal: controller.signal }).run();
    await waitUntil(() => fake.requests('GET', '/jobs/').length >= 2, 'the flow to wait for the backup Job');
    controller.abort(new CancelledError('SIGTERM'));
    await assert.rejects(running, (err: unknown) => err instanceof CancelledError && err.exitCode === 143);
    const [deleted] = fake.requests('DELETE', '/jobs/');
    assert.equal(deleted?.query.get('propagationPolicy'), 'Background', 'the pod goes with the Job');
    assert.equal(fake.store('jobs').size + fake.store('volumesnapshots').size, 0);
    assert.deepEqual([...fake.store('persistentvolumeclaims').keys()], ['pg-data']);
  });

  test('a retried pod reuses what its first try made; an object of the same name made by others is left alone', async () => {
    cluster();
    const name = 'kb-kbrackup-db-29000000-source-db';
    const labels = { 'kbrackup.io/snapshot-job': owner.jobName };
    fake.set('volumesnapshots', { metadata: { name, labels }, spec: {} });
    fake.set('persistentvolumeclaims', { metadata: { name, labels }, spec: {} });
    assert.equal(await flow().run(), 0);
    assert.equal(fake.requests('POST', '/jobs').length, 1);

    cluster();
    fake.set('volumesnapshots', { metadata: { name, labels: { 'kbrackup.io/snapshot-job': 'someone-else' } }, spec: {} });
    await assert.rejects(flow().run(), new RegExp(`VolumeSnapshot apps/${name} exists and was not made by Job ${owner.jobName}; refusing to touch it`));
    assert.equal(fake.store('volumesnapshots').get(name)?.metadata.labels?.['kbrackup.io/snapshot-job'], 'someone-else', 'not deleted');
  });

  test('a missing source PVC or missing RBAC is one clear line, and nothing is left behind', async () => {
    cluster();
    fake.store('persistentvolumeclaims').clear();
    await assert.rejects(flow().run(), /^SnapshotBackupError: PersistentVolumeClaim apps\/pg-data does not exist: sources\[\]\.volumeSnapshot\.persistentVolumeClaim must name a PVC in the release namespace$/);
    cluster();
    fake.forbidden.push('/apis/snapshot.storage.k8s.io/');
    await assert.rejects(flow().run(), (err: unknown) => {
      assert.match(String(err), /Kubernetes API POST volumesnapshots \(kb-kbrackup-db-29000000-source-db\): 403 forbidden: /);
      assert.doesNotMatch(String(err), /\n/);
      return true;
    });
    assert.equal(fake.requests('POST', '/jobs').length, 0);
  });

  test("the chart's rendered plan drives the flow: its backup Job is created with the clone in place of the live PVC", async () => {
    cluster();
    const rendered = byKind(render(`${CI}/snapshot-values.yaml`), 'ConfigMap')[0]!;
    const chartPlan = validatePlan(JSON.parse(rendered.data['plan.json']), 'rendered plan');
    assert.equal(await flow({ plan: chartPlan }).run(), 0);
    const [job] = fake.requests('POST', '/jobs');
    const volumes = job?.body.spec.template.spec.volumes as Array<{ name: string; persistentVolumeClaim?: { claimName: string } }>;
    assert.equal(volumes.find((v) => v.name === 'source-pgdata')?.persistentVolumeClaim?.claimName, 'kb-kbrackup-db-29000000-source-pgdata');
    assert.equal(volumes.find((v) => v.name === 'source-config')?.persistentVolumeClaim?.claimName, 'pg-config', 'plain PVC sources stay');
    assert.equal(job?.body.spec.template.spec.containers[0].args[0], 'backup');
    assert.equal(job?.body.spec.template.spec.automountServiceAccountToken, true, 'the backup pod records Events and holds the Lease');
    assert.equal(job?.body.metadata.labels['kbrackup.io/snapshot-job'], owner.jobName);
  });

  test('names stay DNS labels of at most 63 characters', () => {
    assert.equal(childName('short', 'backup'), 'short-backup');
    const long = childName('a-very-long-cronjob-name-for-the-nightly-backup-set-29000000', 'source-database');
    assert.ok(long.length <= 63);
    assert.match(long, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    assert.notEqual(long, childName('a-very-long-cronjob-name-for-the-nightly-backup-set-29000000', 'source-database2'));
  });
});
