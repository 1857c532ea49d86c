// The tools compared, each with settings a careful user would choose (issue 13: "fair settings"):
// restic with its local cache and a password, borg with repokey encryption and a passphrase,
// kbrackup with an owner key at init and only the backup credentials for backups. Every command
// runs from the data set's folder (restic and borg get "."), so all three store the same relative
// paths and restore them to the top of a fresh folder.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, POD_ENV, POD_NODE_ARGS } from '../../test/helpers/cli.js';
import type { S3Server } from '../../test/helpers/s3server.js';
import type { Sshd } from '../../test/helpers/sshd.js';
import type { SetSpec, Target } from './data.js';
import { runChecked, type Command } from './measure.js';

export const TOOL_NAMES = ['restic', 'borg', 'kbrackup', 'kbrackup-64'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** What every tool's repository needs from the run. */
export interface Context {
  work: string;
  /** The shared memcap script (kbrackup-64 runs inside it). */
  memcap: string;
  /** The owner's private key (kbrackup: init signs with it, restore decrypts with it). */
  ownerKey: string;
  s3?: S3Server;
  sshd?: Sshd;
}

/** One repository of one tool; commands are measured by the caller, `init` and `remove` are not. */
export interface Repo {
  init(): void;
  backup(source: string, archive: string): Command;
  restore(dest: string): Command;
  ls(folder: string): Command;
  restoreOne(file: string, dest: string): Command;
  /** Bytes stored now (sizes of the repository's files; on s3rver, of its objects). */
  bytes(): number;
  remove(): void;
}

export interface Tool {
  name: ToolName;
  targets: readonly Target[];
  /** Name and version, e.g. "restic 0.14.0"; throws when the tool cannot run. */
  version(): string;
  open(ctx: Context, set: SetSpec, name: string): Repo;
}

const PASSWORD = 'kbrackup-bench';
const UNMEASURED_MS = 600_000;

/** Sum of file sizes below `dir`, only of names ending in `suffix` (s3rver keeps metadata beside each object). */
function dirBytes(dir: string, suffix = ''): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(path, suffix);
    else if (e.name.endsWith(suffix)) total += lstatSync(path).size;
  }
  return total;
}

/** Where a repository named `name` lives for `target`: the folder that holds it (sshd and s3rver run on this machine). */
function storage(ctx: Context, target: Target, name: string): { dir: string; bytes: () => number } {
  if (target === 's3') {
    const dir = join(need(ctx.s3, 's3rver').directory, 'bench', name);
    return { dir, bytes: () => dirBytes(dir, '._S3rver_object') };
  }
  const dir = target === 'sftp' ? join(need(ctx.sshd, 'sshd').dataDir, name) : join(ctx.work, 'repos', name);
  return { dir, bytes: () => dirBytes(dir) };
}

function need<T>(value: T | undefined, what: string): T {
  if (!value) throw new Error(`${what} is not running`);
  return value;
}

/** OpenSSH client options for restic's and borg's SSH transports: only the test server's keys, no prompts. */
function sshOptions(sshd: Sshd): string[] {
  return ['ssh', '-F', '/dev/null', '-i', sshd.userKey, '-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes'];
}

function firstLine(argv: string[]): string {
  return runChecked(argv, { timeoutMs: 30_000 }).split('\n')[0]!.trim();
}

const restic: Tool = {
  name: 'restic',
  // restic's S3 client signs uploads in aws-chunked framing over plain HTTP, and s3rver stores that
  // framing as the object's bytes (restic then cannot read its own key file back): no S3 here.
  targets: ['local', 'sftp'],
  version: () => firstLine(['restic', 'version']).split(' ').slice(0, 2).join(' '),
  open(ctx, set, name) {
    const { dir, bytes } = storage(ctx, set.target, name);
    const sshd = set.target === 'sftp' ? need(ctx.sshd, 'sshd') : undefined;
    const base = sshd
      ? ['restic', '-r', `sftp:${sshd.user}@127.0.0.1:${dir}`, '-o', `sftp.command=${[...sshOptions(sshd), '-p', String(sshd.port), `${sshd.user}@127.0.0.1`, '-s', 'sftp'].join(' ')}`]
      : ['restic', '-r', dir];
    const env = { ...process.env, RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: join(ctx.work, 'cache', 'restic') };
    return {
      init: () => void runChecked([...base, 'init'], { env, timeoutMs: UNMEASURED_MS }),
      backup: (source) => ({ argv: [...base, 'backup', '--quiet', '.'], env, cwd: source }),
      restore: (dest) => ({ argv: [...base, 'restore', 'latest', '--target', dest], env }),
      ls: (folder) => ({ argv: [...base, 'ls', 'latest', `/${folder}`], env }),
      restoreOne: (file, dest) => ({ argv: [...base, 'restore', 'latest', '--target', dest, '--include', `/${file}`], env }),
      bytes,
      remove: () => void runChecked(['rm', '-rf', dir], { timeoutMs: UNMEASURED_MS }),
    };
  },
};

const borg: Tool = {
  name: 'borg',
  // borg's remote repositories run `borg serve` over SSH (this machine's borg, through the test sshd).
  targets: ['local', 'sftp'],
  version: () => firstLine(['borg', '--version']),
  open(ctx, set, name) {
    const { dir, bytes } = storage(ctx, set.target, name);
    const sshd = set.target === 'sftp' ? need(ctx.sshd, 'sshd') : undefined;
    const url = sshd ? `ssh://${sshd.user}@127.0.0.1:${sshd.port}${dir}` : dir;
    const env = { ...process.env, BORG_PASSPHRASE: PASSWORD, BORG_BASE_DIR: join(ctx.work, 'cache', 'borg'), ...(sshd ? { BORG_RSH: sshOptions(sshd).join(' ') } : {}) };
    // borg has no "latest": restores name the last archive written.
    let last = '';
    return {
      init: () => void runChecked(['borg', 'init', '--encryption=repokey', url], { env, timeoutMs: UNMEASURED_MS }),
      backup: (source, archive) => {
        last = archive;
        return { argv: ['borg', 'create', `${url}::${archive}`, '.'], env, cwd: source };
      },
      restore: (dest) => ({ argv: ['borg', 'extract', `${url}::${last}`], env, cwd: dest }),
      ls: (folder) => ({ argv: ['borg', 'list', `${url}::${last}`, folder], env }),
      restoreOne: (file, dest) => ({ argv: ['borg', 'extract', `${url}::${last}`, file], env, cwd: dest }),
      bytes,
      remove: () => void runChecked(['rm', '-rf', dir], { timeoutMs: UNMEASURED_MS }),
    };
  },
};

/** kbrackup as a user runs it (default V8 heap), or as the container image runs it in a 64 MiB pod. */
function kbrackup(name: 'kbrackup' | 'kbrackup-64'): Tool {
  return {
    name,
    targets: ['local', 's3', 'sftp'],
    version() {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      const commit = firstLine(['git', '-C', new URL('../..', import.meta.url).pathname, 'describe', '--always', '--dirty']);
      return `kbrackup ${pkg.version} (${commit})`;
    },
    open(ctx, set, repoName) {
      const { dir, bytes } = storage(ctx, set.target, repoName);
      const cred = join(ctx.work, 'keys', `${repoName}.cred`);
      const env: NodeJS.ProcessEnv = { ...process.env, KBRACKUP_TEMP_DIR: join(ctx.work, 'tmp', name), KBRACKUP_LOG_LEVEL: 'warn' };
      let repo = dir;
      if (set.target === 's3') {
        const s3 = need(ctx.s3, 's3rver');
        repo = `s3://bench/${repoName}`;
        Object.assign(env, { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_ENDPOINT_URL: s3.endpoint, KBRACKUP_S3_FORCE_PATH_STYLE: 'true' });
      } else if (set.target === 'sftp') {
        const sshd = need(ctx.sshd, 'sshd');
        repo = `sftp://${sshd.user}@127.0.0.1:${sshd.port}${dir}`;
        Object.assign(env, { KBRACKUP_SFTP_KEY: sshd.userKey, KBRACKUP_SFTP_KNOWN_HOSTS: sshd.knownHosts });
      }
      const cli = name === 'kbrackup-64' ? [ctx.memcap, '64', process.execPath, ...POD_NODE_ARGS, CLI] : [process.execPath, CLI];
      if (name === 'kbrackup-64') env.MALLOC_ARENA_MAX = POD_ENV.MALLOC_ARENA_MAX;
      const restore = (dest: string, more: string[]): Command => ({ argv: [...cli, 'restore', '--repo', repo, '--key', ctx.ownerKey, 'latest', '--target', dest, ...more], env });
      return {
        init: () => void runChecked([process.execPath, CLI, 'init', '--repo', repo, '--key', ctx.ownerKey, '--credentials-out', cred], { env, timeoutMs: UNMEASURED_MS }),
        backup: (source) => ({ argv: [...cli, 'backup', '--repo', repo, '--credentials', cred, '--source', set.name, source], env }),
        restore: (dest) => restore(dest, []),
        ls: (folder) => ({ argv: [...cli, 'ls', '--repo', repo, '--key', ctx.ownerKey, 'latest', `/${folder}`], env }),
        restoreOne: (file, dest) => restore(dest, ['--include', `/${file}`]),
        bytes,
        remove: () => void runChecked(['rm', '-rf', dir], { timeoutMs: UNMEASURED_MS }),
      };
    },
  };
}

export const TOOLS: Record<ToolName, Tool> = { restic, borg, kbrackup: kbrackup('kbrackup'), 'kbrackup-64': kbrackup('kbrackup-64') };

/**
 * Makes sure each command exists, installing its Debian package when it does not (the Debian mirror is
 * reachable here); throws naming what is missing when that fails.
 */
export function ensureCommands(needed: { command: string; pkg: string }[]): void {
  const has = (command: string): boolean => runCheckedOk(['sh', '-c', `command -v ${command}`]);
  const missing = needed.filter((n) => !has(n.command));
  if (!missing.length) return;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  console.log(`installing ${pkgs.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!runCheckedOk(['apt-get', 'install', '-y', ...pkgs], env)) runCheckedOk(['sh', '-c', `apt-get update && apt-get install -y ${pkgs.join(' ')}`], env);
  const still = missing.filter((m) => !has(m.command));
  if (still.length) throw new Error(`missing and could not be installed: ${still.map((m) => `${m.command} (Debian package ${m.pkg})`).join(', ')}; install them and run again`);
}

function runCheckedOk(argv: string[], env?: NodeJS.ProcessEnv): boolean {
  try {
    runChecked(argv, { timeoutMs: 900_000, ...(env ? { env } : {}) });
    return true;
  } catch {
    return false;
  }
}
