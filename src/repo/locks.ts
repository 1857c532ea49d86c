import { randomBytes } from 'node:crypto';
import { hostname as osHostname, userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { IntegrityError, LockedError, NotFoundError, describeError } from '../errors.js';
import { Layout, idOfName } from './layout.js';
import type { Repository } from './repository.js';

/**
 * Repository locks (restic's model, docs/ARCHITECTURE.md "Locks"): backups take a shared lock, prune an
 * exclusive one. A lock object names host, pid and expiry and is renewed while its command runs, so a
 * lock whose pod or process died expires and is ignored: a dead pod never blocks the CronJob.
 */
export interface LockInfo {
  id: string;
  time: string;
  expires: string;
  exclusive: boolean;
  hostname: string;
  username: string;
  pid: number;
  command: string;
}

/** A lock is renewed this often while its command runs. */
export const RENEW_MS = 5 * 60 * 1000;
/** A lock not renewed for this long is stale (its process is gone). */
export const LIFETIME_MS = 30 * 60 * 1000;
/** Pause between attempts while waiting for a held lock. */
const RETRY_MS = 5000;

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '');
  }
}

/** Whether a lock no longer counts: expired, or its process on this host is gone. */
export function isStale(lock: LockInfo, now = Date.now(), host = osHostname()): boolean {
  if (Date.parse(lock.expires) < now) return true;
  if (lock.hostname !== host) return false;
  try {
    process.kill(lock.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Every lock object in the repository; damaged ones are reported by name and count as held. */
export async function readLocks(repo: Repository): Promise<{ name: string; lock: LockInfo | undefined }[]> {
  const out: { name: string; lock: LockInfo | undefined }[] = [];
  for await (const o of repo.list(Layout.locksDir)) {
    if (!idOfName(Layout.locksDir, o.name)) continue;
    try {
      out.push({ name: o.name, lock: JSON.parse((await repo.readMeta(o.name, 64 * 1024)).toString('utf8')) as LockInfo });
    } catch (err) {
      if (err instanceof NotFoundError) continue;
      if (!(err instanceof IntegrityError) && !(err instanceof SyntaxError)) throw err;
      out.push({ name: o.name, lock: undefined });
    }
  }
  return out;
}

/** What blocks a lock of this kind: the first live conflicting lock, described for the message. */
function conflict(locks: { name: string; lock: LockInfo | undefined }[], exclusive: boolean, own: string | undefined): string | undefined {
  for (const { name, lock } of locks) {
    if (lock?.id === own) continue;
    if (lock === undefined) return `${name} (unreadable; \`kbrackup unlock --remove-all\` removes it)`;
    if (isStale(lock)) continue;
    if (exclusive || lock.exclusive) {
      return `${lock.exclusive ? 'an exclusive' : 'a shared'} lock by ${lock.command} on ${lock.hostname} (pid ${lock.pid}) since ${lock.time}, until ${lock.expires}`;
    }
  }
  return undefined;
}

/** A held lock: renewed in the background until released. */
export class RepositoryLock {
  private name: string;
  private info: LockInfo;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly repo: Repository,
    info: LockInfo,
    private readonly onRenewFailed: (err: unknown) => void,
  ) {
    this.info = info;
    this.name = Layout.lock(info.id);
  }

  /**
   * Take a lock, waiting up to `retryMs` for a conflicting one to go (restic's --retry-lock); throws
   * LockedError (exit 11) naming the holder otherwise.
   */
  static async acquire(repo: Repository, options: { exclusive: boolean; command: string; retryMs: number; signal?: AbortSignal; onRenewFailed?: (err: unknown) => void }): Promise<RepositoryLock> {
    const deadline = Date.now() + options.retryMs;
    for (;;) {
      const held = conflict(await readLocks(repo), options.exclusive, undefined);
      if (held === undefined) {
        const lock = new RepositoryLock(repo, RepositoryLock.describe(options.exclusive, options.command), options.onRenewFailed ?? (() => undefined));
        await repo.putMeta(lock.name, Buffer.from(JSON.stringify(lock.info)));
        // Two processes may have checked at once: after writing, the later lock of a conflicting pair backs off.
        const after = await readLocks(repo);
        const race = after.some(({ lock: l }) => l && l.id !== lock.info.id && !isStale(l) && (options.exclusive || l.exclusive) && (l.time < lock.info.time || (l.time === lock.info.time && l.id < lock.info.id)));
        if (!race) {
          lock.start();
          return lock;
        }
        await repo.delete(lock.name);
      }
      if (Date.now() >= deadline) {
        throw new LockedError(`${repo.description} is locked: ${held ?? 'another process took a conflicting lock at the same moment'}; wait with --retry-lock DURATION, or remove stale locks with \`kbrackup unlock\``);
      }
      await sleep(Math.min(RETRY_MS, Math.max(0, deadline - Date.now())), undefined, { signal: options.signal });
    }
  }

  private static describe(exclusive: boolean, command: string): LockInfo {
    const now = new Date();
    return {
      id: randomBytes(32).toString('hex'),
      time: now.toISOString(),
      expires: new Date(now.getTime() + LIFETIME_MS).toISOString(),
      exclusive,
      hostname: osHostname(),
      username: currentUser(),
      pid: process.pid,
      command,
    };
  }

  private start(): void {
    this.timer = setInterval(() => {
      this.renewing = this.renew().catch((err: unknown) => this.onRenewFailed(err));
    }, RENEW_MS);
    this.timer.unref();
  }

  /** Replace the lock object by a fresh one (objects are immutable), then remove the old one. */
  private async renew(): Promise<void> {
    const old = this.name;
    const info = { ...RepositoryLock.describe(this.info.exclusive, this.info.command), time: this.info.time };
    await this.repo.putMeta(Layout.lock(info.id), Buffer.from(JSON.stringify(info)));
    this.info = info;
    this.name = Layout.lock(info.id);
    await this.repo.delete(old);
  }

  /** Remove the lock; a failure is reported, never thrown (the lock then expires by itself). */
  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.renewing;
    try {
      await this.repo.delete(this.name);
    } catch (err) {
      this.onRenewFailed(new Error(`could not remove lock ${this.name} (${describeError(err)}); it expires by itself at ${this.info.expires}`));
    }
  }
}

/** `unlock`: remove stale locks (every lock with `all`); returns the names removed. */
export async function removeLocks(repo: Repository, all: boolean): Promise<string[]> {
  const removed: string[] = [];
  for (const { name, lock } of await readLocks(repo)) {
    if (all || (lock !== undefined && isStale(lock))) {
      await repo.delete(name);
      removed.push(name);
    }
  }
  return removed;
}
