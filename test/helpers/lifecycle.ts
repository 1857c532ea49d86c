import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, jsonLines, runCli, summaryOf, type RunOptions, type RunResult } from './cli.js';
import { sha256File, writePseudoRandom } from './data.js';
import { expectCode } from './repo.js';

/** How the CLI reaches one repository: its URL, the flags it needs, its environment. */
export interface RepoAccess {
  repo: string;
  cred: string;
  key: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** Run the CLI against `access` with `args` (the repository flags are added). */
export function cli(access: RepoAccess, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runCli([...args, '--repo', access.repo, ...access.args], { env: { ...process.env, ...access.env }, ...options });
}

/** SHA-256 and mode of every file below `dir` by relative path (what a restore must give back). */
export async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[relative(dir, path)] = `${await sha256File(path)} ${((await stat(path)).mode & 0o7777).toString(8)}`;
  }
  return out;
}

/** Small files `from` up to `to` of version `seed` (see writeSource). */
export function files(from: number, to: number, seed: string): [number, string][] {
  return Array.from({ length: to - from }, (_, k) => [from + k, seed]);
}

/**
 * One state of a changing source: small files in `small/` named by number, each of a version (`seed`),
 * ~`size` bytes and incompressible, so a later state can keep, change or drop each; and a `big`
 * pseudo-random file (several chunks) of version `bigSeed`. The same state writes the same bytes.
 */
export async function writeSource(dir: string, state: { small: [number, string][]; size?: number; big?: number; bigSeed?: string }): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'small'), { recursive: true });
  for (const [i, seed] of state.small) await writePseudoRandom(join(dir, 'small', `f${String(i).padStart(4, '0')}.txt`), (state.size ?? 20_000) + (i % 97), `${seed}/${i}`);
  if (state.big) await writePseudoRandom(join(dir, 'big.bin'), state.big, `${state.bigSeed ?? 'big'}-big`);
}

/** Back up `src` and return the snapshot id. */
export async function backup(access: RepoAccess, src: string, extra: string[] = []): Promise<string> {
  const run = expectCode(await cli(access, ['backup', '--credentials', access.cred, '--json', ...extra, src]), 0);
  return String(summaryOf(run.stdout).snapshot_id);
}

/** The snapshots, as `snapshots --json` prints them. */
export async function snapshotList(access: RepoAccess, extra: string[] = []): Promise<{ id: string; short_id: string; hostname: string; source: string; tags: string[] }[]> {
  return JSON.parse(expectCode(await cli(access, ['snapshots', '--credentials', access.cred, '--json', ...extra]), 0).stdout);
}

/** Restore snapshot `id` into a fresh folder and return its digests. */
export async function restored(access: RepoAccess, id: string, into: string): Promise<Record<string, string>> {
  await rm(into, { recursive: true, force: true });
  expectCode(await cli(access, ['restore', '--key', access.key, id, '--target', into]), 0);
  const out = await digests(into);
  await rm(into, { recursive: true, force: true });
  return out;
}

/** `check` with the backup credentials, as its JSON summary and error lines. */
export async function checkRepo(access: RepoAccess, extra: string[] = []): Promise<{ code: number | null; errors: Record<string, unknown>[]; summary: Record<string, any> }> {
  const run = await cli(access, ['check', '--credentials', access.cred, '--json', ...extra]);
  const lines = jsonLines(run.stdout);
  const summary = lines.find((l) => l.message_type === 'summary');
  if (!summary) throw new Error(`check printed no summary (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  return { code: run.code, errors: lines.filter((l) => l.message_type === 'error'), summary };
}

/** The summary `prune --json` prints. */
export function pruneSummary(run: RunResult): Record<string, any> {
  const line = jsonLines(run.stdout).find((l) => l.message_type === 'prune_summary');
  if (!line) throw new Error(`no prune summary in:\n${run.stdout}\n${run.stderr}`);
  return line;
}

/** Every object name below a repository folder, sorted (to see what prune changed). */
export async function objectNames(repoDir: string, folder: string): Promise<string[]> {
  return (await readdir(join(repoDir, folder), { recursive: true, withFileTypes: true }).catch(() => []))
    .filter((e) => e.isFile())
    .map((e) => relative(repoDir, join(e.parentPath, e.name)))
    .sort();
}

/** Total bytes of the files below a repository folder. */
export async function folderBytes(repoDir: string, folder: string): Promise<number> {
  let total = 0;
  for (const name of await objectNames(repoDir, folder)) total += (await stat(join(repoDir, name))).size;
  return total;
}

/** Lines of stderr that are neither JSON log lines nor the CLI's one-line `kbrackup: …` message: a clean failure has none (no stack trace). */
export function strayLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{') && !/^kbrackup: [^\n]+$/.test(l));
}

/** The progress lines prune logs at the start of each step (maintenance/prune.ts), where a kill lands. */
export const PRUNE_STEPS = [/loading snapshots/, /finding the data/, /listing the repository/, /"planning"/, /repacking \d+ packs/, /writing the new index/, /deleting \d+ old index objects/, /deleting \d+ content objects/];

/** Where one kill landed: the step whose line was seen last, and whether the kill came before prune ended. */
export interface Kill {
  step: number;
  delayMs: number;
  killed: boolean;
}

/**
 * Run prune and SIGKILL it `delayMs` after it logs step `step` (PRUNE_STEPS); a prune that ends first
 * (the step never came, or the delay outlasted it) is reported as not killed. Bounded by `timeoutMs`.
 */
export function killPrune(access: RepoAccess, step: number, delayMs: number, args: string[], timeoutMs = 60_000): Promise<Kill> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'prune', '--repo', access.repo, ...access.args, '--credentials', access.cred, '--log-level', 'info', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...access.env },
    });
    let seen = '';
    let timer: NodeJS.Timeout | undefined;
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`prune did not end within ${timeoutMs} ms: ${seen.slice(-2000)}`));
    }, timeoutMs);
    child.stderr.on('data', (d: Buffer) => {
      seen += d.toString();
      if (timer === undefined && PRUNE_STEPS[step]!.test(seen)) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(deadline);
      clearTimeout(timer);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`prune exited ${code}: ${seen.slice(-2000)}`));
      else resolve({ step, delayMs, killed: signal === 'SIGKILL' });
    });
  });
}

/** A snapshot that must survive prune, and what restoring it must give. */
export interface Survivor {
  id: string;
  expected: Record<string, string>;
}

/**
 * One crash trial: prune killed at `step` + `delayMs`; then check is clean (garbage aside), every
 * survivor restores byte for byte, the next prune finishes, and (with `recheck`) check is clean again.
 */
export async function crashTrial(access: RepoAccess, survivors: readonly Survivor[], scratch: string, step: number, delayMs: number, pruneArgs: string[], recheck = true): Promise<Kill> {
  const kill = await killPrune(access, step, delayMs, pruneArgs);
  const where = `kill at step ${step} (${PRUNE_STEPS[step]}) + ${delayMs} ms`;
  const after = await checkRepo(access);
  if (after.code !== 0) throw new Error(`${where}: check found problems: ${JSON.stringify(after.errors)}`);
  for (const s of survivors) {
    const got = await restored(access, s.id, join(scratch, `trial-restore-${s.id.slice(0, 8)}`));
    if (JSON.stringify(got) !== JSON.stringify(s.expected)) throw new Error(`${where}: snapshot ${s.id.slice(0, 8)} does not restore byte for byte`);
  }
  const finished = await cli(access, ['prune', '--credentials', access.cred, ...pruneArgs]);
  if (finished.code !== 0) throw new Error(`${where}: the next prune failed (${finished.code}): ${finished.stderr.slice(-2000)}`);
  if (recheck) {
    const clean = await checkRepo(access);
    if (clean.code !== 0) throw new Error(`${where}: check after the next prune found problems: ${JSON.stringify(clean.errors)}`);
  }
  return kill;
}
