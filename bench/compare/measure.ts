// How one phase of one tool is measured: wall time, CPU time (user + sys) and peak RSS of its whole
// process tree, with a timeout, its output in log files (never piped through this process, whose
// CPU would otherwise compete with the tool's on a 2-core machine).
//  - CPU and the largest single process's peak RSS come from GNU time (`/usr/bin/time -f`): the
//    kernel's rusage of every process it waited for, exact, not sampled.
//  - The tree's RSS (tools that start helpers, e.g. restic's `ssh` for SFTP) is the sum of VmRSS of
//    every process in a memory cgroup made for the run, sampled every 50 ms; the peak reported is the
//    larger of the two. The cgroup has no limit: it only names the tree (its own counters include the
//    page cache, so they are not used).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A command line to run. */
export interface Command {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

/** What a measured run took. */
export interface Measurement {
  ok: boolean;
  /** Why it failed: exit code, signal or timeout, and the end of its stderr. */
  error?: string;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  /** `memcap: rc=… peak_mib=… failcnt=…` when the command ran under the shared memcap tool. */
  memcap?: { rc: number; peakMiB: number; failcnt: number };
  stdoutFile: string;
  stderrFile: string;
}

/** Processes that only wrap the measured one (GNU time, the memcap script): left out of the tree's RSS. */
const WRAPPERS = new Set(['time', 'memcap']);
const MiB = 1024 * 1024;

/** The memory cgroup of this process (v1, or the unified v2 tree), where child cgroups can be made. */
function ownCgroup(): string | undefined {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1 = lines.find((l) => l.split(':')[1] === 'memory');
  const v2 = lines.find((l) => l.startsWith('0::'));
  const dir = v1 ? `/sys/fs/cgroup/memory${v1.split(':')[2]}` : v2 ? `/sys/fs/cgroup${v2.slice(3)}` : undefined;
  if (!dir) return undefined;
  try {
    const probe = join(dir, `kbrackup-bench-probe-${process.pid}`);
    mkdirSync(probe);
    rmdirSync(probe);
    return dir;
  } catch {
    return undefined;
  }
}

const CGROUP = ownCgroup();

/** How the tree's memory is taken on this machine (recorded with the results). */
export const RSS_METHOD = CGROUP
  ? 'max(GNU time %M of the largest process, sum of VmRSS over the run’s cgroup sampled every 50 ms)'
  : 'GNU time %M of the largest process (no writable cgroup here, so helper processes are not added)';

/** Pids of a cgroup and of the cgroups below it (memcap nests one, and removes it when its command ends). */
function pidsIn(dir: string): number[] {
  try {
    const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) pids.push(...pidsIn(join(dir, e.name)));
    return pids;
  } catch {
    return [];
  }
}

/** Sum of VmRSS in bytes of the tree's processes (wrappers aside); processes gone meanwhile count 0. */
function treeRss(dir: string): number {
  let total = 0;
  for (const pid of pidsIn(dir)) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (WRAPPERS.has(/^Name:\s+(\S+)/m.exec(status)?.[1] ?? '')) continue;
      total += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
    } catch {
      // The process exited between listing and reading.
    }
  }
  return total;
}

/** Thrown by `measure` when Ctrl-C stopped the run it was measuring. */
export class Interrupted extends Error {}

let serial = 0;

/** Runs `cmd`, measured; stdout and stderr go to `${logBase}.out` / `.err`. Killed after `timeoutMs`. */
export async function measure(cmd: Command, logBase: string, timeoutMs: number): Promise<Measurement> {
  const timeFile = `${logBase}.time`;
  const stdoutFile = `${logBase}.out`;
  const stderrFile = `${logBase}.err`;
  const cgroup = CGROUP && join(CGROUP, `kbrackup-bench-${process.pid}-${++serial}`);
  if (cgroup) mkdirSync(cgroup);
  const out = openSync(stdoutFile, 'w');
  const err = openSync(stderrFile, 'w');
  // The shell moves itself into the cgroup, then becomes GNU time, so the tool starts inside it.
  const script = 'echo $$ > "$1"; t=$2; shift 2; exec /usr/bin/time -f "%e %U %S %M" -o "$t" "$@"';
  const child = spawn('/bin/sh', ['-c', script, 'sh', cgroup ? join(cgroup, 'cgroup.procs') : '/dev/null', timeFile, ...cmd.argv], {
    cwd: cmd.cwd,
    env: cmd.env,
    stdio: ['ignore', out, err],
    detached: true,
  });
  closeSync(out);
  closeSync(err);
  const started = process.hrtime.bigint();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    process.kill(-child.pid!, 'SIGKILL');
  }, timeoutMs);
  // The tool runs detached (so a timeout kills its whole tree), so Ctrl-C does not reach it: pass it on,
  // and let the caller clean up once the tree and its cgroup are gone.
  let interrupted = false;
  const onInterrupt = (): void => {
    interrupted = true;
    process.kill(-child.pid!, 'SIGKILL');
  };
  process.once('SIGINT', onInterrupt);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let sampled = 0;
  let done = false;
  exited.then(
    () => (done = true),
    () => (done = true),
  );
  while (cgroup && !done) {
    sampled = Math.max(sampled, treeRss(cgroup));
    await sleep(50);
  }
  const { code, signal } = await exited;
  const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearTimeout(timer);
  process.off('SIGINT', onInterrupt);
  if (cgroup) await removeCgroup(cgroup);
  if (interrupted) throw new Interrupted(`interrupted while running ${cmd.argv.join(' ')}`);

  const stderr = readFileSync(stderrFile, 'utf8');
  const times = /^([\d.]+) ([\d.]+) ([\d.]+) (\d+)$/m.exec(safeRead(timeFile));
  const cap = /memcap: rc=(\d+) peak_mib=(\d+) failcnt=(\d+)/.exec(stderr);
  const ok = code === 0 && !timedOut;
  return {
    ok,
    ...(ok ? {} : { error: failure(code, signal, timedOut ? timeoutMs : 0, cap, stderr) }),
    wallSeconds,
    cpuSeconds: times ? Number(times[2]) + Number(times[3]) : NaN,
    peakRssMiB: Math.max(times ? Number(times[4]) * 1024 : 0, sampled) / MiB,
    ...(cap ? { memcap: { rc: Number(cap[1]), peakMiB: Number(cap[2]), failcnt: Number(cap[3]) } } : {}),
    stdoutFile,
    stderrFile,
  };
}

/** Why a run failed, in one line: timeout, the memory cgroup's OOM killer, or the error line of its stderr (a V8 crash prints a stack after it). */
function failure(code: number | null, signal: NodeJS.Signals | null, timedOutMs: number, cap: RegExpExecArray | null, stderr: string): string {
  if (timedOutMs) return `timed out after ${timedOutMs / 1000} s`;
  // memcap's command was SIGKILLed and this harness did not do it: the cgroup's OOM killer did.
  if (cap?.[1] === '137') return `OOM-killed in the memory cgroup (peak ${cap[2]} MiB)`;
  const lines = stderr.trim().split('\n').filter((l) => !l.startsWith('memcap:'));
  const line = lines.find((l) => /FATAL ERROR|exit_error|\berror\b|fatal/i.test(l)) ?? lines.slice(-3).join(' | ');
  return `${signal ? `killed by ${signal}` : `exit ${code}`}: ${line}`;
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Removes the run's cgroup and any left inside it (memcap's, when a timeout killed memcap before it
 * could remove its own), children first. A cgroup can be removed once its last process is reaped,
 * which may lag the exit event a little.
 */
async function removeCgroup(dir: string): Promise<void> {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) await removeCgroup(join(dir, e.name));
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if (attempt >= 100) throw new Error(`cannot remove the measuring cgroup ${dir}: ${(err as Error).message}`);
      await sleep(20);
    }
  }
}

/** Runs an unmeasured helper command (init, sync, rm, version probes) with a timeout; throws with its output on failure. */
export function runChecked(argv: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number }): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { env: options.env ?? process.env, cwd: options.cwd, timeout: options.timeoutMs, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.error) throw new Error(`${argv.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  return r.stdout;
}

/**
 * Flushes dirty pages, so one tool's writes are not written back during the next tool's run; `cold`
 * also empties the page cache. Otherwise the files under `warm` are read first: borg drops from the
 * cache what it has read (posix_fadvise DONTNEED), so whichever tool came after borg read cold.
 */
export function settle(cold: boolean, warm?: string): void {
  runChecked(['sync'], { timeoutMs: 600_000 });
  if (cold) writeFileSync('/proc/sys/vm/drop_caches', '3\n');
  else if (warm) runChecked(['sh', '-c', 'find "$0" -type f -exec cat {} + > /dev/null', warm], { timeoutMs: 600_000 });
}
