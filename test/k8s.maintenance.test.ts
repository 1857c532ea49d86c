import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_ACCOUNT_DIR } from '../src/k8s/cluster.js';
import { runCli, type RunResult } from './helpers/cli.js';
import { FakeApiServer, selfSignedCert, writeServiceAccount, type Seen } from './helpers/fake-apiserver.js';
import { deleteObject, objectNames } from './helpers/forge.js';
import { expectCode, makeFixture, type Fixture } from './helpers/repo.js';

/**
 * forget, prune and check as a CronJob's pod runs them: the built CLI in a child process, finding the
 * cluster as in a pod (KUBERNETES_SERVICE_* and the service account at its fixed path). The path is
 * given to the child alone through a private mount namespace over /run (/var/run links to it), so
 * nothing on the machine changes; that needs root and util-linux `unshare`, which the suite has.
 */
const JOB = { apiVersion: 'batch/v1', kind: 'Job', name: 'kb-maintenance-29000000', namespace: 'apps', uid: 'job-uid-7' };
const POD_NAME = 'kb-maintenance-29000000-xyz12';
/** Bounds every CLI run: a hung run fails the test instead of stalling the suite. */
const RUN_TIMEOUT_MS = 120_000;

describe('forget, prune and check record Events and hold the Lease through the CLI (fake API server)', () => {
  let dir: string;
  let saDir: string;
  let fake: FakeApiServer;
  let fx: Fixture;
  let env: NodeJS.ProcessEnv;

  /** `sh -c` script: a tmpfs over /run, the service account copied to its place, then node. Its $1 is the folder to copy. */
  const MOUNT = `set -e; from=$1; shift; mount -t tmpfs none /run; mkdir -p ${SERVICE_ACCOUNT_DIR}; cp "$from"/* ${SERVICE_ACCOUNT_DIR}/; exec "$@"`;
  const inPod = (args: string[]): Promise<RunResult> =>
    runCli([...args, '--repo', fx.repo, '--credentials', fx.cred], { env, timeout: RUN_TIMEOUT_MS, wrap: ['unshare', '-m', 'sh', '-c', MOUNT, 'sh', saDir] });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kbrackup-k8s-maintenance-'));
    const { key, cert } = selfSignedCert(dir);
    saDir = join(dir, 'serviceaccount');
    writeServiceAccount(saDir, cert);
    // The mount is the only way the CLI finds a service account: without it every test here would fail for an unclear reason.
    const probe = spawnSync('unshare', ['-m', 'sh', '-c', MOUNT, 'sh', saDir, 'cat', join(SERVICE_ACCOUNT_DIR, 'namespace')], { encoding: 'utf8', timeout: 10_000 });
    if (probe.error || probe.status !== 0 || probe.stdout !== 'apps') {
      throw new Error(`these tests give the CLI a service account at ${SERVICE_ACCOUNT_DIR} through \`unshare -m\` and a tmpfs over /run, which needs root and util-linux: ${probe.error?.message ?? `exit ${probe.status}: ${probe.stderr}`}`);
    }
    fake = new FakeApiServer(key, cert);
    await fake.start();
    env = {
      ...process.env,
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: String(fake.port),
      POD_NAME,
      POD_UID: 'pod-uid-7',
      JOB_NAME: JOB.name,
      JOB_UID: JOB.uid,
      CRONJOB_NAME: 'kb-maintenance',
    };
    fx = await makeFixture();
    const src = join(fx.dir, 'src');
    await mkdir(src);
    for (const version of ['one', 'two']) {
      await writeFile(join(src, 'a.txt'), `${version}\n`);
      expectCode(await runCli(['backup', '--repo', fx.repo, '--credentials', fx.cred, src], { env: { ...process.env, KBRACKUP_KUBERNETES: 'off' }, timeout: RUN_TIMEOUT_MS }), 0);
    }
  });

  after(async () => {
    await fake?.stop();
    await fx?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * What one run asked of the API server: the Lease taken for this pod before its first Event and
   * given up after its last, and the Events on the Job, which are returned.
   */
  function leaseAndEvents(run: RunResult): Seen[] {
    const seen = fake.seen;
    const events = seen.filter((s) => s.method === 'POST' && s.path === '/api/v1/namespaces/apps/events');
    const creates = seen.filter((s) => s.method === 'POST' && s.path === '/apis/coordination.k8s.io/v1/namespaces/apps/leases');
    assert.ok(events.length > 0, `no Events: ${run.stderr}`);
    assert.equal(creates.length, 1, `one Lease created: ${run.stderr}`);
    assert.equal(creates[0]!.body.spec.holderIdentity, POD_NAME);
    const name = creates[0]!.body.metadata.name as string;
    const release = seen.filter((s) => s.method === 'PUT' && s.path.endsWith(`/leases/${name}`)).at(-1);
    assert.ok(release, `the Lease was released: ${run.stderr}`);
    assert.equal(release.body.spec.holderIdentity, undefined);
    assert.ok(seen.indexOf(creates[0]!) < seen.indexOf(events[0]!), 'the Lease is held before the first Event');
    assert.ok(seen.indexOf(release) > seen.indexOf(events.at(-1)!), 'and given up after the last');
    assert.deepEqual([...fake.leases.keys()], [name]);
    assert.equal(fake.leases.get(name)!.spec.holderIdentity, undefined, 'nobody holds it afterwards');
    for (const e of events) {
      assert.deepEqual(e.body.involvedObject, JOB);
      assert.equal(e.auth, 'Bearer test-token');
    }
    return events;
  }

  it('forget: ForgetStarted and ForgetSucceeded on the Job, inside the Lease', async () => {
    fake.reset();
    const run = expectCode(await inPod(['forget', '--keep-last', '1']), 0);
    assert.equal(JSON.parse(expectCode(await runCli(['snapshots', '--repo', fx.repo, '--credentials', fx.cred, '--json'], { timeout: RUN_TIMEOUT_MS }), 0).stdout).length, 1, 'forget removed the older snapshot');
    const events = leaseAndEvents(run);
    assert.deepEqual(events.map((e) => [e.body.reason, e.body.type]), [
      ['ForgetStarted', 'Normal'],
      ['ForgetSucceeded', 'Normal'],
    ]);
    assert.equal(events[0]!.body.message, `Forget of ${fx.repo} started`);
    assert.match(events[1]!.body.message, new RegExp(`^Forget of ${fx.repo} succeeded: \\d+\\.\\d s$`));
  });

  it('prune: PruneStarted and PruneSucceeded on the Job, inside the Lease', async () => {
    fake.reset();
    const run = expectCode(await inPod(['prune', '--grace', '0s']), 0);
    assert.deepEqual(leaseAndEvents(run).map((e) => [e.body.reason, e.body.type]), [
      ['PruneStarted', 'Normal'],
      ['PruneSucceeded', 'Normal'],
    ]);
  });

  it('check that finds a missing object: CheckStarted, then CheckFailed as a Warning with exit 1, inside the Lease', async () => {
    const [pack] = await objectNames(fx, 'packs');
    assert.ok(pack, 'the backups stored their small file in a pack');
    await deleteObject(fx, pack);
    fake.reset();
    const run = expectCode(await inPod(['check']), 1);
    assert.match(run.stdout + run.stderr, new RegExp(pack));
    const events = leaseAndEvents(run);
    assert.deepEqual(events.map((e) => [e.body.reason, e.body.type]), [
      ['CheckStarted', 'Normal'],
      ['CheckFailed', 'Warning'],
    ]);
    assert.match(events[1]!.body.message, new RegExp(`^Check of ${fx.repo} failed: \\d+\\.\\d s, exit 1$`));
  });
});
