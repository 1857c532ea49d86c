import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';

/** Where a pod finds its service account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** How to reach the API server from inside the pod. */
export interface ClusterConfig {
  /** Base URL, e.g. https://10.96.0.1:443. */
  server: string;
  /** Re-read for every request: kubelet rotates projected tokens while a long backup runs. */
  tokenFile: string;
  ca: Buffer | undefined;
  namespace: string;
}

/** The result of looking for a cluster: a config, or the reason there is none. */
export type Detection = { config: ClusterConfig; reason?: undefined } | { config?: undefined; reason: string };

/** Whether the Kubernetes integration is wanted: auto = when a service account is mounted. */
export type KubernetesMode = 'auto' | 'on' | 'off';

/** Find the in-cluster API server the way client-go does: service env vars plus the mounted service account. */
export function detectCluster(mode: KubernetesMode, env: NodeJS.ProcessEnv = process.env, saDir = SERVICE_ACCOUNT_DIR): Detection {
  if (mode === 'off') return { reason: 'KBRACKUP_KUBERNETES=off' };
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return { reason: 'KUBERNETES_SERVICE_HOST/PORT are not set' };
  const tokenFile = join(saDir, 'token');
  if (!existsSync(tokenFile)) return { reason: `no service account token at ${tokenFile} (automountServiceAccountToken is off?)` };
  const caFile = join(saDir, 'ca.crt');
  const nsFile = join(saDir, 'namespace');
  const namespace = env.POD_NAMESPACE || (existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() : '');
  if (!namespace) return { reason: `neither POD_NAMESPACE nor ${nsFile} names the namespace` };
  return {
    config: {
      server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
      tokenFile,
      ca: existsSync(caFile) ? readFileSync(caFile) : undefined,
      namespace,
    },
  };
}

/** What the pod knows about itself from the downward API (see the chart's env). */
export interface PodIdentity {
  podName: string | undefined;
  podUid: string | undefined;
  jobName: string | undefined;
  jobUid: string | undefined;
  cronJobName: string | undefined;
  /** Lease holder: the pod name, or host and pid outside a pod. */
  holder: string;
}

/** Read the pod's identity from POD_NAME, POD_UID, JOB_NAME, JOB_UID and CRONJOB_NAME. */
export function podIdentity(env: NodeJS.ProcessEnv = process.env): PodIdentity {
  const get = (name: string): string | undefined => env[name]?.trim() || undefined;
  const podName = get('POD_NAME');
  return {
    podName,
    podUid: get('POD_UID'),
    jobName: get('JOB_NAME'),
    jobUid: get('JOB_UID'),
    cronJobName: get('CRONJOB_NAME'),
    holder: podName ?? `${hostname()}-${process.pid}`,
  };
}
