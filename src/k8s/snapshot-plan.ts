import { readFile } from 'node:fs/promises';
import type { V1Job } from '@kubernetes/client-node';
import { ConfigError, describeError } from '../errors.js';

/** One source volume to back up from a CSI snapshot instead of the live PVC. */
export interface SnapshotSource {
  /** The volume of the backup Job's pod that gets the clone (e.g. source-db). */
  volume: string;
  /** The live PVC that is snapshotted. */
  persistentVolumeClaim: string;
  /** Empty: the cluster's default VolumeSnapshotClass for the PVC's driver. */
  volumeSnapshotClassName?: string;
  /** Storage class of the clone; empty: the live PVC's. */
  storageClassName?: string;
}

/** What the chart renders for a backup set with volumeSnapshot sources: the backup Job to run, and which volumes to clone. */
export interface SnapshotPlan {
  job: V1Job;
  snapshots: SnapshotSource[];
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalName(value: unknown, what: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > 253 || !/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(value)) throw new ConfigError(`${what} must be a Kubernetes object name`);
  return value;
}

/** Check a parsed plan; every mistake is a one-line ConfigError naming the field. */
export function validatePlan(value: unknown, source: string): SnapshotPlan {
  const fail = (message: string): never => {
    throw new ConfigError(`${source}: ${message}`);
  };
  if (!isObject(value)) return fail('not a JSON object');
  const job = value.job;
  if (!isObject(job) || job.kind !== 'Job' || job.apiVersion !== 'batch/v1') return fail('job must be a batch/v1 Job');
  const podSpec = (job as V1Job).spec?.template?.spec;
  if (!podSpec?.containers?.length) return fail('job.spec.template.spec has no containers');
  const volumes = new Set((podSpec.volumes ?? []).map((v) => v.name));
  if (!Array.isArray(value.snapshots) || value.snapshots.length === 0) return fail('snapshots must list at least one volume');
  const snapshots = value.snapshots.map((entry: unknown, i: number): SnapshotSource => {
    const at = `snapshots[${i}]`;
    if (!isObject(entry)) return fail(`${at} is not an object`);
    if (typeof entry.volume !== 'string' || !volumes.has(entry.volume)) return fail(`${at}.volume ${JSON.stringify(entry.volume)} names no volume of the backup Job`);
    if (typeof entry.persistentVolumeClaim !== 'string' || !DNS_LABEL.test(entry.persistentVolumeClaim)) return fail(`${at}.persistentVolumeClaim must name a PVC`);
    return {
      volume: entry.volume,
      persistentVolumeClaim: entry.persistentVolumeClaim,
      volumeSnapshotClassName: optionalName(entry.volumeSnapshotClassName, `${source}: ${at}.volumeSnapshotClassName`),
      storageClassName: optionalName(entry.storageClassName, `${source}: ${at}.storageClassName`),
    };
  });
  if (new Set(snapshots.map((s) => s.volume)).size !== snapshots.length) fail('a volume is listed twice in snapshots');
  return { job: job as V1Job, snapshots };
}

/** Read and check the plan file the chart mounts from its ConfigMap. */
export async function readPlan(path: string): Promise<SnapshotPlan> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the snapshot plan ${path}: ${describeError(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`snapshot plan ${path} is not JSON: ${describeError(err)}`);
  }
  return validatePlan(parsed, `snapshot plan ${path}`);
}
