import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Ajv } from 'ajv';
import { leaseName } from '../src/k8s/lease.js';
import { validatePlan } from '../src/k8s/snapshot-plan.js';
import { redactRepository } from '../src/observe/repository-label.js';
import { byKind, CHART, CI, container, env, mergedValues, podSpec, render, renderError, ROOT, valuesFile, yamlDocs, type Obj, type Rendered } from './helpers/helm.js';

/** Validate against the Kubernetes OpenAPI schema of its kind (kubernetes-models); throws with the field paths. */
async function validateK8s(doc: Obj): Promise<void> {
  const mod = (await import(`kubernetes-models/${doc.apiVersion}/${doc.kind}`)) as Record<string, new (data: Obj) => { validate(): void }>;
  const Model = mod[doc.kind];
  assert.ok(Model, `kubernetes-models knows ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

/** Prometheus Operator kinds: kubernetes-models has no schema for them, so their shape is asserted by the tests. */
const OPERATOR_KINDS = new Set(['ServiceMonitor', 'PrometheusRule']);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const FAILURE_RULES = (partialIsFailure: boolean): Obj[] => [
  { action: 'FailJob', onExitCodes: { containerName: 'kbrackup', operator: 'In', values: partialIsFailure ? [3, 10, 12] : [10, 12] } },
  { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
];

/** What every kbrackup pod must look like, wherever it comes from (chart or k8s/). */
function checkPod(pod: Obj, component: string): void {
  const spec = pod.spec as Obj;
  assert.equal(spec.restartPolicy, 'Never');
  assert.equal(spec.securityContext.runAsNonRoot, true);
  assert.equal(spec.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(spec.securityContext.fsGroup, undefined, 'fsGroup would chown the source volumes');
  assert.equal(pod.metadata.labels['app.kubernetes.io/component'], component);
  const [c, ...others] = spec.containers as Obj[];
  assert.equal(others.length, 0);
  assert.equal(c!.name, 'kbrackup');
  const sc = c!.securityContext;
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.equal(sc.runAsNonRoot, true);
  assert.deepEqual(sc.capabilities.drop, ['ALL']);
  assert.equal(sc.capabilities.add, undefined);
  assert.equal(sc.seccompProfile.type, 'RuntimeDefault');
  assert.ok(c!.resources.limits.memory, 'a memory limit');
  assert.equal(c!.resources.requests.memory, c!.resources.limits.memory, 'request = limit: no overcommit surprises');
  assert.match(env(c!, 'NODE_OPTIONS')?.value ?? '', /^--max-old-space-size=\d+ --max-semi-space-size=\d+/, 'the heap is capped to fit the memory limit');
  assert.equal(env(c!, 'POD_NAMESPACE')?.valueFrom.fieldRef.fieldPath, 'metadata.namespace');
  for (const e of c!.env as Obj[]) {
    if (/SECRET|PASSWORD|ACCESS_KEY|TOKEN/.test(e.name)) assert.ok(e.valueFrom?.secretKeyRef, `${e.name} comes from a Secret`);
  }
  if (component === 'snapshot' || component === 'metrics') return;
  const temp = (spec.volumes as Obj[]).find((v) => v.name === 'temp');
  assert.ok(temp?.emptyDir?.sizeLimit, 'temp is a size-limited emptyDir');
  assert.deepEqual((c!.volumeMounts as Obj[]).find((m) => m.name === 'temp'), { name: 'temp', mountPath: '/tmp/kbrackup' });
  assert.equal(env(c!, 'KBRACKUP_TEMP_DIR')?.value, '/tmp/kbrackup');
  assert.equal(env(c!, 'POD_NAME')?.valueFrom.fieldRef.fieldPath, 'metadata.name');
  if (!temp.emptyDir.medium) assert.equal(c!.resources.requests['ephemeral-storage'], temp.emptyDir.sizeLimit, 'the emptyDir on node disk is requested as ephemeral-storage');
  for (const m of c!.volumeMounts as Obj[]) {
    if (m.name.startsWith('source-') || ['credentials', 'sftp', 'key'].includes(m.name)) assert.equal(m.readOnly, true, `${m.name} is mounted read-only`);
  }
  for (const v of spec.volumes as Obj[]) {
    if (v.name.startsWith('source-') && v.persistentVolumeClaim) assert.equal(v.persistentVolumeClaim.readOnly, true);
    if (v.name.startsWith('source-') && v.hostPath) assert.equal(v.hostPath.type, 'Directory');
    if (v.secret) assert.equal(v.secret.defaultMode, 0o444);
  }
}

/** What every backup Job (from a CronJob, a snapshot plan or applied by CI) must look like. */
function checkBackupJob(jobSpec: Obj): void {
  assert.ok(jobSpec.backoffLimit <= 2, 'a retry repeats a big upload');
  assert.ok(jobSpec.activeDeadlineSeconds > 0);
  const pod = jobSpec.template;
  checkPod(pod, 'backup');
  const c = pod.spec.containers[0];
  const partialIsFailure = env(c, 'KBRACKUP_PARTIAL_EXIT_CODE')?.value !== '0';
  assert.deepEqual(jobSpec.podFailurePolicy.rules, FAILURE_RULES(partialIsFailure), 'exit 3 fails the Job at once exactly when it is not turned into 0');
  assert.equal(c.args[0], 'backup');
  const root = c.args.at(-1) as string;
  for (const m of c.volumeMounts as Obj[]) {
    if (m.name.startsWith('source-')) assert.ok(m.mountPath.startsWith(`${root}/`), `${m.mountPath} is below the backed-up ${root}`);
  }
  assert.equal(pod.spec.automountServiceAccountToken, env(c, 'KBRACKUP_KUBERNETES')?.value !== 'off');
  const temp = pod.spec.volumes.find((v: Obj) => v.name === 'temp').emptyDir;
  assert.ok(parseMi(env(c, 'KBRACKUP_TEMP_LIMIT')?.value) < parseMi(temp.sizeLimit), 'the temp budget leaves room in the emptyDir for the on-disk index');
}

function parseMi(q: string | undefined): number {
  const m = /^(\d+)(Mi|Gi)$/.exec(q ?? '');
  assert.ok(m, `${q} is a size in Mi or Gi`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}

/** What every maintenance and check CronJob must look like: a backup's hardening, no source volumes, the lock-holder's Lease. */
function checkMaintenanceJob(cron: Obj, component: 'maintenance' | 'check'): void {
  const job = cron.spec.jobTemplate.spec;
  checkPod(job.template, component);
  const c = container(cron);
  assert.ok(component === 'check' ? c.args[0] === 'check' : ['forget', 'prune'].includes(c.args[0]), `${component} runs ${c.args[0]}`);
  assert.deepEqual(job.podFailurePolicy.rules, [
    { action: 'FailJob', onExitCodes: { containerName: 'kbrackup', operator: 'In', values: [10, 12] } },
    { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
  ]);
  assert.ok(job.backoffLimit <= 2 && job.activeDeadlineSeconds > 0);
  assert.equal(env(c, 'KBRACKUP_CREDENTIALS')?.value, '/etc/kbrackup/credentials/backup.cred');
  assert.equal(env(c, 'CRONJOB_NAME')?.value, cron.metadata.name);
  assert.equal(job.template.spec.automountServiceAccountToken, env(c, 'KBRACKUP_KUBERNETES')?.value !== 'off', 'a token exactly when it takes the Lease');
  assert.ok(!(job.template.spec.volumes as Obj[]).some((v) => v.name.startsWith('source-')), 'maintenance mounts no source volume');
}

function checkCronJob(cron: Obj): void {
  assert.ok(cron.metadata.name.length <= 52, 'the Job name adds 11 characters');
  assert.match(cron.metadata.name, DNS_LABEL);
  assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
  assert.ok(cron.spec.startingDeadlineSeconds > 0);
  assert.equal(typeof cron.spec.successfulJobsHistoryLimit, 'number');
  assert.equal(typeof cron.spec.failedJobsHistoryLimit, 'number');
  assert.equal(typeof cron.spec.suspend, 'boolean');
  const job = cron.spec.jobTemplate.spec;
  const component = cron.metadata.labels['app.kubernetes.io/component'];
  if (component === 'maintenance' || component === 'check') {
    checkMaintenanceJob(cron, component);
    return;
  }
  if (container(cron).args[0] === 'snapshot-backup') {
    checkPod(job.template, 'snapshot');
    return;
  }
  checkBackupJob(job);
  assert.equal(env(container(cron), 'CRONJOB_NAME')?.value, cron.metadata.name);
}

/** The Leases the chart's backup sets hold, as the job itself names them. */
function leasesOf(values: Obj): string[] {
  return [...new Set((values.backups as Obj[]).map((b) => leaseName(redactRepository(b.repository?.url ?? values.repository.url ?? values.repository.mountPath))))].sort();
}

/** Checks every render shares: schema-valid documents, standard labels, consistent names, RBAC of the right size. */
async function checkRender(r: Rendered, namespace = 'backup'): Promise<void> {
  for (const { source, doc } of r.manifests) {
    if (!OPERATOR_KINDS.has(doc.kind)) await assert.doesNotReject(validateK8s(doc), `${source}: ${doc.kind} ${doc.metadata?.name} matches the Kubernetes schema`);
    assert.match(doc.metadata.name, DNS_LABEL);
    assert.ok(doc.metadata.name.length <= 63);
    assert.equal(doc.metadata.namespace, namespace);
    const labels = doc.metadata.labels as Obj;
    for (const key of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'helm.sh/chart']) {
      assert.ok(labels[key], `${doc.kind} ${doc.metadata.name} has label ${key}`);
    }
    assert.equal(labels['app.kubernetes.io/instance'], 'kb');
    assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm');
  }
  for (const cron of byKind(r, 'CronJob')) checkCronJob(cron);
  for (const binding of byKind(r, 'RoleBinding')) {
    assert.ok(byKind(r, 'Role').some((role) => role.metadata.name === binding.roleRef.name));
    const [subject] = binding.subjects as Obj[];
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: subject!.name, namespace }]);
    assert.ok(byKind(r, 'ServiceAccount').some((sa) => sa.metadata.name === subject!.name), `the chart makes ServiceAccount ${subject!.name}`);
  }
}

/** The backup Role's rules: Events, Lease create, and get/update only on the given Lease names. */
function backupRules(leases: string[]): Obj[] {
  return [
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: leases, verbs: ['get', 'update'] },
  ];
}

const minimal = readFileSync(join(CI, 'minimal-values.yaml'), 'utf8');

describe('Helm chart', () => {
  test('defaults alone install only the ServiceAccount and RBAC, and NOTES say what to add', async () => {
    const r = render();
    assert.deepEqual(r.manifests.map((m) => m.doc.kind).sort(), ['Role', 'RoleBinding', 'ServiceAccount']);
    await checkRender(r);
    assert.deepEqual(byKind(r, 'Role')[0]!.rules, backupRules([]).slice(0, 2), 'no Lease names without sets');
    assert.match(r.notes, /No backup set is configured yet/);
  });

  test('minimal values: one CronJob, filesystem repository on a PVC, 64Mi with the image heap, hook test pod', async () => {
    const r = render(join(CI, 'minimal-values.yaml'));
    await checkRender(r);
    const [cron, ...more] = byKind(r, 'CronJob');
    assert.equal(more.length, 0);
    assert.equal(cron!.metadata.name, 'kb-kbrackup-app');
    assert.equal(cron!.spec.schedule, '0 2 * * *');
    assert.equal(cron!.spec.timeZone, undefined);
    const c = container(cron!);
    assert.equal(c.image, 'ghcr.io/kbrackup/kbrackup:0.1.0');
    assert.deepEqual(c.args, ['backup', '/data']);
    assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '64Mi', 'ephemeral-storage': '1Gi' }, limits: { memory: '64Mi' } });
    const dockerfile = /NODE_OPTIONS="([^"]+)"/.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
    assert.equal(env(c, 'NODE_OPTIONS')?.value, dockerfile, 'at 64Mi the chart derives the heap flags the container test proves');
    assert.equal(env(c, 'KBRACKUP_REPO')?.value, '/repository');
    assert.equal(env(c, 'KBRACKUP_SOURCE')?.value, 'app');
    assert.equal(env(c, 'KBRACKUP_CREDENTIALS')?.value, '/etc/kbrackup/credentials/backup.cred');
    assert.equal(env(c, 'KBRACKUP_TEMP_LIMIT')?.value, '768Mi', '3/4 of the emptyDir: the rest is for the index and file lists');
    assert.equal(env(c, 'KBRACKUP_KUBERNETES')?.value, 'auto');
    assert.equal(env(c, 'JOB_NAME')?.valueFrom.fieldRef.fieldPath, "metadata.labels['batch.kubernetes.io/job-name']");
    assert.deepEqual((c.volumeMounts as Obj[]).find((m) => m.name === 'repository'), { name: 'repository', mountPath: '/repository', readOnly: false });
    assert.deepEqual((c.volumeMounts as Obj[]).find((m) => m.name === 'source-data'), { name: 'source-data', mountPath: '/data/data', readOnly: true });
    const spec = podSpec(cron!);
    assert.equal(spec.serviceAccountName, 'kb-kbrackup');
    assert.equal(spec.automountServiceAccountToken, true);
    assert.equal(spec.affinity, undefined);
    assert.equal(spec.volumes.find((v: Obj) => v.name === 'credentials').secret.secretName, 'kbrackup-credentials');
    assert.equal(cron!.spec.jobTemplate.spec.ttlSecondsAfterFinished, undefined, 'the history limits clean up by default');
    assert.deepEqual(byKind(r, 'Role')[0]!.rules, backupRules([leaseName('/repository')]));

    const [pod] = byKind(r, 'Pod');
    assert.equal(pod!.metadata.annotations['helm.sh/hook'], 'test');
    checkPod(pod!, 'test');
    assert.deepEqual(container(pod!).args, ['snapshots']);
    assert.equal(podSpec(pod!).automountServiceAccountToken, false);
    assert.equal(env(container(pod!), 'KBRACKUP_KUBERNETES')?.value, 'off');
    assert.match(r.notes, /kubectl -n backup create job --from=cronjob\/kb-kbrackup-app kb-kbrackup-app-manual-\$\(date \+%s\)/);
    assert.match(r.notes, /helm test kb -n backup/);
  });

  test('S3 values: secrets by reference, chart-wide settings, per-set overrides, a Lease name per repository', async () => {
    const r = render(join(CI, 's3-values.yaml'));
    await checkRender(r);
    const [pg, uploads] = byKind(r, 'CronJob');
    assert.equal(pg!.metadata.name, 'kb-kbrackup-postgres');
    assert.equal(pg!.spec.timeZone, 'Europe/Berlin');
    assert.equal(pg!.spec.suspend, false);
    const c = container(pg!);
    assert.equal(env(c, 'KBRACKUP_REPO')?.value, 's3://backups/cluster-a');
    assert.equal(env(c, 'AWS_ENDPOINT_URL')?.value, 'https://minio.storage.svc:9000');
    assert.equal(env(c, 'AWS_REGION')?.value, 'eu-central-1');
    assert.equal(env(c, 'KBRACKUP_S3_FORCE_PATH_STYLE')?.value, 'true');
    assert.deepEqual(env(c, 'AWS_ACCESS_KEY_ID')?.valueFrom, { secretKeyRef: { name: 'minio-kbrackup', key: 'AWS_ACCESS_KEY_ID' } });
    assert.deepEqual(env(c, 'AWS_SECRET_ACCESS_KEY')?.valueFrom, { secretKeyRef: { name: 'minio-kbrackup', key: 'AWS_SECRET_ACCESS_KEY' } });
    assert.equal(env(c, 'KBRACKUP_PUSHGATEWAY_URL')?.value, 'http://pushgateway.monitoring.svc:9091');
    assert.equal(env(c, 'KBRACKUP_TAGS')?.value, 'nightly');
    assert.equal(env(c, 'KBRACKUP_EXCLUDE')?.value, '*.tmp,cache/**');
    assert.equal(env(c, 'KBRACKUP_UPLOADS')?.value, '4');
    assert.deepEqual((c.volumeMounts as Obj[]).find((m) => m.name === 'source-base'), { name: 'source-base', mountPath: '/data/base', readOnly: true, subPath: 'pgdata' });
    const pgSpec = podSpec(pg!);
    assert.equal(pgSpec.securityContext.runAsUser, 999);
    assert.deepEqual(pgSpec.nodeSelector, { 'kubernetes.io/os': 'linux' });
    assert.equal(pgSpec.priorityClassName, 'low-priority');
    assert.equal(pgSpec.tolerations[0].key, 'backup');
    const podMeta = pg!.spec.jobTemplate.spec.template.metadata;
    assert.equal(podMeta.labels.team, 'platform');
    assert.equal(podMeta.annotations['sidecar.istio.io/inject'], 'false');

    assert.equal(uploads!.spec.suspend, true);
    assert.equal(uploads!.spec.schedule, '0 */6 * * *');
    const u = container(uploads!);
    assert.equal(env(u, 'KBRACKUP_REPO')?.value, 's3://backups/uploads', 'the set overrides the URL');
    assert.equal(env(u, 'AWS_ACCESS_KEY_ID')?.valueFrom.secretKeyRef.name, 'minio-kbrackup', 'and keeps the rest of repository');
    assert.equal(env(u, 'KBRACKUP_TAGS')?.value, 'uploads,hourly');
    assert.equal(env(u, 'NODE_OPTIONS')?.value, '--max-old-space-size=48 --max-semi-space-size=1 --max-old-space-size=64', 'the heap follows 128Mi, and nodeOptions adds to it (the last flag wins)');
    assert.equal(env(u, 'KBRACKUP_TEMP_LIMIT')?.value, '3072Mi');
    assert.equal(u.resources.limits.memory, '128Mi');
    assert.equal(u.resources.requests['ephemeral-storage'], '4Gi');
    assert.equal(podSpec(uploads!).securityContext.runAsUser, 65532, 'the other set keeps the default user');
    assert.equal(podSpec(uploads!).volumes.find((v: Obj) => v.name === 'temp').emptyDir.sizeLimit, '4Gi');
    assert.deepEqual(byKind(r, 'Role')[0]!.rules, backupRules(leasesOf(mergedValues(join(CI, 's3-values.yaml')))));
    assert.equal(byKind(r, 'Role')[0]!.rules[2].resourceNames.length, 2, 'one Lease per repository');
  });

  test('SFTP values: pinned host key instead of known_hosts, hostPath sources, no API access when the integration is off', async () => {
    const r = render(join(CI, 'sftp-values.yaml'));
    await checkRender(r);
    assert.deepEqual(r.manifests.map((m) => m.doc.kind).sort(), ['CronJob', 'Pod']);
    const [cron] = byKind(r, 'CronJob');
    assert.equal(cron!.metadata.name, 'node-backup-etc');
    const c = container(cron!);
    assert.deepEqual(c.args, ['backup', '/host']);
    assert.equal(env(c, 'KBRACKUP_SFTP_KEY')?.value, '/etc/kbrackup/sftp/id_ed25519');
    assert.equal(env(c, 'KBRACKUP_SFTP_KNOWN_HOSTS'), undefined);
    assert.equal(env(c, 'KBRACKUP_SFTP_HOST_FINGERPRINT')?.value, 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s');
    assert.equal(env(c, 'KBRACKUP_CREDENTIALS')?.value, '/etc/kbrackup/credentials/node.cred');
    assert.equal(env(c, 'KBRACKUP_KUBERNETES')?.value, 'off');
    assert.equal(env(c, 'KBRACKUP_TEMP_LIMIT')?.value, '256Mi');
    assert.equal(c.resources.requests['ephemeral-storage'], undefined, 'tmpfs counts against memory, not disk');
    const spec = podSpec(cron!);
    assert.equal(spec.serviceAccountName, 'backup-runner');
    assert.equal(spec.automountServiceAccountToken, false);
    assert.deepEqual(spec.volumes.find((v: Obj) => v.name === 'sftp').secret.items.map((i: Obj) => i.key), ['id_ed25519']);
    assert.deepEqual(spec.volumes.find((v: Obj) => v.name === 'source-etc').hostPath, { path: '/etc', type: 'Directory' });
    assert.deepEqual(spec.volumes.find((v: Obj) => v.name === 'temp').emptyDir, { sizeLimit: '512Mi', medium: 'Memory' });
    assert.deepEqual((c.volumeMounts as Obj[]).map((m) => m.mountPath), ['/tmp/kbrackup', '/etc/kbrackup/credentials', '/etc/kbrackup/sftp', '/etc/ssl/corporate', '/host/etc', '/host/kubelet/config']);
    assert.ok(spec.affinity.nodeAffinity);
  });

  test('restore: a Job named after its settings, so upgrades that keep them (--reuse-values, Argo CD) run nothing again', async () => {
    const file = join(CI, 'restore-values.yaml');
    const r = render(file);
    await checkRender(r);
    const [job] = byKind(r, 'Job');
    assert.match(job!.metadata.name, /^kb-kbrackup-restore-[0-9a-f]{8}$/);
    const upgraded = render('--revision=7', '--is-upgrade', file);
    assert.deepEqual(byKind(upgraded, 'Job'), [job], 'a later revision with the same values renders the very same Job: nothing for Helm to change or re-run');
    const again = byKind(render(file, valuesFile('restore: {runId: second-try}\n')), 'Job')[0]!;
    const otherPath = byKind(render(file, valuesFile('restore: {include: [data/other]}\n')), 'Job')[0]!;
    assert.notEqual(again.metadata.name, job!.metadata.name, 'runId asks for another run');
    assert.notEqual(otherPath.metadata.name, job!.metadata.name, 'other settings are another Job, never a patch of a finished one');
    assert.equal(job!.metadata.labels['kbrackup.io/restore-id'], job!.metadata.name.slice(-8));
    assert.equal(job!.spec.ttlSecondsAfterFinished, undefined, 'in a release the finished Job stays: a TTL would let the next upgrade re-create and re-run it');
    assert.equal(byKind(render(file, valuesFile('restore: {ttlSecondsAfterFinished: 86400}\n')), 'Job')[0]!.spec.ttlSecondsAfterFinished, 86400);

    assert.equal(job!.spec.backoffLimit, 0);
    assert.deepEqual(job!.spec.podFailurePolicy.rules[0].onExitCodes.values, [10, 12]);
    checkPod(job!.spec.template, 'restore');
    const c = container(job!);
    assert.deepEqual(c.args, ['restore', 'latest', '--target', '/restore']);
    assert.equal(env(c, 'KBRACKUP_KEY')?.value, '/etc/kbrackup/key/owner.key.asc');
    assert.equal(env(c, 'KBRACKUP_PASSPHRASE_FILE')?.value, '/etc/kbrackup/key/passphrase');
    assert.equal(env(c, 'KBRACKUP_CONFLICT')?.value, 'overwrite');
    assert.equal(env(c, 'KBRACKUP_INCLUDE')?.value, 'data/uploads');
    assert.equal(env(c, 'KBRACKUP_SOURCE')?.value, 'app');
    assert.equal(env(c, 'KBRACKUP_CREDENTIALS'), undefined, 'restore needs the private key, not the backup credentials');
    assert.equal(env(c, 'KBRACKUP_KUBERNETES')?.value, 'off');
    assert.equal(env(c, 'KBRACKUP_REPO')?.value, 's3://backups/cluster-a');
    assert.equal(env(c, 'AWS_ACCESS_KEY_ID')?.valueFrom.secretKeyRef.name, 's3-keys-read-only', 'read-only keys, not the backup keys');
    assert.equal(env(c, 'AWS_SECRET_ACCESS_KEY')?.valueFrom.secretKeyRef.name, 's3-keys-read-only');
    assert.deepEqual((c.volumeMounts as Obj[]).find((m) => m.name === 'target'), { name: 'target', mountPath: '/restore' });
    assert.equal(c.resources.limits.memory, '128Mi');
    assert.match(env(c, 'NODE_OPTIONS')?.value, /^--max-old-space-size=48 /);
    const spec = podSpec(job!);
    assert.equal(spec.automountServiceAccountToken, false, 'restore calls no API: no token');
    assert.equal(spec.securityContext.runAsUser, 1000);
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.deepEqual(spec.nodeSelector, { 'topology.kubernetes.io/zone': 'eu-central-1a' }, "restore's scheduling replaces the set's");
    assert.equal(spec.priorityClassName, 'restore-high');
    assert.equal(spec.affinity, undefined, "the set's colocateWith is about the backed-up volume, not the restore target");
    assert.equal(spec.volumes.find((v: Obj) => v.name === 'target').persistentVolumeClaim.claimName, 'app-data-restored');
    assert.equal(spec.volumes.find((v: Obj) => v.name === 'key').secret.secretName, 'kbrackup-owner-key');
    assert.match(r.notes, /helm template kb <chart> -n backup -f values\.yaml --show-only templates\/restore-job\.yaml/);
  });

  test('restore refuses latest + overwrite without confirmation, and the backup S3 keys', () => {
    const base = readFileSync(join(CI, 'restore-values.yaml'), 'utf8');
    const unconfirmed = base.replace('  confirmOverwrite: app-data-restored\n', '');
    assert.match(renderError(unconfirmed), /restore\.snapshot "latest" with restore\.conflict "overwrite" replaces files in PVC app-data-restored with whatever snapshot is newest when the Job starts: pin restore\.snapshot to a snapshot id \(kbrackup snapshots\), or confirm with restore\.confirmOverwrite=app-data-restored/);
    assert.match(renderError(unconfirmed.replace('conflict: overwrite', 'conflict: update')), /restore\.conflict "update"/);
    assert.doesNotThrow(() => render(valuesFile(unconfirmed.replace('snapshot: latest', '').replace('restore:\n', 'restore:\n  snapshot: 1a2b3c4d\n'))), 'a pinned snapshot needs no confirmation');
    assert.match(renderError(base.replace('    existingSecret: s3-keys-read-only\n', '    existingSecret: ""\n')), /restore\.s3\.existingSecret is required: a Secret with read-only S3 keys/);
  });

  test('partialIsFailure decides exit 3 everywhere: podFailurePolicy, the exit code the pod uses, and the age alert', () => {
    const on = container(byKind(render(join(CI, 'minimal-values.yaml')), 'CronJob')[0]!);
    assert.equal(env(on, 'KBRACKUP_PARTIAL_EXIT_CODE')?.value, '3');
    const r = render(join(CI, 'snapshot-values.yaml'));
    const plan = JSON.parse(byKind(r, 'ConfigMap')[0]!.data['plan.json']);
    assert.equal(env(plan.job.spec.template.spec.containers[0], 'KBRACKUP_PARTIAL_EXIT_CODE')?.value, '0');
    assert.deepEqual(plan.job.spec.podFailurePolicy.rules, FAILURE_RULES(false));
    const uploads = byKind(r, 'CronJob')[1]!;
    assert.deepEqual(uploads.spec.jobTemplate.spec.podFailurePolicy.rules, FAILURE_RULES(false));
    const rules = byKind(r, 'PrometheusRule')[0]!.spec.groups[0].rules as Obj[];
    assert.match(rules.find((x) => x.alert === 'KbrackupBackupTooOld')!.expr, /kbrackup_backup_last_snapshot_timestamp_seconds/, 'a partial run counts as a backup when it is no failure');
    const strict = byKind(render(join(CI, 'snapshot-values.yaml'), valuesFile('partialIsFailure: true\n')), 'PrometheusRule')[0]!.spec.groups[0].rules as Obj[];
    assert.match(strict.find((x) => x.alert === 'KbrackupBackupTooOld')!.expr, /kbrackup_backup_last_success_timestamp_seconds/);
  });

  test('volumeSnapshot sources: the CronJob runs the snapshot pod, which holds API rights but no secrets, with the backup Job as its plan', async () => {
    const r = render(join(CI, 'snapshot-values.yaml'));
    await checkRender(r);
    const [db, uploads] = byKind(r, 'CronJob');
    const c = container(db!);
    assert.deepEqual(c.args, ['snapshot-backup']);
    assert.equal(c.image, 'registry.example.com/mirror/kbrackup@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
    assert.equal(env(c, 'KBRACKUP_SNAPSHOT_PLAN')?.value, '/etc/kbrackup/plan/plan.json');
    assert.equal(env(c, 'JOB_UID')?.valueFrom.fieldRef.fieldPath, "metadata.labels['batch.kubernetes.io/controller-uid']", 'the snapshots and clones are owned by this Job');
    assert.equal(env(c, 'NODE_OPTIONS')?.value, '--max-old-space-size=72 --max-semi-space-size=2 --stack-size=2000', 'client-node needs more heap: derived from 192Mi');
    assert.ok(!(c.env as Obj[]).some((e) => /AWS_|CREDENTIALS/.test(e.name)), 'no repository secrets in the pod that holds API rights');
    const spec = podSpec(db!);
    assert.equal(spec.serviceAccountName, 'kb-kbrackup-snapshot');
    assert.equal(spec.automountServiceAccountToken, true);
    assert.equal(spec.affinity, undefined, 'the clone can be attached on any node');
    assert.equal(db!.spec.jobTemplate.spec.backoffLimit, 0);
    assert.deepEqual(spec.volumes, [{ name: 'plan', configMap: { name: 'kb-kbrackup-db-plan', defaultMode: 0o444 } }]);

    const [configMap] = byKind(r, 'ConfigMap');
    const plan = validatePlan(JSON.parse(configMap!.data['plan.json']), 'rendered plan');
    assert.deepEqual(plan.snapshots, [{ volume: 'source-pgdata', persistentVolumeClaim: 'pg-data', volumeSnapshotClassName: 'csi-snapclass', storageClassName: undefined }]);
    checkBackupJob(plan.job.spec as Obj);
    const job = plan.job as Obj;
    await validateK8s({ ...job, metadata: { ...job.metadata, name: 'x' } });
    assert.equal(job.metadata.labels.team, 'shop', 'commonLabels');
    assert.equal(job.metadata.annotations['example.com/owner'], 'shop', 'jobAnnotations');
    const volumes = job.spec.template.spec.volumes as Obj[];
    assert.deepEqual(volumes.find((v) => v.name === 'source-pgdata'), { name: 'source-pgdata', persistentVolumeClaim: { claimName: 'pg-data', readOnly: true } }, 'the live PVC, replaced by its clone at run time');
    assert.deepEqual(volumes.find((v) => v.name === 'source-config'), { name: 'source-config', persistentVolumeClaim: { claimName: 'pg-config', readOnly: true } });
    assert.equal(job.spec.ttlSecondsAfterFinished, 172800);
    const bc = job.spec.template.spec.containers[0];
    assert.equal(env(bc, 'KBRACKUP_S3_STORAGE_CLASS')?.value, 'STANDARD_IA');
    assert.equal(env(bc, 'KBRACKUP_S3_SSE')?.value, 'aws:kms');
    assert.equal(env(bc, 'KBRACKUP_S3_SSE_KMS_KEY_ID')?.value, 'alias/backups');
    assert.deepEqual(bc.envFrom, [{ configMapRef: { name: 'kbrackup-tuning' } }]);
    assert.equal(env(bc, 'NODE_OPTIONS')?.value, '--max-old-space-size=96 --max-semi-space-size=2 --stack-size=2000');

    const snapshotRole = byKind(r, 'Role').find((x) => x.metadata.name === 'kb-kbrackup-snapshot')!;
    assert.deepEqual(snapshotRole.rules, [
      { apiGroups: ['snapshot.storage.k8s.io'], resources: ['volumesnapshots'], verbs: ['create', 'get', 'delete'] },
      { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['create', 'get', 'delete'] },
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'get', 'delete'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    ]);
    assert.deepEqual(byKind(r, 'ServiceAccount').map((sa) => [sa.metadata.name, sa.automountServiceAccountToken]), [['kb-kbrackup', false], ['kb-kbrackup-snapshot', false]]);
    assert.equal(container(uploads!).args[0], 'backup', 'a set without snapshot sources stays a plain backup CronJob');
  });

  test('colocateWith puts the backup pod on the node of the application pods (ReadWriteOnce), added to any affinity', () => {
    const r = render(join(CI, 'snapshot-values.yaml'), valuesFile('affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, preference: {matchExpressions: [{key: a, operator: Exists}]}}]}}\n'));
    const uploads = podSpec(byKind(r, 'CronJob')[1]!);
    assert.deepEqual(uploads.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution, [{ labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'web' } }, topologyKey: 'kubernetes.io/hostname' }]);
    assert.ok(uploads.affinity.nodeAffinity, 'the chart-wide affinity stays');
    const plan = JSON.parse(byKind(r, 'ConfigMap')[0]!.data['plan.json']);
    assert.equal(plan.job.spec.template.spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels['app.kubernetes.io/name'], 'postgres', 'plain PVC sources of a snapshot set are live volumes too');
  });

  test('monitoring: per-set alerts with absent guards and kube-state-metrics fallbacks, a ServiceMonitor with honorLabels, a prune hook', () => {
    const r = render(join(CI, 'snapshot-values.yaml'));
    const [sm] = byKind(r, 'ServiceMonitor');
    assert.equal(sm!.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(sm!.metadata.labels.release, 'prometheus');
    assert.deepEqual(sm!.spec.selector, { matchLabels: { 'app.kubernetes.io/name': 'prometheus-pushgateway' } });
    assert.deepEqual(sm!.spec.namespaceSelector, { matchNames: ['monitoring'] });
    assert.deepEqual(sm!.spec.endpoints, [{ port: 'http', interval: '60s', honorLabels: true }]);

    const rules = byKind(r, 'PrometheusRule')[0]!.spec.groups[0].rules as Obj[];
    const of = (set: string): Obj[] => rules.filter((x) => x.labels?.backup_set === set);
    assert.deepEqual(of('db').map((x) => x.alert), ['KbrackupBackupTooOld', 'KbrackupBackupAbsent', 'KbrackupBackupFailed', 'KbrackupBackupPartial', 'KbrackupCronJobTooOld', 'KbrackupCronJobNeverSucceeded', 'KbrackupJobFailed']);
    const db = Object.fromEntries(of('db').map((x) => [x.alert, x]));
    assert.equal(db.KbrackupBackupAbsent.expr, 'absent(kbrackup_backup_last_snapshot_timestamp_seconds{job="kbrackup", namespace="backup", source="db"})');
    assert.equal(db.KbrackupBackupAbsent.for, '93600s');
    assert.equal(db.KbrackupBackupFailed.expr, 'kbrackup_backup_exit_code{job="kbrackup", namespace="backup", source="db"} != 0 and kbrackup_backup_exit_code{job="kbrackup", namespace="backup", source="db"} != 3');
    assert.equal(db.KbrackupBackupPartial.expr, 'kbrackup_backup_exit_code{job="kbrackup", namespace="backup", source="db"} == 3');
    assert.equal(db.KbrackupCronJobTooOld.expr, 'time() - kube_cronjob_status_last_successful_time{namespace="backup", cronjob="kb-kbrackup-db"} > 93600');
    assert.match(db.KbrackupCronJobNeverSucceeded.expr, /^kube_cronjob_info\{namespace="backup", cronjob="kb-kbrackup-db"\} unless on \(namespace, cronjob\) kube_cronjob_status_last_successful_time$/);
    assert.match(db.KbrackupJobFailed.expr, /kube_job_status_failed\{namespace="backup"\} > 0 and on \(namespace, job_name\) kube_job_owner\{namespace="backup", owner_kind="CronJob", owner_name="kb-kbrackup-db"\}/);
    assert.match(of('uploads').find((x) => x.alert === 'KbrackupBackupTooOld')!.expr, /> 7200$/, 'maxAgeSeconds per set');
    assert.deepEqual(rules.at(-1), { alert: 'KbrackupSlow', expr: 'kbrackup_backup_duration_seconds > 3600' }, 'extra rules are appended');

    const kubeOnly = byKind(render(join(CI, 'minimal-values.yaml'), valuesFile('metrics: {prometheusRule: {enabled: true}}\n')), 'PrometheusRule')[0]!.spec.groups[0].rules as Obj[];
    assert.deepEqual(kubeOnly.map((x) => x.alert), ['KbrackupCronJobTooOld', 'KbrackupCronJobNeverSucceeded', 'KbrackupJobFailed'], 'without a Pushgateway only kube-state-metrics rules: absent() would always fire');

    const prune = byKind(r, 'Job').find((j) => j.metadata.name === 'kb-kbrackup-metrics-prune')!;
    assert.equal(prune.metadata.annotations['helm.sh/hook'], 'post-install,post-upgrade,post-delete');
    const pc = container(prune);
    assert.deepEqual(pc.args, ['metrics-prune']);
    assert.equal(env(pc, 'KBRACKUP_METRICS_KEEP')?.value, 'db=s3://backups/shop/,uploads=s3://backups/shop/');
    assert.equal(podSpec(prune).automountServiceAccountToken, false);
    checkPod(prune.spec.template, 'metrics');
    assert.equal(byKind(render(join(CI, 'snapshot-values.yaml'), valuesFile('metrics: {pruneStaleGroups: false}\n')), 'Job').length, 0);
  });

  test('one release per application namespace: every object, binding and downward-API value follows the namespace', async () => {
    const r = render('--namespace=shop', join(CI, 'snapshot-values.yaml'));
    await checkRender(r, 'shop');
    assert.ok(byKind(r, 'RoleBinding').every((b) => b.subjects[0].namespace === 'shop'));
    const rules = byKind(r, 'PrometheusRule')[0]!.spec.groups[0].rules as Obj[];
    assert.ok(rules.filter((x) => x.labels).every((x) => x.labels.namespace === 'shop' && x.expr.includes('namespace="shop"')), 'alerts tell the namespaces apart');
  });

  test('commonLabels reach every object and pod; the test pod carries podLabels and podAnnotations', () => {
    const r = render(join(CI, 's3-values.yaml'), valuesFile('commonLabels: {cost-center: "42"}\n'));
    for (const { doc } of r.manifests) assert.equal(doc.metadata.labels['cost-center'], '42', `${doc.kind} ${doc.metadata.name}`);
    assert.equal(byKind(r, 'CronJob')[0]!.spec.jobTemplate.spec.template.metadata.labels['cost-center'], '42');
    const [pod] = byKind(r, 'Pod');
    assert.equal(pod!.metadata.labels.team, 'platform');
    assert.deepEqual(pod!.metadata.annotations, { 'helm.sh/hook': 'test', 'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded', 'sidecar.istio.io/inject': 'false' });
  });

  test('kubernetesIntegration: false removes the Role and every token; the schema wants a boolean', () => {
    const r = render(join(CI, 'minimal-values.yaml'), valuesFile('kubernetesIntegration: false\n'));
    assert.deepEqual(r.manifests.map((m) => m.doc.kind).sort(), ['CronJob', 'Pod', 'ServiceAccount']);
    const cron = byKind(r, 'CronJob')[0]!;
    assert.equal(podSpec(cron).automountServiceAccountToken, false);
    assert.equal(env(container(cron), 'KBRACKUP_KUBERNETES')?.value, 'off');
    assert.equal(mergedValues(valuesFile('kubernetesIntegration: off\n')).kubernetesIntegration, false, 'unquoted off is YAML 1.1 false, which now means what it says');
  });

  test('heap: explicit sizes win, no memory limit means no old-space cap, and odd quantities are refused', () => {
    const heap = (yaml: string): string => env(container(byKind(render(join(CI, 'minimal-values.yaml'), valuesFile(yaml)), 'CronJob')[0]!), 'NODE_OPTIONS')?.value;
    assert.equal(heap('resources: {limits: {memory: 1Gi}, requests: {memory: 1Gi}}\n'), '--max-old-space-size=384 --max-semi-space-size=1');
    assert.equal(heap('resources: {limits: {memory: 256M}, requests: {memory: 256M}}\n'), '--max-old-space-size=91 --max-semi-space-size=1');
    assert.equal(heap('heap: {maxOldSpaceMiB: 40, maxSemiSpaceMiB: 4}\nnodeOptions: --trace-warnings\n'), '--max-old-space-size=40 --max-semi-space-size=4 --trace-warnings');
    assert.equal(heap('resources: {limits: null, requests: {memory: 64Mi}}\n'), '--max-semi-space-size=1');
    assert.match(renderError(`${minimal}\nresources: {limits: {memory: 64mb}}\n`), /"64mb" is not a memory quantity such as 64Mi, 1Gi or 128M/);
  });

  test('maintenance: forget --prune with the retention values and a check, one CronJob of each per repository, with keys that may delete', async () => {
    const r = render(join(CI, 'maintenance-values.yaml'));
    await checkRender(r);
    const crons = byKind(r, 'CronJob');
    const of = (component: string) => crons.filter((c) => c.metadata.labels['app.kubernetes.io/component'] === component);
    assert.equal(of('backup').length, 2);
    const [first, second, ...more] = of('maintenance');
    assert.equal(more.length, 0, 'two repositories, two maintenance CronJobs');
    assert.deepEqual([first, second].map((c) => env(container(c!), 'KBRACKUP_REPO')?.value).sort(), ['s3://backups/cluster-a', 's3://backups/media']);
    for (const cron of [first!, second!]) {
      assert.match(cron.metadata.name, /^kb-kbrackup-maintenance-[0-9a-f]{8}$/);
      assert.equal(cron.spec.schedule, '45 3 * * *');
      const c = container(cron);
      assert.deepEqual(c.args, ['forget', '--prune']);
      const value = (name: string) => env(c, name)?.value;
      assert.deepEqual(['DAILY', 'WEEKLY', 'MONTHLY', 'TAGS'].map((k) => value(`KBRACKUP_KEEP_${k}`)), ['14', '8', 'unlimited', 'keep,release']);
      assert.equal(value('KBRACKUP_KEEP_LAST'), undefined, 'an empty rule is not passed');
      assert.deepEqual([value('KBRACKUP_GROUP_BY'), value('KBRACKUP_GRACE'), value('KBRACKUP_MAX_UNUSED'), value('KBRACKUP_NO_REPACK')], ['source,host', '24h', '10%', 'true']);
      assert.deepEqual(env(c, 'AWS_ACCESS_KEY_ID')?.valueFrom, { secretKeyRef: { name: 'kbrackup-s3-maintenance', key: 'AWS_ACCESS_KEY_ID' } }, 'the keys that may delete, not the backup keys');
      assert.equal(value('KBRACKUP_KUBERNETES'), 'auto', 'it holds the repository Lease like a backup');
      assert.equal(value('NODE_OPTIONS'), '--max-old-space-size=48 --max-semi-space-size=1', 'its own memory limit, the heap follows');
      assert.equal(podSpec(cron).volumes.find((v: Obj) => v.name === 'temp').emptyDir.sizeLimit, '2Gi');
    }
    const checks = of('check');
    assert.equal(checks.length, 2);
    const c = container(checks[0]!);
    assert.deepEqual(c.args, ['check']);
    assert.equal(env(c, 'KBRACKUP_READ_DATA_SUBSET')?.value, '5%');
    assert.equal(env(c, 'KBRACKUP_KEY')?.value, '/etc/kbrackup/key/owner.key.asc');
    assert.equal(env(c, 'AWS_ACCESS_KEY_ID')?.valueFrom.secretKeyRef.name, 'kbrackup-s3-backup', 'check reads and only removes its own lock: the backup keys do');
    assert.equal(podSpec(checks[0]!).volumes.find((v: Obj) => v.name === 'key').secret.secretName, 'kbrackup-owner-key');
    assert.equal(checks[0]!.spec.jobTemplate.spec.backoffLimit, 0);
    // The Role already names both repositories' Leases: maintenance takes the same ones.
    assert.deepEqual(byKind(r, 'Role')[0]!.rules, backupRules(leasesOf(mergedValues(join(CI, 'maintenance-values.yaml')))));

    // A filesystem repository: one CronJob without a hash; no retention rule means prune only; the PVC is writable; no key without a subset.
    const fs = render(valuesFile(`${minimal}\nmaintenance: {enabled: true, keepDaily: "", keepWeekly: "", keepMonthly: ""}\ncheck: {enabled: true}\n`));
    await checkRender(fs);
    const [maintenance] = byKind(fs, 'CronJob').filter((x) => x.metadata.name === 'kb-kbrackup-maintenance');
    assert.deepEqual(container(maintenance!).args, ['prune']);
    assert.deepEqual((container(maintenance!).volumeMounts as Obj[]).find((m) => m.name === 'repository'), { name: 'repository', mountPath: '/repository', readOnly: false });
    const [check] = byKind(fs, 'CronJob').filter((x) => x.metadata.name === 'kb-kbrackup-check');
    assert.equal(env(container(check!), 'KBRACKUP_KEY'), undefined);
    assert.ok(!(podSpec(check!).volumes as Obj[]).some((v) => v.name === 'key'));
  });

  test('values.schema.json accepts every example and the defaults, and rejects mistakes', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    // strictRequired off: `oneOf: [{required: [a]}, {required: [b]}]` is the standard way to say "exactly one of".
    const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile(schema);
    for (const file of ['', 'minimal-values.yaml', 's3-values.yaml', 'sftp-values.yaml', 'restore-values.yaml', 'snapshot-values.yaml', 'maintenance-values.yaml']) {
      const values = mergedValues(...(file ? [join(CI, file)] : []));
      assert.ok(validate(values), `${file || 'defaults'}: ${JSON.stringify(validate.errors)}`);
    }
    const base = mergedValues(join(CI, 'minimal-values.yaml'));
    const set = base.backups[0];
    const bad: Array<[string, Obj]> = [
      ['unknown top-level key (typo)', { ...base, resource: {} }],
      ['schedule is not a string', { ...base, schedule: 5 }],
      ['upper-case set name', { ...base, backups: [{ ...set, name: 'App' }] }],
      ['set without sources', { ...base, backups: [{ name: 'app' }] }],
      ['source with both a PVC and a hostPath', { ...base, backups: [{ ...set, sources: [{ name: 'x', persistentVolumeClaim: 'a', hostPath: '/b' }] }] }],
      ['source with a PVC and a volumeSnapshot', { ...base, backups: [{ ...set, sources: [{ name: 'x', persistentVolumeClaim: 'a', volumeSnapshot: { persistentVolumeClaim: 'a' } }] }] }],
      ['volumeSnapshot without its PVC', { ...base, backups: [{ ...set, sources: [{ name: 'x', volumeSnapshot: { volumeSnapshotClassName: 'c' } }] }] }],
      ['source with neither', { ...base, backups: [{ ...set, sources: [{ name: 'x' }] }] }],
      ['unknown key in a set', { ...base, backups: [{ ...set, schedul: '@daily' }] }],
      ['decimal size for the emptyDir', { ...base, temp: { ...base.temp, sizeLimit: '1GB' } }],
      ['integration as a string', { ...base, kubernetesIntegration: 'off' }],
      ['repository scheme', { ...base, repository: { ...base.repository, url: 'ftp://x/y' } }],
      ['restore conflict mode', { ...base, restore: { ...base.restore, conflict: 'merge' } }],
      ['backoffLimit too high', { ...base, backoffLimit: 20 }],
      ['tag with a comma', { ...base, tags: ['a,b'] }],
      ['image pull policy', { ...base, image: { ...base.image, pullPolicy: 'Sometimes' } }],
      ['image digest', { ...base, image: { ...base.image, digest: 'latest' } }],
      ['server-side encryption', { ...base, repository: { ...base.repository, s3: { ...base.repository.s3, sse: 'rot13' } } }],
      ['partialIsFailure as a string', { ...base, partialIsFailure: 'yes' }],
      ['alert age below a minute', { ...base, metrics: { ...base.metrics, maxAgeSeconds: 5 } }],
      ['keep count in words', { ...base, maintenance: { ...base.maintenance, keepDaily: 'seven' } }],
      ['keep-within in weeks', { ...base, maintenance: { ...base.maintenance, keepWithin: '2w' } }],
      ['unknown group-by field', { ...base, maintenance: { ...base.maintenance, groupBy: 'source,color' } }],
      ['grace without a unit', { ...base, maintenance: { ...base.maintenance, prune: { ...base.maintenance.prune, grace: '1 day' } } }],
      ['max-unused in words', { ...base, maintenance: { ...base.maintenance, prune: { ...base.maintenance.prune, maxUnused: 'five percent' } } }],
      ['unknown key in maintenance', { ...base, maintenance: { ...base.maintenance, keepForever: true } }],
      ['read-data subset without %', { ...base, check: { ...base.check, readDataSubset: '5' } }],
    ];
    for (const [what, values] of bad) assert.equal(validate(values), false, `schema rejects: ${what}`);
  });

  test('the templates refuse what the schema cannot see, with clear messages', () => {
    assert.match(renderError(`${minimal}\nfullnameOverride: a-very-long-release-name-for-backups-of-the-cluster\n`), /CronJob name "a-very-long-release-name-for-backups-of-the-cluster-app" is 55 characters; Kubernetes allows 52 \(the Job name adds 11\)/);
    assert.match(renderError('backups: [{name: app, sources: [{name: d, persistentVolumeClaim: d}]}]\nrepository: {persistentVolumeClaim: r}\n'), /repository\.credentials\.existingSecret is required/);
    assert.match(renderError('backups: [{name: app, sources: [{name: d, persistentVolumeClaim: d}]}]\nrepository: {credentials: {existingSecret: c}}\n'), /repository\.url \(or repository\.persistentVolumeClaim\) is required/);
    assert.match(renderError(`${minimal.replace('        persistentVolumeClaim: app-data', '        persistentVolumeClaim: app-data\n        mountPath: /elsewhere')}`), /mounted at \/elsewhere, outside of the backed-up path \/data/);
    assert.match(renderError(`${minimal}\nrestore: {enabled: true, backup: nope, target: {persistentVolumeClaim: t}, key: {existingSecret: k}}\n`), /restore\.backup "nope" names no entry of backups/);
    assert.match(renderError(`${minimal}\nrestore: {enabled: true, key: {existingSecret: k}}\n`), /restore\.target\.persistentVolumeClaim is required/);
    assert.match(renderError(minimal.replace('backups:\n', 'backups:\n  - {name: app, sources: [{name: x, persistentVolumeClaim: x}]}\n')), /backups: the set name "app" is used twice; each set is its own CronJob and snapshot source/);
    assert.match(renderError(minimal.replace('    sources:\n', '    sources:\n      - {name: data, persistentVolumeClaim: other}\n')), /backup set "app": the source name "data" is used twice; each source is a volume of its own/);
    assert.match(renderError(`${minimal}\ntemp: {sizeLimit: 1Gi, limit: 1Gi}\n`), /temp\.limit 1Gi must be below temp\.sizeLimit 1Gi: the on-disk chunk index and file lists live in the emptyDir too/);
    assert.match(renderError(`${minimal}\nmetrics: {serviceMonitor: {enabled: true}}\n`), /metrics\.serviceMonitor\.selector: the labels of the Pushgateway's Service/);
    const s3 = readFileSync(join(CI, 's3-values.yaml'), 'utf8');
    assert.match(renderError(`${s3}\nmaintenance: {enabled: true}\n`), /maintenance\.s3\.existingSecret is required: a Secret with S3 keys that may delete/);
    assert.match(renderError(`${minimal}\ncheck: {enabled: true, readDataSubset: 5%}\n`), /check\.key\.existingSecret is required with check\.readDataSubset/);
    assert.match(renderError('maintenance: {enabled: true}\n'), /maintenance\.enabled needs a backup set/);
  });

  test('the chart README documents every top-level value', () => {
    const rows = readFileSync(join(CHART, 'README.md'), 'utf8').split('\n').filter((line) => line.startsWith('| `'));
    for (const key of Object.keys(mergedValues())) assert.ok(rows.some((row) => row.split(' | ')[0]!.includes(`\`${key}`)), `README.md has a row for ${key}`);
  });
});

describe('plain manifests (k8s/)', () => {
  const dir = join(ROOT, 'k8s');

  /** kubectl kustomize, offline. */
  function kustomize(path: string): Obj[] {
    const yaml = execFileSync('kubectl', ['kustomize', path], { encoding: 'utf8' });
    const file = valuesFile(yaml);
    return yamlDocs(file);
  }

  test('kustomize builds k8s/: every document matches its Kubernetes schema and the chart', async () => {
    const docs = kustomize(dir);
    const [example] = yamlDocs(join(dir, 'examples/ci-backup-job.yaml'));
    for (const doc of [...docs, example!]) await validateK8s(doc);
    assert.deepEqual(docs.map((d) => d.kind).sort(), ['CronJob', 'Role', 'RoleBinding', 'ServiceAccount']);
    for (const doc of docs) assert.equal(doc.metadata.namespace, 'backup');
    const cron = docs.find((d) => d.kind === 'CronJob')!;
    checkCronJob(cron);
    const repo = env(container(cron), 'KBRACKUP_REPO')?.value;
    assert.deepEqual(docs.find((d) => d.kind === 'Role')!.rules, backupRules([leaseName(redactRepository(repo))]), 'the Lease of the CronJob repository, by name');
    assert.equal(podSpec(cron).serviceAccountName, 'kbrackup');

    assert.equal(example!.kind, 'Job');
    assert.equal(example!.metadata.generateName, 'kbrackup-ci-');
    assert.ok(example!.spec.ttlSecondsAfterFinished > 0);
    checkBackupJob(example!.spec);

    // Same pod hardening and environment as the chart renders by default.
    const chartCron = byKind(render(join(CI, 's3-values.yaml')), 'CronJob')[1]!;
    assert.deepEqual(container(cron).securityContext, container(chartCron).securityContext);
    assert.deepEqual(container(example!).securityContext, container(chartCron).securityContext);
    for (const { name } of container(cron).env as Obj[]) assert.ok(env(container(chartCron), name), `the chart sets ${name} too`);
    const chartDefault = container(byKind(render(join(CI, 'minimal-values.yaml')), 'CronJob')[0]!);
    assert.equal(env(container(cron), 'NODE_OPTIONS')?.value, env(chartDefault, 'NODE_OPTIONS')?.value);
  });

  test('kustomize builds k8s/maintenance: forget --prune and check of the base\'s repository, like the chart renders them', async () => {
    const docs = kustomize(join(dir, 'maintenance'));
    assert.deepEqual(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort(), ['CronJob/kbrackup-check', 'CronJob/kbrackup-maintenance']);
    const base = kustomize(dir);
    const backupCron = base.find((d) => d.kind === 'CronJob')!;
    const s3 = readFileSync(join(CI, 's3-values.yaml'), 'utf8');
    const chart = byKind(render(valuesFile(`${s3}\nmaintenance: {enabled: true, s3: {existingSecret: s3-maintenance}}\ncheck: {enabled: true}\n`)), 'CronJob');
    for (const cron of docs) {
      await validateK8s(cron);
      assert.equal(cron.metadata.namespace, 'backup');
      checkCronJob(cron);
      const c = container(cron);
      assert.equal(env(c, 'KBRACKUP_REPO')?.value, env(container(backupCron), 'KBRACKUP_REPO')?.value, 'the base\'s repository, so the base Role names its Lease');
      assert.equal(podSpec(cron).serviceAccountName, podSpec(backupCron).serviceAccountName);
      assert.deepEqual(c.securityContext, container(backupCron).securityContext);
      const component = cron.metadata.labels['app.kubernetes.io/component'];
      const rendered = container(chart.find((x) => x.metadata.labels['app.kubernetes.io/component'] === component)!);
      for (const { name } of c.env as Obj[]) assert.ok(env(rendered, name), `the chart sets ${name} too`);
    }
    const maintenance = container(docs.find((d) => d.metadata.name === 'kbrackup-maintenance')!);
    assert.deepEqual(maintenance.args, ['forget', '--prune']);
    assert.equal(env(maintenance, 'AWS_ACCESS_KEY_ID')?.valueFrom.secretKeyRef.name, 'kbrackup-s3-maintenance', 'keys that may delete');
    assert.equal(env(container(docs.find((d) => d.metadata.name === 'kbrackup-check')!), 'AWS_ACCESS_KEY_ID')?.valueFrom.secretKeyRef.name, 'kbrackup-s3');
  });

  test('an overlay in another namespace binds the ServiceAccount of that namespace (no hard-coded subject namespace)', () => {
    const overlay = mkdtempSync(join(tmpdir(), 'kbrackup-overlay-'));
    writeFileSync(join(overlay, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: shop\nresources:\n  - ${relative(overlay, dir)}\n`);
    const docs = kustomize(overlay);
    for (const doc of docs) assert.equal(doc.metadata.namespace, 'shop');
    const [binding] = docs.filter((d) => d.kind === 'RoleBinding');
    const [subject, ...more] = binding!.subjects as Obj[];
    assert.equal(more.length, 0);
    // RBAC reads a ServiceAccount subject without namespace as one in the binding's own namespace.
    assert.equal(subject!.namespace ?? binding!.metadata.namespace, 'shop', 'the overlay binds its own ServiceAccount');
    const [raw] = yamlDocs(join(dir, 'rbac.yaml')).filter((d) => d.kind === 'RoleBinding');
    assert.deepEqual(raw!.subjects, [{ kind: 'ServiceAccount', name: 'kbrackup' }], 'no namespace written into the file (kubectl apply -n works too)');
  });

  test('the CI wait script ends on complete, on failed, and at its timeout, each with its own exit code', () => {
    const bin = mkdtempSync(join(tmpdir(), 'kbrackup-kubectl-'));
    // A kubectl that answers `get` with the next line of $STATES (the last one repeats) and `logs` with one line.
    writeFileSync(
      join(bin, 'kubectl'),
      '#!/usr/bin/env bash\ncase "$3" in\n  get) n=$(cat "$STATES.n" 2>/dev/null || echo 1); sed -n "${n}p;\\$p" "$STATES" | head -1; echo $((n + 1)) > "$STATES.n" ;;\n  logs) echo "backup finished" ;;\nesac\n',
    );
    chmodSync(join(bin, 'kubectl'), 0o755);
    const wait = (states: string[], timeout: string): { status: number | null; out: string; seconds: number } => {
      const file = join(bin, `states-${states.join('-') || 'none'}`);
      writeFileSync(file, `${states.join('\n')}\n`);
      const started = Date.now();
      const res = spawnSync('bash', [join(ROOT, 'k8s/examples/wait-for-job.sh'), 'backup', 'job.batch/kbrackup-ci-x', timeout], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, STATES: file, WAIT_INTERVAL: '0.05' }, timeout: 20_000 });
      return { status: res.status, out: res.stdout + res.stderr, seconds: (Date.now() - started) / 1000 };
    };
    const complete = wait(['', 'SuccessCriteriaMet ', 'SuccessCriteriaMet Complete '], '30');
    assert.equal(complete.status, 0, complete.out);
    assert.match(complete.out, /backup finished\njob\.batch\/kbrackup-ci-x completed/);
    const failed = wait(['', 'FailureTarget Failed '], '30');
    assert.equal(failed.status, 1, failed.out);
    assert.match(failed.out, /job\.batch\/kbrackup-ci-x failed/);
    const stuck = wait([''], '1');
    assert.equal(stuck.status, 2, stuck.out);
    assert.match(stuck.out, /neither completed nor failed within 1 s/);
    assert.ok(stuck.seconds < 5, `gave up after its timeout (${stuck.seconds} s)`);
  });
});
