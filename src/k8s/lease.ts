import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { V1Lease } from '@kubernetes/client-node';
import { describeError, LockedError } from '../errors.js';
import type { ApiServer } from './apiserver.js';

/** A Date that serialises with microseconds, as the API server's MicroTime requires (milliseconds are rejected). */
class MicroTime extends Date {
  override toISOString(): string {
    return `${super.toISOString().slice(0, -1)}000Z`;
  }
}

/** The Lease name of a repository: a hash of its (redacted) URL, a valid DNS label of 25 characters. */
export function leaseName(repository: string): string {
  return `kbrackup-${createHash('sha256').update(repository).digest('hex').slice(0, 16)}`;
}

/** How a Lease is taken and kept. */
export interface LeaseOptions {
  /** Redacted repository URL: hashed into the name, shown in an annotation. */
  repository: string;
  holder: string;
  durationSeconds: number;
  /** How long to wait for another holder before giving up with exit code 11. */
  waitSeconds: number;
  pollIntervalMs: number;
  /** Normally a third of durationSeconds, so two renewals may fail before the Lease expires. */
  renewIntervalMs: number;
  signal?: AbortSignal;
}

/** Whether a Lease is free to take: released, expired, or already ours. */
function isFree(lease: V1Lease, holder: string, now: number): boolean {
  const spec = lease.spec ?? {};
  if (!spec.holderIdentity || spec.holderIdentity === holder) return true;
  const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
  return renewed + (spec.leaseDurationSeconds ?? 0) * 1000 < now;
}

function heldBy(lease: V1Lease): string {
  const spec = lease.spec ?? {};
  const renewed = spec.renewTime ? ` (renewed ${new Date(spec.renewTime).toISOString()}, valid ${spec.leaseDurationSeconds ?? 0} s)` : '';
  return `${spec.holderIdentity}${renewed}`;
}

/** A coordination.k8s.io/v1 Lease held for one repository while a backup runs. */
export class RepositoryLease {
  readonly name: string;
  readonly #api: ApiServer;
  readonly #options: LeaseOptions;
  readonly #logger: Logger;
  #lease: V1Lease | undefined;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> = Promise.resolve();

  constructor(api: ApiServer, options: LeaseOptions, logger: Logger) {
    this.#api = api;
    this.#options = options;
    this.#logger = logger;
    this.name = leaseName(options.repository);
  }

  get #path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.#api.namespace)}/leases`;
  }

  /**
   * Take the Lease: create it, or take it over once released or expired. While someone else holds
   * it, wait up to waitSeconds, then throw LockedError (exit 11). Returns once held and renewing.
   */
  async acquire(): Promise<void> {
    const deadline = Date.now() + this.#options.waitSeconds * 1000;
    let told = false;
    for (;;) {
      this.#options.signal?.throwIfAborted();
      const current = await this.#api.call<V1Lease>('GET', `${this.#path}/${this.name}`, undefined, [404]);
      const taken = current.status === 404 ? await this.#create() : await this.#takeOver(current.body);
      if (taken) break;
      if (current.status === 200 && !isFree(current.body, this.#options.holder, Date.now())) {
        const holder = heldBy(current.body);
        if (Date.now() >= deadline) {
          throw new LockedError(`repository ${this.#options.repository} is in use: Lease ${this.#api.namespace}/${this.name} is held by ${holder}; waited ${this.#options.waitSeconds} s (KBRACKUP_LEASE_WAIT)`);
        }
        if (!told) this.#logger.info({ lease: this.name, holder: current.body.spec?.holderIdentity }, `repository in use by ${holder}; waiting up to ${this.#options.waitSeconds} s for its Lease`);
        told = true;
        // An abort rejects with the caller's reason (the CLI's signal), not a generic AbortError.
        await sleep(Math.min(this.#options.pollIntervalMs, Math.max(0, deadline - Date.now())), undefined, { signal: this.#options.signal }).catch((err: unknown) => {
          this.#options.signal?.throwIfAborted();
          throw err;
        });
      }
    }
    this.#logger.info({ lease: this.name, namespace: this.#api.namespace }, 'holding the repository Lease');
    this.#timer = setInterval(() => {
      this.#renewing = this.#renewing.then(() => this.#renew());
    }, this.#options.renewIntervalMs);
    this.#timer.unref();
  }

  /** Stop renewing and hand the Lease back so the next job need not wait for it to expire. */
  async release(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#renewing;
    const lease = this.#lease;
    this.#lease = undefined;
    if (!lease) return;
    const released = this.#withSpec(lease, { leaseDurationSeconds: 1, renewTime: new MicroTime(), holderIdentity: undefined });
    const res = await this.#api.call<V1Lease>('PUT', `${this.#path}/${this.name}`, released, [409]);
    if (res.status === 409) this.#logger.warn({ lease: this.name }, 'the repository Lease changed hands before it was released');
  }

  #withSpec(lease: V1Lease, spec: NonNullable<V1Lease['spec']>): V1Lease {
    return { ...lease, spec: { ...lease.spec, ...spec } };
  }

  async #create(): Promise<boolean> {
    const now = new MicroTime();
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.name,
        namespace: this.#api.namespace,
        labels: { 'app.kubernetes.io/name': 'kbrackup', 'app.kubernetes.io/managed-by': 'kbrackup' },
        annotations: { 'kbrackup.io/repository': this.#options.repository },
      },
      spec: { holderIdentity: this.#options.holder, leaseDurationSeconds: this.#options.durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
    };
    // 409: another job created it first; the caller looks again.
    const res = await this.#api.call<V1Lease>('POST', this.#path, body, [409]);
    if (res.status === 409) return false;
    this.#lease = res.body;
    return true;
  }

  async #takeOver(lease: V1Lease): Promise<boolean> {
    if (!isFree(lease, this.#options.holder, Date.now())) return false;
    const now = new MicroTime();
    const changed = lease.spec?.holderIdentity !== this.#options.holder;
    const body = this.#withSpec(lease, {
      holderIdentity: this.#options.holder,
      leaseDurationSeconds: this.#options.durationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (changed ? 1 : 0),
    });
    // The update carries the resourceVersion just read: 409 means another job took it in between.
    const res = await this.#api.call<V1Lease>('PUT', `${this.#path}/${this.name}`, body, [409]);
    if (res.status === 409) return false;
    this.#lease = res.body;
    return true;
  }

  async #renew(): Promise<void> {
    const lease = this.#lease;
    if (!lease) return;
    try {
      const res = await this.#api.call<V1Lease>('PUT', `${this.#path}/${this.name}`, this.#withSpec(lease, { renewTime: new MicroTime() }), [409]);
      if (res.status !== 409) {
        this.#lease = res.body;
        return;
      }
      // Someone wrote the Lease since our last renewal: still ours only if the holder is unchanged.
      const fresh = await this.#api.call<V1Lease>('GET', `${this.#path}/${this.name}`);
      if (fresh.body.spec?.holderIdentity === this.#options.holder) {
        this.#lease = fresh.body;
        return this.#renew();
      }
      this.#lease = undefined;
      if (this.#timer) clearInterval(this.#timer);
      this.#logger.error({ lease: this.name }, `lost the repository Lease to ${heldBy(fresh.body)}; carrying on without it`);
    } catch (err) {
      this.#logger.warn({ lease: this.name, err: describeError(err) }, 'could not renew the repository Lease; retrying');
    }
  }
}
