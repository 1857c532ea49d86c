import { ConfigError } from '../../errors.js';
import { detectCluster, podIdentity } from '../../k8s/cluster.js';
import { readPlan } from '../../k8s/snapshot-plan.js';
import type { CommandContext } from '../context.js';

/**
 * `snapshot-backup --plan FILE`: the CronJob pod of a backup set with volumeSnapshot sources. Snapshots
 * the live PVCs, clones them, runs the backup Job of the plan on the clones and exits with its exit code.
 */
export async function snapshotBackup(ctx: CommandContext): Promise<number> {
  const { config, logger } = ctx;
  const planFile = config.get('snapshotPlan');
  if (!planFile) throw new ConfigError('snapshot-backup: --plan / KBRACKUP_SNAPSHOT_PLAN is required (the chart mounts it from a ConfigMap)');
  const plan = await readPlan(planFile);
  const cluster = detectCluster('on');
  if (!cluster.config) throw new ConfigError(`snapshot-backup needs the Kubernetes API: ${cluster.reason}`);
  const identity = podIdentity();
  if (!identity.jobName) throw new ConfigError('snapshot-backup: JOB_NAME is not set (the chart sets it from the downward API); it names the snapshots and clones');
  // client-node is loaded only here: it costs ~110 MiB of RSS, which this pod (unlike a backup pod) can spare.
  const { inClusterConfig, kubeClients } = await import('../../k8s/kube-client.js');
  const { SnapshotBackup } = await import('../../k8s/snapshot-backup.js');
  const run = new SnapshotBackup(
    kubeClients(inClusterConfig()),
    {
      plan,
      namespace: cluster.config.namespace,
      owner: { jobName: identity.jobName, jobUid: identity.jobUid },
      readyTimeoutMs: config.get('snapshotTimeout') * 1000,
      pollIntervalMs: 5000,
      signal: ctx.signal,
    },
    logger,
  );
  return run.run();
}
