import { spawn, type SpawnOptions } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI: tests run what users run. */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'build' || entry.name === 'node_modules') continue;
    const path = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}

/**
 * Tests spawn the built CLI: a test file run after editing src/ without `npm run build` would test old
 * code and could pass for the wrong reason, so it fails at once instead (`npm test` builds first).
 */
function checkBuild(): void {
  const src = fileURLToPath(new URL('../../src', import.meta.url));
  let built: number;
  try {
    built = statSync(CLI).mtimeMs;
  } catch {
    throw new Error(`${CLI} does not exist: run \`npm run build\` (or \`npm test\`, which builds first)`);
  }
  if (newest(src) > built) throw new Error(`dist/ is older than src/: run \`npm run build\` (or \`npm test\`, which builds first) so the tests run the code as it is`);
}
checkBuild();

/** Node flags the container image runs with (Dockerfile NODE_OPTIONS): memory is measured as a pod runs. */
export const POD_NODE_ARGS = ['--max-old-space-size=24', '--max-semi-space-size=1'];

/** Environment the container image sets for memory (Dockerfile MALLOC_ARENA_MAX). */
export const POD_ENV: NodeJS.ProcessEnv = { ...process.env, MALLOC_ARENA_MAX: '2' };

/** Run options of a CLI run as the container image runs it: its node flags and environment. */
export const POD = { nodeArgs: POD_NODE_ARGS, env: POD_ENV };

/** What a CLI run produced. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Peak resident set size in bytes (VmHWM), sampled from /proc while it ran. */
  peakRss: number;
}

async function vmHwm(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Options of a CLI run. */
export interface RunOptions extends SpawnOptions {
  nodeArgs?: string[];
  /** Called once the child has started, e.g. to send it a signal later. */
  onSpawn?: (pid: number) => void;
  /** Run as this user and group id with no supplementary groups (setpriv; the caller must be root). */
  asUser?: number;
  /** A command run first with node's command line appended, which must exec it (e.g. `unshare -m sh -c '…; exec "$@"' sh`). */
  wrap?: string[];
}

/** The user tests run unprivileged commands as: `nobody`, whom root's rights do not cover. */
export const NOBODY = 65534;

/** Run `node dist/cli.js ARGS` as a child process. */
export function runCli(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const { nodeArgs = [], onSpawn, asUser, wrap = [], ...spawnOptions } = options;
  const command = [process.execPath, ...nodeArgs, CLI, ...args];
  // setpriv and a wrapper exec node in the same process, so the pid (for signals and peak RSS) is node's.
  if (asUser !== undefined) command.unshift('/usr/bin/setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups');
  command.unshift(...wrap);
  return new Promise((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOptions });
    let stdout = '';
    let stderr = '';
    let peakRss = 0;
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    // VmHWM is a high-water mark, so sampling it often enough catches the peak.
    const poll = setInterval(() => {
      if (child.pid) void vmHwm(child.pid).then((v) => (peakRss = Math.max(peakRss, v ?? 0)));
    }, 20);
    child.on('spawn', () => child.pid && onSpawn?.(child.pid));
    child.on('error', (err) => {
      clearInterval(poll);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stdout, stderr, peakRss });
    });
  });
}

// Parsers of a run's output live apart, so tests that import src/ only (no CLI run) need no build.
export { jsonLines, logLines, summaryOf } from './output.js';
