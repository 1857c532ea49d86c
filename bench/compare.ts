// kbrackup, restic and borg side by side on generated data (issues 12 and 13): first backup, unchanged
// re-run, re-run after a 1% change, restore (and, on the sets with many files, `ls` of one folder and
// the restore of one file), in alternating order, median of several rounds; kbrackup also inside a
// 64 MiB memory cgroup. Writes docs/side-by-side.json and its section of docs/BENCHMARKS.md.
// `npm run bench -- --help` lists the options.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI } from '../test/helpers/cli.js';
import { startS3Server } from '../test/helpers/s3server.js';
import { startSshd } from '../test/helpers/sshd.js';
import { change, dataSets, describe, fileDigest, generate, lookupPaths, treeDigest, type SetSpec } from './compare/data.js';
import { Interrupted, measure, RSS_METHOD, runChecked, settle, type Command, type Measurement } from './compare/measure.js';
import { section, updateDoc } from './compare/report.js';
import type { Phase, Results, Run, SetResult } from './compare/results.js';
import { ensureCommands, TOOL_NAMES, TOOLS, type Context, type Repo, type ToolName } from './compare/tools.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ALL_SETS = dataSets(1).map((s) => s.name);
const USAGE = `usage: npm run bench -- [options]

  --sets LIST      data sets, comma-separated (default: all):
${dataSets(1).map((s) => `                     ${s.name.padEnd(9)} ${describe(s)}`).join('\n')}
  --tools LIST     tools, comma-separated (default: all): ${TOOL_NAMES.join(', ')}
  --rounds N       rounds per set; medians are reported (default 3)
  --scale X        multiply folder counts and the big file's size, e.g. 0.05 for a quick trial (default 1)
  --work DIR       where data, repositories and restores go (default /tmp/kbrackup-bench); emptied first,
                   removed at the end and on Ctrl-C during a tool's run (Ctrl-C elsewhere leaves it to the next run)
  --keep           keep the work folder (logs of every run are in DIR/logs)
  --cold           drop the page cache before every phase (default: warm, as the issues measured)
  --timeout S      seconds one phase of one tool may take before it is killed and counted failed (default 3600)
  --memcap PATH    the memory-cgroup wrapper for kbrackup-64 (default ../shared/tools/memcap)
  --json PATH      raw results (default docs/side-by-side.json)
  --doc PATH       the page whose section is rewritten (default docs/BENCHMARKS.md)`;

const { values: args } = parseArgs({
  options: {
    sets: { type: 'string', default: ALL_SETS.join(',') },
    tools: { type: 'string', default: TOOL_NAMES.join(',') },
    rounds: { type: 'string', default: '3' },
    scale: { type: 'string', default: '1' },
    work: { type: 'string', default: '/tmp/kbrackup-bench' },
    keep: { type: 'boolean', default: false },
    cold: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '3600' },
    memcap: { type: 'string', default: join(ROOT, '..', 'shared', 'tools', 'memcap') },
    json: { type: 'string', default: join(ROOT, 'docs', 'side-by-side.json') },
    doc: { type: 'string', default: join(ROOT, 'docs', 'BENCHMARKS.md') },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

function list<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').filter(Boolean);
  const bad = items.filter((i) => !allowed.includes(i as T));
  if (bad.length || !items.length) fail(`unknown ${what} ${bad.join(', ') || '(none given)'}; choose from ${allowed.join(', ')}`);
  return items as T[];
}

const setNames = list(args.sets, ALL_SETS, 'set');
const toolNames = list(args.tools, TOOL_NAMES, 'tool');
const rounds = Number(args.rounds);
const scale = Number(args.scale);
const timeoutSeconds = Number(args.timeout);
if (!Number.isInteger(rounds) || rounds < 1) fail('--rounds takes a whole number ≥ 1');
if (!(scale > 0)) fail('--scale takes a number > 0');
if (!(timeoutSeconds > 0)) fail('--timeout takes seconds > 0');
const work = resolve(args.work);
const timeoutMs = timeoutSeconds * 1000;

const specs = dataSets(scale).filter((s) => setNames.includes(s.name));
const remote = new Set(specs.map((s) => s.target));
ensureCommands([
  { command: '/usr/bin/time', pkg: 'time' },
  ...(toolNames.includes('restic') ? [{ command: 'restic', pkg: 'restic' }] : []),
  ...(toolNames.includes('borg') ? [{ command: 'borg', pkg: 'borgbackup' }] : []),
  ...(remote.has('sftp') ? [{ command: 'ssh', pkg: 'openssh-client' }, { command: '/usr/sbin/sshd', pkg: 'openssh-server' }] : []),
]);
if (!existsSync(CLI)) fail(`${CLI} is missing: run \`npm run build\` first (npm run bench does)`);
if (toolNames.includes('kbrackup-64')) {
  const probe = spawnSync(args.memcap, ['64', 'true'], { encoding: 'utf8', timeout: 30_000 });
  if (!/memcap: rc=0 /.test(probe.stderr ?? '')) fail(`${args.memcap} cannot run a command in a 64 MiB memory cgroup here (needs root and cgroup v1): ${probe.error?.message ?? probe.stderr}`);
}
if (args.cold) {
  try {
    settle(true);
  } catch (err) {
    fail(`--cold needs to write /proc/sys/vm/drop_caches (root): ${(err as Error).message}`);
  }
}

// The work folder is emptied: refuse one this harness did not make, so a typo cannot wipe a real folder.
const MARKER = join(work, '.kbrackup-bench');
if (existsSync(work) && readdirSync(work).length && !existsSync(MARKER)) fail(`${work} exists and was not made by this harness (no ${basename(MARKER)} in it); name an empty or new folder`);
runChecked(['rm', '-rf', work], { timeoutMs: 1_800_000 });
for (const sub of ['logs', 'keys', 'repos', 'cache', 'restore', ...toolNames.map((t) => join('tmp', t))]) mkdirSync(join(work, sub), { recursive: true });
writeFileSync(MARKER, 'made by bench/compare.ts; removed at the end of its run\n');

const npmArgs = process.env.npm_lifecycle_event === 'bench';
const quoted = process.argv.slice(2).map((a) => (/^[\w./,=:-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
const results: Results = {
  command: (npmArgs ? ['npm', 'run', 'bench', ...(quoted.length ? ['--', ...quoted] : [])] : ['node', '--import', 'tsx', 'bench/compare.ts', ...quoted]).join(' '),
  started: new Date().toISOString(),
  options: { sets: setNames, tools: toolNames, rounds, scale, cold: args.cold, timeoutSeconds },
  machine: {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    ramGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: release(),
    node: process.version,
    workFs: runChecked(['stat', '-f', '-c', '%T', work], { timeoutMs: 30_000 }).trim(),
    loadAtStart: loadavg(),
  },
  versions: Object.fromEntries(toolNames.map((t) => [t, TOOLS[t].version()])),
  rssMethod: RSS_METHOD,
  sets: [],
};

const ctx: Context = { work, memcap: args.memcap, ownerKey: join(work, 'keys', 'owner.key.asc') };
runChecked([process.execPath, CLI, 'keygen', '--out', join(work, 'keys', 'owner')], { timeoutMs: 60_000 });

const rm = (path: string): void => void runChecked(['rm', '-rf', path], { timeoutMs: 1_800_000 });

/** Writes the JSON and the doc's section: after every set, so a run cut short still leaves what it measured. */
function publish(): void {
  mkdirSync(dirname(args.json), { recursive: true });
  writeFileSync(args.json, `${JSON.stringify(results, null, 1)}\n`);
  updateDoc(args.doc, section(results, relative(dirname(resolve(args.doc)), resolve(args.json))));
}

/** A check after a measured run: undefined when the run did what it should, else why not. */
type Check = (dest: string, m: Measurement) => Promise<string | undefined>;

async function runSet(spec: SetSpec): Promise<SetResult> {
  const tools = toolNames.filter((t) => TOOLS[t].targets.includes(spec.target));
  const source = join(work, 'data', spec.name);
  const started = Date.now();
  const size = await generate(source, spec);
  const set: SetResult = { name: spec.name, description: describe(spec), target: spec.target, size, changed: [], generateSeconds: (Date.now() - started) / 1000, tools, runs: [] };
  console.log(`${spec.name}: ${set.description} (${size.files} files) generated in ${set.generateSeconds.toFixed(1)} s; tools ${tools.join(', ')}`);
  let digest = await treeDigest(source);

  for (let round = 0; round < rounds; round++) {
    // Rotating the order each round spreads warm-up effects and the machine's other load over all tools.
    const order = tools.map((_, i) => tools[(i + round) % tools.length]!);
    const repos = new Map<ToolName, Repo>(order.map((t) => [t, TOOLS[t].open(ctx, spec, `${spec.name}-r${round}-${t}`)]));
    for (const repo of repos.values()) repo.init();
    // A failed phase ends that tool's round: later phases would measure something else.
    const failed = new Set<ToolName>();
    // Restored trees stay until the round ends: ext4 skips inodes freed in the last minute when it
    // allocates new ones, so a restore right after another tool's restore was deleted ran up to 4x
    // slower (perf: ext4_create -> recently_deleted), whichever tool came second.
    const restored: string[] = [];

    const phase = async (id: Phase, command: (repo: Repo, dest: string) => Command, check?: Check): Promise<void> => {
      const backup = id === 'first' || id === 'unchanged' || id === 'changed';
      for (const tool of order.filter((t) => !failed.has(t))) {
        const repo = repos.get(tool)!;
        const dest = join(work, 'restore', `${tool}-${id}`);
        if (!backup) mkdirSync(dest);
        settle(args.cold, backup ? source : undefined);
        const before = backup ? repo.bytes() : 0;
        const load1 = loadavg()[0]!;
        const m = await measure(command(repo, dest), join(work, 'logs', `${spec.name}-r${round}-${tool}-${id}`), timeoutMs);
        const error = m.error ?? (check && (await check(dest, m)));
        const run: Run = { round, tool, phase: id, ok: !error, wallSeconds: m.wallSeconds, cpuSeconds: m.cpuSeconds, peakRssMiB: m.peakRssMiB, load1 };
        if (error) run.error = error;
        if (backup && !error) run.addedBytes = repo.bytes() - before;
        if (m.memcap) run.memcap = m.memcap;
        set.runs.push(run);
        const added = run.addedBytes === undefined ? '' : `, +${run.addedBytes} B`;
        const cap = m.memcap ? `, cgroup peak ${m.memcap.peakMiB} MiB` : '';
        console.log(`  round ${round + 1} ${id.padEnd(11)} ${tool.padEnd(11)} ${error ? `FAILED: ${error}` : `${m.wallSeconds.toFixed(2)} s, ${m.cpuSeconds.toFixed(2)} s CPU, ${m.peakRssMiB.toFixed(0)} MiB${added}${cap}`}`);
        if (error) failed.add(tool);
        if (!backup) restored.push(dest);
      }
    };
    const sameTree: Check = async (dest) => ((await treeDigest(dest)) === digest ? undefined : 'the restored files differ from the source');

    await phase('first', (repo) => repo.backup(source, 'first'));
    await phase('unchanged', (repo) => repo.backup(source, 'unchanged'));
    set.changed.push(change(source, spec, round + 1));
    digest = await treeDigest(source);
    await phase('changed', (repo) => repo.backup(source, 'changed'));
    await phase('restore', (repo, dest) => repo.restore(dest), sameTree);
    if (spec.lookups) {
      const { folder, file } = lookupPaths(spec);
      const fileSha = await fileDigest(join(source, file));
      await phase('ls', (repo) => repo.ls(folder), async (_, m) => (readFileSync(m.stdoutFile, 'utf8').includes(basename(file)) ? undefined : `ls did not list ${basename(file)}`));
      await phase('restore-one', (repo, dest) => repo.restoreOne(file, dest), async (dest) =>
        existsSync(join(dest, file)) && (await fileDigest(join(dest, file))) === fileSha ? undefined : `${file} was not restored intact`,
      );
    }
    for (const repo of repos.values()) repo.remove();
    for (const dest of restored) rm(dest);
    rm(join(work, 'cache'));
  }
  rm(source);
  return set;
}

let exitCode = 0;
try {
  for (const spec of specs) {
    if (!toolNames.some((t) => TOOLS[t].targets.includes(spec.target))) {
      console.log(`${spec.name}: none of ${toolNames.join(', ')} can use ${spec.target}; skipped`);
      continue;
    }
    const s3 = spec.target === 's3' ? await startS3Server(['bench']) : undefined;
    const sshd = spec.target === 'sftp' ? await startSshd() : undefined;
    Object.assign(ctx, { s3, sshd });
    try {
      const set = await runSet(spec);
      results.sets.push(set);
      // kbrackup-64 killed by the cgroup (rc ≥ 128) is a result (FAIL in the table), not a broken run.
      if (set.runs.some((r) => !r.ok && !(r.memcap && r.memcap.rc >= 128))) exitCode = 1;
    } finally {
      await Promise.all([s3?.stop(), sshd?.stop()]);
    }
    publish();
  }
  results.finished = new Date().toISOString();
  results.machine.loadAtEnd = loadavg();
  publish();
  console.log(`results: ${args.json}, ${args.doc}${exitCode ? ' (some runs failed: see the tables)' : ''}`);
} catch (err) {
  if (!(err instanceof Interrupted)) throw err;
  console.log(`bench: ${err.message}`);
  exitCode = 130;
} finally {
  if (!args.keep) rm(work);
}
process.exit(exitCode);
