/** Exit codes shared with restic, so scripts and dashboards can parse them. */
export const ExitCode = {
  ok: 0,
  failed: 1,
  partial: 3,
  repoMissing: 10,
  locked: 11,
  wrongKey: 12,
  cancelled: 130,
  terminated: 143,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base of every error meant for the user: a one-line message and an exit code, never a stack trace. */
export class KbrackupError extends Error {
  readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue = ExitCode.failed, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Invalid flag, environment variable or config file value. */
export class ConfigError extends KbrackupError {}

/** A storage operation failed; carries the target and object involved. */
export class TargetError extends KbrackupError {
  readonly target: string;
  readonly object: string | undefined;
  /** What went wrong, without the target and object that lead the message. */
  readonly detail: string;
  /** Transient errors (timeouts, resets, 5xx, throttling) may be retried. */
  readonly transient: boolean;
  constructor(target: string, object: string | undefined, message: string, opts: { transient?: boolean; cause?: unknown } = {}) {
    super(`${target}${object ? ` ${object}` : ''}: ${message}`, ExitCode.failed, { cause: opts.cause });
    this.target = target;
    this.object = object;
    this.detail = message;
    this.transient = opts.transient ?? false;
  }
}

/** The temp folder (a pod's emptyDir) is too small or ran full: names the folder and the space a backup needs there. */
export class TempSpaceError extends KbrackupError {
  readonly folder: string;
  /** Bytes of free space the run needs in `folder`. */
  readonly needed: number;
  constructor(folder: string, needed: number, message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.failed, options);
    this.folder = folder;
    this.needed = needed;
  }
}

/** The requested object does not exist on the target. */
export class NotFoundError extends TargetError {
  constructor(target: string, object: string, opts: { cause?: unknown } = {}) {
    super(target, object, 'no such object', opts);
  }
}

/** An object that already exists was written again (objects are immutable). */
export class AlreadyExistsError extends TargetError {
  constructor(target: string, object: string) {
    super(target, object, 'object already exists');
  }
}

/** The repository is missing or not initialised. */
export class RepoMissingError extends KbrackupError {
  constructor(message: string) {
    super(message, ExitCode.repoMissing);
  }
}

/** Wrong key, wrong passphrase, or a key that cannot open this repository. */
export class WrongKeyError extends KbrackupError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.wrongKey, options);
  }
}

/** A stored object failed authentication, was truncated, or does not match its recorded hash. */
export class IntegrityError extends KbrackupError {
  readonly object: string;
  constructor(object: string, message: string, options?: { cause?: unknown }) {
    super(`${object}: ${message}`, ExitCode.failed, options);
    this.object = object;
  }
}

/** The owner's signature over the repository is missing: restore cannot tell it from a forgery. */
export class UntrustedError extends KbrackupError {}

/** The repository is locked by another process. */
export class LockedError extends KbrackupError {
  constructor(message: string) {
    super(message, ExitCode.locked);
  }
}

/** The exit code for a signal: 130 for SIGINT (like restic), 143 (128 + 15) for SIGTERM, so a stopped pod is told apart from a failed run. */
export function signalExitCode(signal: string): ExitCodeValue {
  return signal === 'SIGINT' ? ExitCode.cancelled : ExitCode.terminated;
}

/** The run was stopped by a signal: SIGTERM (Kubernetes stopping the pod) exits 143, SIGINT 130. */
export class CancelledError extends KbrackupError {
  readonly signal: string;
  constructor(signal: string) {
    super(`stopped by ${signal}; no snapshot was written, earlier snapshots are intact`, signalExitCode(signal));
    this.signal = signal;
  }
}

/** What to do about a file the restore destination refused, by errno code. */
const WRITE_HINTS: Record<string, string> = {
  ENOSPC: '; free space there, or restore part of the snapshot with --include',
  EDQUOT: '; the quota is used up: free space there, or restore part of the snapshot with --include',
  EROFS: '; the destination is mounted read-only',
  EACCES: "; check the destination's permissions, or restore as a user who may write there",
  EPERM: "; check the destination's permissions and attributes (chattr), or restore as root",
};

/** Restore could not write a file into the destination (full, read-only, not permitted); names the file. */
export class RestoreWriteError extends KbrackupError {
  readonly path: string;
  readonly code: string;
  /** The system's words for the failure, without the code and call ("no space left on device"). */
  readonly detail: string;
  constructor(path: string, code: string, detail: string) {
    super(`cannot write ${path} in the restore destination: ${detail} (${code})${WRITE_HINTS[code] ?? ''}`);
    this.path = path;
    this.code = code;
    this.detail = detail;
  }

  /** `err` as a RestoreWriteError when it is a system call's failure (an errno code); anything else as it is. */
  static from(path: string, err: unknown): unknown {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof KbrackupError || typeof e?.code !== 'string' || !/^E[A-Z0-9]+$/.test(e.code)) return err;
    return new RestoreWriteError(path, e.code, e.message.replace(/^E[A-Z0-9]+: /, '').replace(/, \w+( '.*')?$/, ''));
  }
}

/** Short description of any thrown value, for one-line messages. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
