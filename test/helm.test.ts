import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHART = join(ROOT, 'helm/kbrackup');
const CI = join(CHART, 'ci');
const RENDERER_SRC = join(ROOT, 'test/helm-render');

type Obj = Record<string, any>;
interface Rendered {
  manifests: Array<{ source: string; doc: Obj }>;
  notes: string;
}

/** Build the Go renderer once per version of its source (cached in the temp dir across runs). */
function buildRenderer(): string {
  const hash = createHash('sha256').update(readFileSync(join(RENDERER_SRC, 'main.go'))).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), `kbrackup-helm-render-${hash}`);
  const bin = join(dir, 'helm-render');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  execFileSync('go', ['build', '-o', tmp, '.'], {
    cwd: RENDERER_SRC,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: join(tmpdir(), 'kbrackup-gocache'), GOFLAGS: '' },
  });
  renameSync(tmp, bin);
  return bin;
}

let renderer: string;
const scratch = mkdtempSync(join(tmpdir(), 'kbrackup-helm-'));

function render(...valueFiles: string[]): Rendered {
  return JSON.parse(execFileSync(renderer, ['--json', '--name', 'kb', '--namespace', 'backup', CHART, ...valueFiles], { encoding: 'utf8' }));
}

/** Render and expect the chart to refuse; returns its error message. */
function renderError(values: string): string {
  const file = join(scratch, `${createHash('sha256').update(values).digest('hex').slice(0, 8)}.yaml`);
  writeFileSync(file, values);
  const res = spawnSync(renderer, ['--json', CHART, file], { encoding: 'utf8' });
  assert.notEqual(res.status, 0, `expected the chart to reject:\n${values}`);
  return res.stderr;
}

function yamlDocs(...files: string[]): Obj[] {
  return JSON.parse(execFileSync(renderer, ['yaml2json', ...files], { encoding: 'utf8' }));
}

function mergedValues(...valueFiles: string[]): Obj {
  return JSON.parse(execFileSync(renderer, ['values', CHART, ...valueFiles], { encoding: 'utf8' }));
}

/** Validate against the Kubernetes OpenAPI schema of its kind (kubernetes-models); throws with the field paths. */
async function validateK8s(doc: Obj): Promise<void> {
  const mod = (await import(`kubernetes-models/${doc.apiVersion}/${doc.kind}`)) as Record<string, new (data: Obj) => { validate(): void }>;
  const Model = mod[doc.kind];
  assert.ok(Model, `kubernetes-models knows ${doc.apiVersion} ${doc.kind}`);
  new Model(doc).validate();
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function byKind(r: Rendered, kind: string): Obj[] {
  return r.manifests.filter((m) => m.doc.kind === kind).map((m) => m.doc);
}

function env(container: Obj, name: string): Obj | undefined {
  return (container.env as Obj[]).find((e) => e.name === name);
}

/** What every kbrackup pod must look like, wherever it comes from (chart or k8s/). */
function checkPod(pod: Obj, component: string): void {
  const spec = pod.spec as Obj;
  assert.equal(spec.restartPolicy, 'Never');
  assert.equal(spec.securityContext.runAsNonRoot, true);
  assert.equal(spec.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(spec.securityContext.fsGroup, undefined, 'fsGroup would chown the source volumes');
  assert.equal(pod.metadata.labels['app.kubernetes.io/component'], component);
  const [container, ...others] = spec.containers as Obj[];
  assert.equal(others.length, 0);
  assert.equal(container!.name, 'kbrackup');
  const sc = container!.securityContext;
  assert.equal(sc.readOnlyRootFilesystem, true);
  assert.equal(sc.allowPrivilegeEscalation, false);
  assert.equal(sc.runAsNonRoot, true);
  assert.deepEqual(sc.capabilities.drop, ['ALL']);
  assert.equal(sc.capabilities.add, undefined);
  assert.equal(sc.seccompProfile.type, 'RuntimeDefault');
  assert.ok(container!.resources.limits.memory, 'a memory limit');
  assert.equal(container!.resources.requests.memory, container!.resources.limits.memory, 'request = limit: no overcommit surprises');
  const temp = (spec.volumes as Obj[]).find((v) => v.name === 'temp');
  assert.ok(temp?.emptyDir?.sizeLimit, 'temp is a size-limited emptyDir');
  assert.deepEqual((container!.volumeMounts as Obj[]).find((m) => m.name === 'temp'), { name: 'temp', mountPath: '/tmp/kbrackup' });
  assert.equal(env(container!, 'KBRACKUP_TEMP_DIR')?.value, '/tmp/kbrackup');
  assert.equal(env(container!, 'POD_NAME')?.valueFrom.fieldRef.fieldPath, 'metadata.name');
  assert.equal(env(container!, 'POD_NAMESPACE')?.valueFrom.fieldRef.fieldPath, 'metadata.namespace');
  for (const e of container!.env as Obj[]) {
    if (/SECRET|PASSWORD|ACCESS_KEY|TOKEN/.test(e.name)) assert.ok(e.valueFrom?.secretKeyRef, `${e.name} comes from a Secret`);
  }
  for (const m of container!.volumeMounts as Obj[]) {
    if (m.name.startsWith('source-') || ['credentials', 'sftp', 'key'].includes(m.name)) assert.equal(m.readOnly, true, `${m.name} is mounted read-only`);
  }
  for (const v of spec.volumes as Obj[]) {
    if (v.name.startsWith('source-') && v.persistentVolumeClaim) assert.equal(v.persistentVolumeClaim.readOnly, true);
    if (v.name.startsWith('source-') && v.hostPath) assert.equal(v.hostPath.type, 'Directory');
    if (v.secret) assert.equal(v.secret.defaultMode, 0o444);
  }
}

/** What every backup Job (from a CronJob or applied by CI) must look like. */
function checkBackupJob(jobSpec: Obj): void {
  assert.ok(jobSpec.backoffLimit <= 2, 'a retry repeats a big upload');
  assert.ok(jobSpec.activeDeadlineSeconds > 0);
  assert.deepEqual(jobSpec.podFailurePolicy.rules, [
    { action: 'FailJob', onExitCodes: { containerName: 'kbrackup', operator: 'In', values: [10, 12] } },
    { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
  ]);
  const pod = jobSpec.template;
  checkPod(pod, 'backup');
  const container = pod.spec.containers[0];
  assert.equal(container.args[0], 'backup');
  const root = container.args.at(-1) as string;
  for (const m of container.volumeMounts as Obj[]) {
    if (m.name.startsWith('source-')) assert.ok(m.mountPath.startsWith(`${root}/`), `${m.mountPath} is below the backed-up ${root}`);
  }
  assert.equal(pod.spec.automountServiceAccountToken, env(container, 'KBRACKUP_KUBERNETES')?.value !== 'off');
}

function checkCronJob(cron: Obj): void {
  assert.ok(cron.metadata.name.length <= 52, 'the Job name adds 11 characters');
  assert.match(cron.metadata.name, DNS_LABEL);
  assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
  assert.ok(cron.spec.startingDeadlineSeconds > 0);
  assert.equal(typeof cron.spec.successfulJobsHistoryLimit, 'number');
  assert.equal(typeof cron.spec.failedJobsHistoryLimit, 'number');
  assert.equal(typeof cron.spec.suspend, 'boolean');
  checkBackupJob(cron.spec.jobTemplate.spec);
  assert.equal(env(cron.spec.jobTemplate.spec.template.spec.containers[0], 'CRONJOB_NAME')?.value, cron.metadata.name);
}

const ROLE_RULES = [
  { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] },
];

/** Checks every render shares: schema-valid documents, standard labels, consistent names. */
async function checkRender(r: Rendered): Promise<void> {
  for (const { source, doc } of r.manifests) {
    await assert.doesNotReject(validateK8s(doc), `${source}: ${doc.kind} ${doc.metadata?.name} matches the Kubernetes schema`);
    assert.match(doc.metadata.name, DNS_LABEL);
    assert.ok(doc.metadata.name.length <= 63);
    assert.equal(doc.metadata.namespace, 'backup');
    const labels = doc.metadata.labels as Obj;
    for (const key of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by', 'helm.sh/chart']) {
      assert.ok(labels[key], `${doc.kind} ${doc.metadata.name} has label ${key}`);
    }
    assert.equal(labels['app.kubernetes.io/instance'], 'kb');
    assert.equal(labels['app.kubernetes.io/managed-by'], 'Helm');
  }
  for (const cron of byKind(r, 'CronJob')) checkCronJob(cron);
  for (const role of byKind(r, 'Role')) assert.deepEqual(role.rules, ROLE_RULES);
  const sa = byKind(r, 'ServiceAccount')[0];
  for (const binding of byKind(r, 'RoleBinding')) {
    assert.equal(binding.roleRef.name, byKind(r, 'Role')[0]?.metadata.name);
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa?.metadata.name, namespace: 'backup' }]);
  }
}

function podSpec(doc: Obj): Obj {
  return doc.kind === 'CronJob' ? doc.spec.jobTemplate.spec.template.spec : doc.kind === 'Job' ? doc.spec.template.spec : doc.spec;
}

function container(doc: Obj): Obj {
  return podSpec(doc).containers[0];
}

describe('Helm chart', () => {
  before(() => {
    renderer = buildRenderer();
  });

  test('defaults alone install only the ServiceAccount and RBAC, and NOTES say what to add', async () => {
    const r = render();
    assert.deepEqual(r.manifests.map((m) => m.doc.kind).sort(), ['Role', 'RoleBinding', 'ServiceAccount']);
    await checkRender(r);
    assert.match(r.notes, /No backup set is configured yet/);
  });

  test('minimal values: one CronJob, filesystem repository on a PVC, 64Mi, hook test pod', async () => {
    const r = render(join(CI, 'minimal-values.yaml'));
    await checkRender(r);
    const [cron, ...more] = byKind(r, 'CronJob');
    assert.equal(more.length, 0);
    assert.equal(cron!.metadata.name, 'kb-kbrackup-app');
    assert.equal(cron!.spec.schedule, '0 2 * * *');
    assert.equal(cron!.spec.timeZone, undefined);
    const c = container(cron!);
    assert.deepEqual(c.args, ['backup', '/data']);
    assert.deepEqual(c.resources, { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '64Mi' } });
    assert.equal(env(c, 'KBRACKUP_REPO')?.value, '/repository');
    assert.equal(env(c, 'KBRACKUP_SOURCE')?.value, 'app');
    assert.equal(env(c, 'KBRACKUP_CREDENTIALS')?.value, '/etc/kbrackup/credentials/backup.cred');
    assert.equal(env(c, 'KBRACKUP_TEMP_LIMIT')?.value, '1Gi');
    assert.equal(env(c, 'JOB_NAME')?.valueFrom.fieldRef.fieldPath, "metadata.labels['batch.kubernetes.io/job-name']");
    assert.deepEqual((c.volumeMounts as Obj[]).find((m) => m.name === 'repository'), { name: 'repository', mountPath: '/repository', readOnly: false });
    assert.deepEqual((c.volumeMounts as Obj[]).find((m) => m.name === 'source-data'), { name: 'source-data', mountPath: '/data/data', readOnly: true });
    const spec = podSpec(cron!);
    assert.equal(spec.serviceAccountName, 'kb-kbrackup');
    assert.equal(spec.automountServiceAccountToken, true);
    assert.equal(spec.volumes.find((v: Obj) => v.name === 'credentials').secret.secretName, 'kbrackup-credentials');

    const [pod] = byKind(r, 'Pod');
    assert.equal(pod!.metadata.annotations['helm.sh/hook'], 'test');
    checkPod(pod!, 'test');
    assert.deepEqual(container(pod!).args, ['snapshots']);
    assert.equal(podSpec(pod!).automountServiceAccountToken, false);
    assert.match(r.notes, /kubectl -n backup create job --from=cronjob\/kb-kbrackup-app kb-kbrackup-app-manual-\$\(date \+%s\)/);
    assert.match(r.notes, /helm test kb -n backup/);
  });

  test('S3 values: secrets by reference, chart-wide settings, per-set overrides merged over them', async () => {
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
    assert.equal(env(u, 'NODE_OPTIONS')?.value, '--max-old-space-size=64');
    assert.equal(env(u, 'KBRACKUP_TEMP_LIMIT')?.value, '4Gi');
    assert.equal(u.resources.limits.memory, '128Mi');
    assert.equal(podSpec(uploads!).securityContext.runAsUser, 65532, 'the other set keeps the default user');
    assert.equal(podSpec(uploads!).volumes.find((v: Obj) => v.name === 'temp').emptyDir.sizeLimit, '4Gi');
  });

  test('SFTP values: key and known_hosts from a Secret, hostPath sources, no API access when the integration is off', async () => {
    const r = render(join(CI, 'sftp-values.yaml'));
    await checkRender(r);
    assert.deepEqual(r.manifests.map((m) => m.doc.kind).sort(), ['CronJob', 'Pod']);
    const [cron] = byKind(r, 'CronJob');
    assert.equal(cron!.metadata.name, 'node-backup-etc');
    const c = container(cron!);
    assert.deepEqual(c.args, ['backup', '/host']);
    assert.equal(env(c, 'KBRACKUP_SFTP_KEY')?.value, '/etc/kbrackup/sftp/id_ed25519');
    assert.equal(env(c, 'KBRACKUP_SFTP_KNOWN_HOSTS')?.value, '/etc/kbrackup/sftp/known_hosts');
    assert.equal(env(c, 'KBRACKUP_CREDENTIALS')?.value, '/etc/kbrackup/credentials/node.cred');
    assert.equal(env(c, 'KBRACKUP_KUBERNETES')?.value, 'off');
    assert.equal(env(c, 'KBRACKUP_TEMP_LIMIT')?.value, '256Mi');
    const spec = podSpec(cron!);
    assert.equal(spec.serviceAccountName, 'backup-runner');
    assert.equal(spec.automountServiceAccountToken, false);
    assert.deepEqual(spec.volumes.find((v: Obj) => v.name === 'sftp').secret.items.map((i: Obj) => i.key), ['id_ed25519', 'known_hosts']);
    assert.deepEqual(spec.volumes.find((v: Obj) => v.name === 'source-etc').hostPath, { path: '/etc', type: 'Directory' });
    assert.deepEqual(spec.volumes.find((v: Obj) => v.name === 'temp').emptyDir, { sizeLimit: '512Mi', medium: 'Memory' });
    assert.deepEqual((c.volumeMounts as Obj[]).map((m) => m.mountPath), ['/tmp/kbrackup', '/etc/kbrackup/credentials', '/etc/kbrackup/sftp', '/etc/ssl/corporate', '/host/etc', '/host/kubelet/config']);
    assert.ok(spec.affinity.nodeAffinity);
  });

  test('restore values: a one-off Job per revision, private key from a Secret, writable target', async () => {
    const r = render(join(CI, 'restore-values.yaml'));
    await checkRender(r);
    const [job] = byKind(r, 'Job');
    assert.equal(job!.metadata.name, 'kb-kbrackup-restore-1');
    assert.equal(job!.metadata.labels['app.kubernetes.io/component'], 'restore');
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
    assert.equal(env(c, 'KBRACKUP_REPO')?.value, 's3://backups/cluster-a');
    assert.deepEqual((c.volumeMounts as Obj[]).find((m) => m.name === 'target'), { name: 'target', mountPath: '/restore' });
    assert.equal(c.resources.limits.memory, '128Mi');
    const spec = podSpec(job!);
    assert.equal(spec.securityContext.runAsUser, 1000);
    assert.equal(spec.securityContext.runAsNonRoot, true);
    assert.equal(spec.volumes.find((v: Obj) => v.name === 'target').persistentVolumeClaim.claimName, 'app-data-restored');
    assert.equal(spec.volumes.find((v: Obj) => v.name === 'key').secret.secretName, 'kbrackup-owner-key');
    assert.match(r.notes, /kubectl -n backup logs -f job\/kb-kbrackup-restore-1/);
  });

  test('values.schema.json accepts every example and the defaults, and rejects mistakes', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    // strictRequired off: `oneOf: [{required: [a]}, {required: [b]}]` is the standard way to say "exactly one of".
    const validate = new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile(schema);
    for (const file of ['', 'minimal-values.yaml', 's3-values.yaml', 'sftp-values.yaml', 'restore-values.yaml']) {
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
      ['source with neither', { ...base, backups: [{ ...set, sources: [{ name: 'x' }] }] }],
      ['unknown key in a set', { ...base, backups: [{ ...set, schedul: '@daily' }] }],
      ['decimal size for the emptyDir', { ...base, temp: { ...base.temp, sizeLimit: '1GB' } }],
      ['integration mode', { ...base, kubernetesIntegration: 'maybe' }],
      ['repository scheme', { ...base, repository: { ...base.repository, url: 'ftp://x/y' } }],
      ['restore conflict mode', { ...base, restore: { ...base.restore, conflict: 'merge' } }],
      ['backoffLimit too high', { ...base, backoffLimit: 20 }],
      ['tag with a comma', { ...base, tags: ['a,b'] }],
      ['image pull policy', { ...base, image: { ...base.image, pullPolicy: 'Sometimes' } }],
    ];
    for (const [what, values] of bad) assert.equal(validate(values), false, `schema rejects: ${what}`);
  });

  test('the templates refuse what the schema cannot see, with clear messages', () => {
    const minimal = readFileSync(join(CI, 'minimal-values.yaml'), 'utf8');
    assert.match(renderError(`${minimal}\nfullnameOverride: a-very-long-release-name-for-backups-of-the-cluster\n`), /CronJob name "a-very-long-release-name-for-backups-of-the-cluster-app" is 55 characters; Kubernetes allows 52 \(the Job name adds 11\)/);
    assert.match(renderError('backups: [{name: app, sources: [{name: d, persistentVolumeClaim: d}]}]\nrepository: {persistentVolumeClaim: r}\n'), /repository\.credentials\.existingSecret is required/);
    assert.match(renderError('backups: [{name: app, sources: [{name: d, persistentVolumeClaim: d}]}]\nrepository: {credentials: {existingSecret: c}}\n'), /repository\.url \(or repository\.persistentVolumeClaim\) is required/);
    assert.match(renderError(`${minimal.replace('        persistentVolumeClaim: app-data', '        persistentVolumeClaim: app-data\n        mountPath: /elsewhere')}`), /mounted at \/elsewhere, outside of the backed-up path \/data/);
    assert.match(renderError(`${minimal}\nrestore: {enabled: true, backup: nope, target: {persistentVolumeClaim: t}, key: {existingSecret: k}}\n`), /restore\.backup "nope" names no entry of backups/);
    assert.match(renderError(`${minimal}\nrestore: {enabled: true, key: {existingSecret: k}}\n`), /restore\.target\.persistentVolumeClaim is required/);
  });
});

describe('plain manifests (k8s/)', () => {
  before(() => {
    renderer ??= buildRenderer();
  });

  test('kustomization lists existing files; every document matches its Kubernetes schema and the chart', async () => {
    const dir = join(ROOT, 'k8s');
    const [kustomization] = yamlDocs(join(dir, 'kustomization.yaml'));
    assert.equal(kustomization!.kind, 'Kustomization');
    const docs = yamlDocs(...(kustomization!.resources as string[]).map((f) => join(dir, f)));
    const [example] = yamlDocs(join(dir, 'examples/ci-backup-job.yaml'));
    for (const doc of [...docs, example!]) await validateK8s(doc);
    const kinds = docs.map((d) => d.kind).sort();
    assert.deepEqual(kinds, ['CronJob', 'Role', 'RoleBinding', 'ServiceAccount']);
    const cron = docs.find((d) => d.kind === 'CronJob')!;
    checkCronJob(cron);
    assert.equal(docs.find((d) => d.kind === 'Role')!.rules.length, ROLE_RULES.length);
    assert.deepEqual(docs.find((d) => d.kind === 'Role')!.rules, ROLE_RULES);
    assert.deepEqual(docs.find((d) => d.kind === 'RoleBinding')!.subjects, [{ kind: 'ServiceAccount', name: 'kbrackup', namespace: kustomization!.namespace }]);
    assert.equal(podSpec(cron).serviceAccountName, 'kbrackup');

    assert.equal(example!.kind, 'Job');
    assert.equal(example!.metadata.generateName, 'kbrackup-ci-');
    assert.ok(example!.spec.ttlSecondsAfterFinished > 0);
    checkBackupJob(example!.spec);

    // Same pod hardening as the chart renders by default.
    const chartCron = byKind(render(join(CI, 's3-values.yaml')), 'CronJob')[1]!;
    assert.deepEqual(container(cron).securityContext, container(chartCron).securityContext);
    assert.deepEqual(container(example!).securityContext, container(chartCron).securityContext);
    for (const { name } of container(cron).env as Obj[]) assert.ok(env(container(chartCron), name), `the chart sets ${name} too`);
  });
});
