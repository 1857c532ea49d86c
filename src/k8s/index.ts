/**
 * Kubernetes integration of a run: Events on the Job and a Lease per repository.
 *
 * Usage from the backup command (the CLI owns signals and exit codes):
 *
 *   const k8s = await startKubernetes({ mode: config.kubernetes, repo: config.repo, source }, logger);
 *   try {
 *     ...backup...
 *     await k8s.finish({ exitCode, durationSeconds, snapshotId, counters: summary, errors });
 *   } catch (err) {
 *     await k8s.finish({ exitCode: err.exitCode ?? 1, durationSeconds, error: describeError(err) });
 *     throw err;
 *   }
 *
 * startKubernetes takes the Lease (waiting for another holder up to KBRACKUP_LEASE_WAIT seconds,
 * then throwing LockedError, exit 11) and records BackupStarted. finish records BackupSucceeded,
 * BackupPartial or BackupFailed (from the exit code) and releases the Lease; close only releases
 * it (for a SIGTERM path that reports elsewhere). Both are idempotent and never throw. Outside a
 * cluster, or without RBAC, everything here logs one line and does nothing else.
 */
import type { Logger } from 'pino';
import type { V1ObjectReference } from '@kubernetes/client-node';
import { describeError, LockedError } from '../errors.js';
import { outcomeOf, type RunReport } from '../observe/report.js';
import { redactRepository } from '../observe/repository-label.js';
import { ApiServer, ApiStatusError } from './apiserver.js';
import { detectCluster, podIdentity, type ClusterConfig, type KubernetesMode, type PodIdentity } from './cluster.js';
import { buildEvent, involvedObject, recordEvent, type EventKind, type Operation } from './events.js';
import { RepositoryLease } from './lease.js';

export type { EventKind, Operation } from './events.js';
export type { KubernetesMode } from './cluster.js';

/** What startKubernetes needs to know about the run. */
export interface KubernetesOptions {
  mode: KubernetesMode;
  /** Repository URL as given; credentials in it are never sent to the API server. */
  repo: string;
  source?: string;
  /** backup (default) and maintenance (forget, prune, check) take the Lease; restore only records Events. */
  operation?: Operation;
  /** Default: KBRACKUP_LEASE_WAIT, else 300. */
  leaseWaitSeconds?: number;
  /** Default: KBRACKUP_LEASE_DURATION, else 60. Renewed every third of it. */
  leaseDurationSeconds?: number;
  /** Aborting it stops a wait for the Lease (the CLI's SIGTERM/SIGINT). */
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Tests: the API server to use instead of the in-cluster one. */
  cluster?: ClusterConfig;
  serviceAccountDir?: string;
  pollIntervalMs?: number;
}

/** The run's handle on the cluster. */
export interface KubernetesSession {
  /** True when Events and/or the Lease are in use. */
  readonly active: boolean;
  /** Record one Event on the Job; never throws. */
  event(kind: EventKind, report?: RunReport): Promise<void>;
  /** Record the final Event for report.exitCode and release the Lease; never throws. */
  finish(report: RunReport): Promise<void>;
  /** Release the Lease (idempotent); never throws. */
  close(): Promise<void>;
}

const inactive: KubernetesSession = { active: false, event: async () => {}, finish: async () => {}, close: async () => {} };

function seconds(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value.trim() !== '' && Number.isFinite(n) && n >= 0 ? n : fallback;
}

const RBAC_HINT = 'forbidden: the Role of the Helm chart or k8s/rbac.yaml grants it';

/** No permission (401/403): the integration is switched off with one line, the run goes on. */
function isDenied(err: unknown): boolean {
  return err instanceof ApiStatusError && (err.status === 401 || err.status === 403);
}

class Session implements KubernetesSession {
  readonly active = true;
  #eventsOn = true;
  #lease: RepositoryLease | undefined;
  #finished = false;

  constructor(
    readonly api: ApiServer,
    readonly identity: PodIdentity,
    readonly target: V1ObjectReference | undefined,
    readonly context: { operation: Operation; source: string | undefined; repository: string },
    readonly logger: Logger,
  ) {
    if (!target) {
      this.#eventsOn = false;
      logger.info('Kubernetes: POD_NAME and JOB_NAME are not set (downward API), so no Events are recorded');
    }
  }

  set lease(lease: RepositoryLease) {
    this.#lease = lease;
  }

  async event(kind: EventKind, report?: RunReport): Promise<void> {
    if (!this.#eventsOn || !this.target) return;
    try {
      await recordEvent(this.api, buildEvent(kind, this.context, this.target, this.identity, report));
    } catch (err) {
      this.#eventsOn = false;
      this.logger.warn(
        { err: describeError(err) },
        isDenied(err)
          ? `Kubernetes: the service account may not create events (${RBAC_HINT}); carrying on without Events`
          : `Kubernetes: cannot record Events (${describeError(err)}); carrying on without them`,
      );
    }
  }

  async finish(report: RunReport): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    await this.event(outcomeOf(report.exitCode), report);
    await this.close();
  }

  async close(): Promise<void> {
    const lease = this.#lease;
    this.#lease = undefined;
    if (!lease) return;
    try {
      await lease.release();
    } catch (err) {
      this.logger.warn({ err: describeError(err), lease: lease.name }, 'Kubernetes: could not release the repository Lease; it expires on its own');
    }
  }
}

/** Connect to the cluster when running in one: take the repository Lease and record the Started Event. */
export async function startKubernetes(options: KubernetesOptions, logger: Logger): Promise<KubernetesSession> {
  const env = options.env ?? process.env;
  const detection = options.cluster ? { config: options.cluster } : detectCluster(options.mode, env, options.serviceAccountDir);
  if (!detection.config) {
    if (options.mode === 'on') logger.warn(`Kubernetes: KBRACKUP_KUBERNETES=on but not in a cluster (${detection.reason}); carrying on without Events and Lease`);
    else if (options.mode === 'auto') logger.info(`Kubernetes: not in a cluster (${detection.reason}); no Events or Lease`);
    return inactive;
  }
  const api = new ApiServer(detection.config);
  const identity = podIdentity(env);
  const operation = options.operation ?? 'backup';
  const repository = redactRepository(options.repo);
  const context = { operation, source: options.source || undefined, repository };
  const session = new Session(api, identity, involvedObject(identity, api.namespace), context, logger);
  if (operation !== 'restore') {
    const durationSeconds = Math.max(15, Math.round(options.leaseDurationSeconds ?? seconds(env.KBRACKUP_LEASE_DURATION, 60)));
    const lease = new RepositoryLease(
      api,
      {
        repository,
        holder: identity.holder,
        durationSeconds,
        renewIntervalMs: (durationSeconds * 1000) / 3,
        waitSeconds: options.leaseWaitSeconds ?? seconds(env.KBRACKUP_LEASE_WAIT, 300),
        pollIntervalMs: options.pollIntervalMs ?? 5000,
        signal: options.signal,
      },
      logger,
    );
    try {
      await lease.acquire();
      session.lease = lease;
    } catch (err) {
      if (err instanceof LockedError) {
        await session.finish({ exitCode: err.exitCode, durationSeconds: 0, error: err.message });
        throw err;
      }
      if (options.signal?.aborted) throw err;
      logger.warn(
        { err: describeError(err) },
        isDenied(err)
          ? `Kubernetes: the service account may not get/create/update leases (${RBAC_HINT}); carrying on without the repository Lease`
          : `Kubernetes: cannot take the repository Lease (${describeError(err)}); carrying on without it`,
      );
    }
  }
  await session.event('started');
  return session;
}
