// Lifecycle at scale: `node --import tsx bench/lifecycle-scale.ts [GENERATIONS] [BLOBS_PER_GENERATION]`
// (default 1000 x 1000: 1,000 snapshots, 1,000,000 blobs). Builds a small (10 x 100, whose snapshots
// each list only the last 3 generations, so that its prune repacks as the large one's does) and the large
// repository with bench/synthetic-repo.ts, then times check, forget, prune, check again, a backup into
// the repository and an unchanged re-run, each inside a 64 MiB memory cgroup (../shared/tools/memcap)
// with the image's heap flags and environment, and prints a Markdown table: wall time, peak RSS (GNU time), and the
// cgroup's peak (which also counts page cache, so it sits near the limit when files are streamed).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readCredentials } from '../src/repo/credentials.js';
import { openRepository } from '../src/repo/keyring.js';
import { CLI, POD_ENV, POD_NODE_ARGS } from '../test/helpers/cli.js';
import { generate, UnsyncedTarget } from './synthetic-repo.js';

const run = promisify(execFile);
const MEMCAP = fileURLToPath(new URL('../../shared/tools/memcap', import.meta.url));
const LIMIT_MIB = 64;

const generations = Number(process.argv[2] ?? 1000);
const perGeneration = Number(process.argv[3] ?? 1000);

/** One measured command. */
interface Measure {
  step: string;
  seconds: number;
  rssMiB: number;
  cgroupMiB: number;
  code: number;
  note: string;
}

/** Run the CLI inside the memory cgroup under GNU time; never throws for a non-zero exit. */
async function measure(step: string, args: string[], note: (stdout: string) => string = () => ''): Promise<Measure> {
  const start = performance.now();
  const result = await run(MEMCAP, [String(LIMIT_MIB), '/usr/bin/time', '-v', process.execPath, ...POD_NODE_ARGS, CLI, ...args, '--log-level', 'warn'], { maxBuffer: 64 * 1024 * 1024, env: POD_ENV }).then(
    (r) => ({ ...r, code: 0 }),
    (err: { stdout: string; stderr: string; code: number }) => err,
  );
  const seconds = (performance.now() - start) / 1000;
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr);
  const cgroup = /memcap: rc=(\d+) peak_mib=(\d+)/.exec(result.stderr);
  const code = Number(cgroup?.[1] ?? result.code);
  if (code !== 0 && code !== 3) process.stderr.write(`${step} exited ${code}:\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-4000)}\n`);
  return { step, seconds, rssMiB: rss ? Number(rss[1]) / 1024 : Number.NaN, cgroupMiB: Number(cgroup?.[2] ?? Number.NaN), code, note: note(result.stdout) };
}

/** A repository of `gens` x `per` blobs, made with the CLI's init and the synthetic generator. */
async function makeRepository(dir: string, gens: number, per: number, window: number): Promise<{ repo: string; cred: string; key: string; seconds: number }> {
  const owner = join(dir, 'owner');
  await run(process.execPath, [CLI, 'keygen', '--out', owner]);
  const repo = join(dir, 'repo');
  const cred = join(dir, 'backup.cred');
  await run(process.execPath, [CLI, 'init', '--repo', repo, '--key', `${owner}.key.asc`, '--credentials-out', cred]);
  const start = performance.now();
  const opened = await openRepository(new UnsyncedTarget(repo), { credentials: await readCredentials(cred) });
  const temp = join(dir, 'gen-tmp');
  await mkdir(temp);
  await generate(opened, gens, per, temp, (k) => {
    if (k % 100 === 99) process.stderr.write(`  generated ${k + 1} of ${gens} snapshots\n`);
  }, window);
  return { repo, cred, key: `${owner}.key.asc`, seconds: (performance.now() - start) / 1000 };
}

/** A small folder to back up into the large repository: 200 small files and a 2 MiB file. */
async function makeSource(dir: string): Promise<string> {
  const src = join(dir, 'live');
  await mkdir(join(src, 'small'), { recursive: true });
  for (let i = 0; i < 200; i++) await writeFile(join(src, 'small', `${i}.txt`), `live file ${i}\n`.repeat(20 + i));
  await writeFile(join(src, 'big.bin'), Buffer.alloc(2 * 1024 * 1024, 'live data '));
  return src;
}

/** The measured steps on one repository. */
async function steps(dir: string, gens: number, per: number, window: number): Promise<{ rows: Measure[]; genSeconds: number }> {
  const { repo, cred, seconds } = await makeRepository(dir, gens, per, window);
  const base = ['--repo', repo, '--credentials', cred, '--temp-dir', join(dir, 'gen-tmp')];
  const src = await makeSource(dir);
  const checked = (out: string) => /(\d+) snapshots, (\d+) trees, (\d+) blobs, (\d+) content objects/.exec(out)?.[0] ?? '';
  const rows: Measure[] = [];
  rows.push(await measure('check', ['check', ...base], checked));
  rows.push(await measure('forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12', ['forget', ...base, '--keep-daily', '7', '--keep-weekly', '5', '--keep-monthly', '12', '--json'], (out) => {
    const groups = JSON.parse(out.split('\n').find((l) => l.startsWith('['))!) as { keep: unknown[]; remove: unknown[] }[];
    return `${groups.reduce((n, g) => n + g.remove.length, 0)} removed, ${groups.reduce((n, g) => n + g.keep.length, 0)} kept`;
  }));
  rows.push(await measure('prune --grace 0s', ['prune', ...base, '--grace', '0s', '--json'], (out) => {
    const s = JSON.parse(out.split('\n').find((l) => l.includes('prune_summary'))!) as { objects: { delete: number; repack: number }; trees: { delete: number }; index: { objects_before: number; objects_after: number } };
    return `${s.objects.delete} objects deleted, ${s.objects.repack} packs repacked, ${s.trees.delete} trees deleted, index ${s.index.objects_before} → ${s.index.objects_after} objects`;
  }));
  rows.push(await measure('check (after prune)', ['check', ...base], checked));
  rows.push(await measure('backup (new source: 201 files, 2.3 MiB)', ['backup', ...base, '--source', 'live', src]));
  rows.push(await measure('backup, unchanged re-run', ['backup', ...base, '--source', 'live', src]));
  return { rows, genSeconds: seconds };
}

const root = await mkdtemp(join(tmpdir(), 'kbrackup-lifecycle-scale-'));
try {
  const sizes = [
    { name: `${10 * 100} blobs (10 snapshots)`, gens: 10, per: 100, window: 3 },
    { name: `${(generations * perGeneration).toLocaleString('en')} blobs (${generations} snapshots)`, gens: generations, per: perGeneration, window: 30 },
  ];
  const results: { name: string; rows: Measure[]; genSeconds: number }[] = [];
  for (const size of sizes) {
    const dir = join(root, String(size.gens));
    await mkdir(dir);
    process.stderr.write(`${size.name}: generating\n`);
    results.push({ name: size.name, ...(await steps(dir, size.gens, size.per, size.window)) });
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`| step | ${results.map((r) => `${r.name}: time, peak RSS (cgroup peak)`).join(' | ')} | result (${results.map((r) => r.name).join(' / ')}) |`);
  console.log(`|---|${results.map(() => '---|').join('')}---|`);
  for (let i = 0; i < results[0]!.rows.length; i++) {
    const cells = results.map((r) => {
      const m = r.rows[i]!;
      return `${m.seconds.toFixed(1)} s, ${m.rssMiB.toFixed(1)} MiB (${m.cgroupMiB} MiB)${m.code ? `, exit ${m.code}` : ''}`;
    });
    console.log(`| ${results[0]!.rows[i]!.step} | ${cells.join(' | ')} | ${results.map((r) => r.rows[i]!.note).filter(Boolean).join(' / ')} |`);
  }
  console.log(`\ngeneration: ${results.map((r) => `${r.name} in ${r.genSeconds.toFixed(0)} s`).join('; ')}`);
} finally {
  await rm(root, { recursive: true, force: true });
}
