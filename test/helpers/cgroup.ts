import { spawn } from 'node:child_process';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, POD_ENV } from './cli.js';

/** What a run inside a memory cgroup produced. */
export interface CappedResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The cgroup's peak memory use (anonymous memory and page cache, as a pod's limit counts it). */
  peakMiB: number;
  /** The kernel killed something for memory inside the cgroup. */
  oomKilled: boolean;
}

/** The cgroup v1 memory folder this process lives in; tests run as root, as CI does. */
async function memoryRoot(): Promise<string> {
  const line = (await readFile('/proc/self/cgroup', 'utf8')).split('\n').find((l) => l.split(':')[1] === 'memory');
  if (!line) throw new Error('no cgroup v1 memory controller here: memory limits cannot be tested (CI runs as root with cgroups)');
  return join('/sys/fs/cgroup/memory', line.split(':')[2]!);
}

/**
 * Run `node ARGS dist/cli.js CLI_ARGS` inside a child memory cgroup capped at `limitMiB` (swap
 * included), as a pod's memory limit does: page cache counts and the kernel OOM-kills past the limit. The
 * environment is the image's (POD_ENV).
 * Fails loudly where no cgroup can be made: a memory test that silently runs uncapped proves nothing.
 */
export async function runCliCapped(limitMiB: number, cliArgs: string[], nodeArgs: string[] = [], timeoutMs = 600_000): Promise<CappedResult> {
  const cg = join(await memoryRoot(), `kbrackup-test-${process.pid}-${Date.now()}`);
  await mkdir(cg);
  try {
    const bytes = String(limitMiB * 1024 * 1024);
    await writeFile(join(cg, 'memory.limit_in_bytes'), bytes);
    await writeFile(join(cg, 'memory.memsw.limit_in_bytes'), bytes).catch(() => undefined);
    // The shell joins the cgroup, then becomes node: everything node allocates is charged to it.
    const script = `echo $$ > '${join(cg, 'cgroup.procs')}' && exec "$@"`;
    const child = spawn('sh', ['-c', script, 'sh', process.execPath, ...nodeArgs, CLI, ...cliArgs], { stdio: ['ignore', 'pipe', 'pipe'], env: POD_ENV });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve([c, s]));
    });
    clearTimeout(timer);
    const peakMiB = Number(await readFile(join(cg, 'memory.max_usage_in_bytes'), 'utf8')) / 1024 / 1024;
    const oomKilled = /^oom_kill [1-9]/m.test(await readFile(join(cg, 'memory.oom_control'), 'utf8').catch(() => ''));
    return { code, signal, stdout, stderr, peakMiB, oomKilled };
  } finally {
    await rmdir(cg).catch(() => undefined);
  }
}
