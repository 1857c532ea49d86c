/**
 * Back up live volumes from CSI snapshots: snapshot each PVC, clone every snapshot into a temporary
 * PVC, run the backup Job the chart rendered with the clones mounted in place of the live volumes,
 * wait for it, and delete clones and snapshots again, also when stopped or failed.
 *
 * This runs in a pod of its own (the CronJob's), which holds API permissions but no repository
 * secrets; the backup pod it creates holds the secrets but may only record Events and hold the Lease.
 * A pod cannot mount a PVC that does not exist when it starts, hence the two pods.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { V1Job, V1OwnerReference, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { describeError, KbrackupError } from '../errors.js';
import { apiError, statusOf, type KubeClients } from './kube-client.js';
import type { SnapshotPlan, SnapshotSource } from './snapshot-plan.js';

const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io';
const SNAPSHOT_VERSION = 'v1';
const SNAPSHOTS = 'volumesnapshots';
/** Labels every object made here, so `kubectl get volumesnapshots,pvc,jobs -l kbrackup.io/snapshot-job=JOB` finds them. */
export const OWNER_LABEL = 'kbrackup.io/snapshot-job';

/** The parts of a snapshot.storage.k8s.io/v1 VolumeSnapshot used here (client-node has no model for it). */
interface VolumeSnapshot {
  apiVersion: string;
  kind: 'VolumeSnapshot';
  metadata: { name: string; namespace: string; labels?: Record<string, string>; ownerReferences?: V1OwnerReference[]; deletionTimestamp?: string };
  spec: { source: { persistentVolumeClaimName: string }; volumeSnapshotClassName?: string };
  status?: { readyToUse?: boolean; restoreSize?: string; error?: { message?: string } };
}

/** A step of the flow failed: names the object and what to look at. */
export class SnapshotBackupError extends KbrackupError {}

/** What the orchestrator needs besides the plan. */
export interface SnapshotBackupOptions {
  plan: SnapshotPlan;
  namespace: string;
  /** The orchestrator's own Job: it names the objects made here and owns them, so they are garbage-collected with it. */
  owner: { jobName: string; jobUid?: string };
  /** How long a snapshot may take to become readyToUse. */
  readyTimeoutMs: number;
  pollIntervalMs: number;
  signal?: AbortSignal;
}

/** A DNS label of at most 63 characters for an object made for `parent`; long names keep a hash so they stay unique. */
export function childName(parent: string, suffix: string): string {
  const plain = `${parent}-${suffix}`;
  if (plain.length <= 63) return plain;
  const hash = createHash('sha256').update(plain).digest('hex').slice(0, 8);
  return `${plain.slice(0, 54).replace(/-+$/, '')}-${hash}`;
}

/** The exit code of the backup container in the Job's most recently finished pod. */
function exitCodeOf(pods: V1Pod[]): number | undefined {
  let latest: { at: number; code: number } | undefined;
  for (const pod of pods) {
    const terminated = pod.status?.containerStatuses?.find((c) => c.name === 'kbrackup')?.state?.terminated;
    if (!terminated) continue;
    const at = terminated.finishedAt ? new Date(terminated.finishedAt).getTime() : 0;
    if (!latest || at >= latest.at) latest = { at, code: terminated.exitCode };
  }
  return latest?.code;
}

/** One run of the snapshot flow; `run` returns the backup's exit code. */
export class SnapshotBackup {
  readonly #api: KubeClients;
  readonly #options: SnapshotBackupOptions;
  readonly #logger: Logger;
  readonly #snapshots: string[] = [];
  readonly #claims: string[] = [];
  #job: string | undefined;

  constructor(api: KubeClients, options: SnapshotBackupOptions, logger: Logger) {
    this.#api = api;
    this.#options = options;
    this.#logger = logger;
  }

  get #ns(): string {
    return this.#options.namespace;
  }

  #metadata(name: string): { name: string; namespace: string; labels: Record<string, string>; ownerReferences?: V1OwnerReference[] } {
    const { jobName, jobUid } = this.#options.owner;
    return {
      name,
      namespace: this.#ns,
      labels: { 'app.kubernetes.io/name': 'kbrackup', 'app.kubernetes.io/managed-by': 'kbrackup', [OWNER_LABEL]: jobName },
      // Not blockOwnerDeletion: that would need update on jobs/finalizers, which the Role does not grant.
      ...(jobUid ? { ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: jobUid, controller: false, blockOwnerDeletion: false }] } : {}),
    };
  }

  /** An object that exists already may be reused only if a previous try of this same Job made it (the pod was retried). */
  #reusable(kind: string, name: string, metadata: { labels?: Record<string, string>; deletionTimestamp?: unknown } | undefined): void {
    if (metadata?.labels?.[OWNER_LABEL] !== this.#options.owner.jobName) {
      throw new SnapshotBackupError(`${kind} ${this.#ns}/${name} exists and was not made by Job ${this.#options.owner.jobName}; refusing to touch it`);
    }
    // An evicted earlier try deleted it on its way out: it is going, so it cannot be used.
    if (metadata.deletionTimestamp) throw new SnapshotBackupError(`${kind} ${this.#ns}/${name} of an earlier try is still being deleted; the next run makes a new one`);
    this.#logger.info(`${kind} ${this.#ns}/${name} exists from an earlier try of this Job; using it`);
  }

  async #sleep(): Promise<void> {
    await sleep(this.#options.pollIntervalMs, undefined, { signal: this.#options.signal }).catch((err: unknown) => {
      this.#options.signal?.throwIfAborted();
      throw err;
    });
  }

  /** Snapshot, clone, back up, clean up. Cleanup runs whatever happened; its own failures are warnings. */
  async run(): Promise<number> {
    try {
      const claims = new Map<string, string>();
      for (const source of this.#options.plan.snapshots) {
        const live = await this.#liveClaim(source.persistentVolumeClaim);
        const snapshot = await this.#snapshot(source);
        claims.set(source.volume, await this.#clone(source, snapshot, live));
      }
      return await this.#backup(claims);
    } finally {
      await this.#cleanup();
    }
  }

  async #liveClaim(name: string): Promise<V1PersistentVolumeClaim> {
    let claim: V1PersistentVolumeClaim;
    try {
      claim = await this.#api.core.readNamespacedPersistentVolumeClaim({ name, namespace: this.#ns }, this.#api.options);
    } catch (err) {
      if (statusOf(err) === 404) throw new SnapshotBackupError(`PersistentVolumeClaim ${this.#ns}/${name} does not exist: sources[].volumeSnapshot.persistentVolumeClaim must name a PVC in the release namespace`);
      throw apiError('GET', `persistentvolumeclaims/${name}`, err);
    }
    if (claim.status?.phase !== 'Bound') throw new SnapshotBackupError(`PersistentVolumeClaim ${this.#ns}/${name} is ${claim.status?.phase ?? 'not bound'}: only a bound volume can be snapshotted`);
    return claim;
  }

  async #snapshot(source: SnapshotSource): Promise<VolumeSnapshot> {
    const name = childName(this.#options.owner.jobName, source.volume);
    const body: VolumeSnapshot = {
      apiVersion: `${SNAPSHOT_GROUP}/${SNAPSHOT_VERSION}`,
      kind: 'VolumeSnapshot',
      metadata: this.#metadata(name),
      spec: { source: { persistentVolumeClaimName: source.persistentVolumeClaim }, ...(source.volumeSnapshotClassName ? { volumeSnapshotClassName: source.volumeSnapshotClassName } : {}) },
    };
    const ref = { group: SNAPSHOT_GROUP, version: SNAPSHOT_VERSION, namespace: this.#ns, plural: SNAPSHOTS };
    try {
      await this.#api.custom.createNamespacedCustomObject({ ...ref, body }, this.#api.options);
      this.#snapshots.push(name);
      this.#logger.info({ snapshot: name, pvc: source.persistentVolumeClaim }, `VolumeSnapshot ${name} of PVC ${source.persistentVolumeClaim} created`);
    } catch (err) {
      if (statusOf(err) !== 409) throw apiError('POST', `volumesnapshots (${name})`, err);
      const existing = (await this.#api.custom.getNamespacedCustomObject({ ...ref, name }, this.#api.options).catch((e: unknown) => {
        throw apiError('GET', `volumesnapshots/${name}`, e);
      })) as VolumeSnapshot;
      this.#reusable('VolumeSnapshot', name, existing.metadata);
      this.#snapshots.push(name);
    }
    return this.#waitReady(name);
  }

  async #waitReady(name: string): Promise<VolumeSnapshot> {
    const deadline = Date.now() + this.#options.readyTimeoutMs;
    const ref = { group: SNAPSHOT_GROUP, version: SNAPSHOT_VERSION, namespace: this.#ns, plural: SNAPSHOTS, name };
    for (;;) {
      const snapshot = (await this.#api.custom.getNamespacedCustomObject(ref, this.#api.options).catch((err: unknown) => {
        throw apiError('GET', `volumesnapshots/${name}`, err);
      })) as VolumeSnapshot;
      const error = snapshot.status?.error?.message;
      if (error) throw new SnapshotBackupError(`VolumeSnapshot ${this.#ns}/${name} failed: ${error}`);
      if (snapshot.status?.readyToUse) {
        this.#logger.info({ snapshot: name, restoreSize: snapshot.status.restoreSize }, `VolumeSnapshot ${name} is ready`);
        return snapshot;
      }
      if (Date.now() >= deadline) {
        throw new SnapshotBackupError(
          `VolumeSnapshot ${this.#ns}/${name} is not readyToUse after ${Math.round(this.#options.readyTimeoutMs / 1000)} s (KBRACKUP_SNAPSHOT_TIMEOUT); check its VolumeSnapshotClass and the CSI driver's snapshotter (kubectl describe volumesnapshot ${name})`,
        );
      }
      await this.#sleep();
    }
  }

  async #clone(source: SnapshotSource, snapshot: VolumeSnapshot, live: V1PersistentVolumeClaim): Promise<string> {
    const name = snapshot.metadata.name;
    // The clone must be at least as large as the snapshot; restoreSize is what the driver reports for it.
    const size = snapshot.status?.restoreSize ?? live.spec?.resources?.requests?.storage;
    if (!size) throw new SnapshotBackupError(`VolumeSnapshot ${this.#ns}/${name} reports no restoreSize and PVC ${live.metadata?.name} requests no storage: cannot size the clone`);
    const storageClassName = source.storageClassName ?? live.spec?.storageClassName;
    const body: V1PersistentVolumeClaim = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: this.#metadata(name),
      spec: {
        // The backup pod mounts it read-only; ReadWriteOnce is what every CSI driver can provision.
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: size } },
        dataSource: { apiGroup: SNAPSHOT_GROUP, kind: 'VolumeSnapshot', name },
        ...(storageClassName ? { storageClassName } : {}),
      },
    };
    try {
      await this.#api.core.createNamespacedPersistentVolumeClaim({ namespace: this.#ns, body }, this.#api.options);
      this.#logger.info({ pvc: name, size, storageClassName }, `PVC ${name} cloned from VolumeSnapshot ${name}`);
    } catch (err) {
      if (statusOf(err) !== 409) throw apiError('POST', `persistentvolumeclaims (${name})`, err);
      const existing = await this.#api.core.readNamespacedPersistentVolumeClaim({ name, namespace: this.#ns }, this.#api.options).catch((e: unknown) => {
        throw apiError('GET', `persistentvolumeclaims/${name}`, e);
      });
      this.#reusable('PersistentVolumeClaim', name, existing.metadata);
    }
    this.#claims.push(name);
    return name;
  }

  /** The rendered backup Job with each snapshot volume pointing at its clone. */
  #jobBody(name: string, claims: Map<string, string>): V1Job {
    const template = this.#options.plan.job;
    const meta = this.#metadata(name);
    const podSpec = template.spec!.template.spec!;
    const volumes = (podSpec.volumes ?? []).map((volume) => {
      const claimName = claims.get(volume.name);
      return claimName ? { name: volume.name, persistentVolumeClaim: { claimName, readOnly: true } } : volume;
    });
    return {
      ...template,
      metadata: { ...template.metadata, ...meta, labels: { ...template.metadata?.labels, ...meta.labels } },
      spec: { ...template.spec!, template: { ...template.spec!.template, spec: { ...podSpec, volumes } } },
    };
  }

  async #backup(claims: Map<string, string>): Promise<number> {
    const name = childName(this.#options.owner.jobName, 'backup');
    try {
      await this.#api.batch.createNamespacedJob({ namespace: this.#ns, body: this.#jobBody(name, claims) }, this.#api.options);
      this.#logger.info({ job: name }, `backup Job ${name} created (kubectl logs job/${name})`);
    } catch (err) {
      if (statusOf(err) !== 409) throw apiError('POST', `jobs (${name})`, err);
      const existing = await this.#api.batch.readNamespacedJob({ name, namespace: this.#ns }, this.#api.options).catch((e: unknown) => {
        throw apiError('GET', `jobs/${name}`, e);
      });
      this.#reusable('Job', name, existing.metadata);
    }
    this.#job = name;
    const outcome = await this.#waitForJob(name);
    const pods = await this.#api.core.listNamespacedPod({ namespace: this.#ns, labelSelector: `batch.kubernetes.io/job-name=${name}` }, this.#api.options).catch((err: unknown) => {
      throw apiError('GET', `pods?labelSelector=batch.kubernetes.io/job-name=${name}`, err);
    });
    const code = exitCodeOf(pods.items) ?? (outcome === 'Complete' ? 0 : 1);
    // Finished: the Job stays for its logs (its TTL removes it); only an unfinished one is deleted in cleanup.
    this.#job = undefined;
    this.#logger.info({ job: name, exitCode: code }, `backup Job ${name} ${outcome === 'Complete' ? 'completed' : 'failed'} with exit code ${code}`);
    return code;
  }

  async #waitForJob(name: string): Promise<'Complete' | 'Failed'> {
    // The Job's own activeDeadlineSeconds ends it; this wait only guards against a Job controller that never reports.
    const deadlineSeconds = (this.#options.plan.job.spec?.activeDeadlineSeconds ?? 86_400) + 300;
    const deadline = Date.now() + deadlineSeconds * 1000;
    for (;;) {
      const job = await this.#api.batch.readNamespacedJob({ name, namespace: this.#ns }, this.#api.options).catch((err: unknown) => {
        throw apiError('GET', `jobs/${name}`, err);
      });
      const done = job.status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      if (done) return done.type as 'Complete' | 'Failed';
      if (Date.now() >= deadline) throw new SnapshotBackupError(`backup Job ${this.#ns}/${name} has not finished ${deadlineSeconds} s after it was created`);
      await this.#sleep();
    }
  }

  /** Delete what this run made: an unfinished backup Job (its pod gets SIGTERM), the clones, the snapshots. */
  async #cleanup(): Promise<void> {
    const attempt = async (what: string, remove: () => Promise<unknown>): Promise<void> => {
      try {
        await remove();
        this.#logger.info(`deleted ${what}`);
      } catch (err) {
        if (statusOf(err) === 404) return;
        this.#logger.warn({ err: describeError(apiError('DELETE', what, err)) }, `could not delete ${what}; it goes when the Job ${this.#options.owner.jobName} is garbage-collected`);
      }
    };
    const ns = this.#ns;
    if (this.#job) {
      const name = this.#job;
      await attempt(`Job ${name}`, () => this.#api.batch.deleteNamespacedJob({ name, namespace: ns, propagationPolicy: 'Background' }, this.#api.options));
    }
    for (const name of this.#claims) await attempt(`PVC ${name}`, () => this.#api.core.deleteNamespacedPersistentVolumeClaim({ name, namespace: ns }, this.#api.options));
    for (const name of this.#snapshots) {
      await attempt(`VolumeSnapshot ${name}`, () => this.#api.custom.deleteNamespacedCustomObject({ group: SNAPSHOT_GROUP, version: SNAPSHOT_VERSION, namespace: ns, plural: SNAPSHOTS, name }, this.#api.options));
    }
  }
}
