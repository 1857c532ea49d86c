/**
 * The memory workload of issue 16, in the container test's conditions: a full backup of 318 MiB
 * (3 × 100 MiB of random data + 3,000 small files) into a fresh filesystem repository on a mounted
 * volume, and a restore of it, each in the image at the chart's memory limit with the image's own
 * NODE_OPTIONS. test/container.test.ts runs a few rounds; bench/container-memory.ts runs 50.
 */
import { chownSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Prng } from '../fixtures/prng.js';
import { chartTempLimit, podman, runContainer, UID, type ContainerMemory } from './container.js';
import { digestTree, writePseudoRandom } from './data.js';

const MiB = 1024 * 1024;
export const WORKLOAD = { bigFiles: 3, bigBytes: 100 * MiB, smallFiles: 3000, folders: 30, description: '3 × 100 MiB of random data + 3,000 files of 0.5–11.5 KiB in 30 folders' };

/** Write the workload into `dir`; returns its file count and bytes. */
export async function writeWorkload(dir: string): Promise<{ files: number; bytes: number }> {
  let bytes = 0;
  for (let i = 0; i < WORKLOAD.bigFiles; i++) {
    await writePseudoRandom(join(dir, `big-${i}.bin`), WORKLOAD.bigBytes, `container memory ${i}`);
    bytes += WORKLOAD.bigBytes;
  }
  const prng = new Prng('container memory small files');
  for (let i = 0; i < WORKLOAD.smallFiles; i++) {
    const folder = join(dir, 'small', `d${i % WORKLOAD.folders}`);
    if (i < WORKLOAD.folders) mkdirSync(folder, { recursive: true });
    const size = 512 + (prng.next(4).readUInt32LE() % (11 * 1024));
    // Half text that compresses, half random bytes that do not: both paths of the packer are taken.
    const data = i % 2 ? Buffer.from(`line ${i} of a small text file\n`.repeat(Math.ceil(size / 28))).subarray(0, size) : prng.next(size);
    writeFileSync(join(folder, `f${i}.dat`), data);
    bytes += size;
  }
  return { files: WORKLOAD.bigFiles + WORKLOAD.smallFiles, bytes };
}

/** One backup or restore of the workload. */
export interface PhaseRun {
  code: number;
  /** podman's State.OOMKilled, or the cgroup's OOM counter, or exit 137 (SIGKILL, which only the OOM killer sends here). */
  oomKilled: boolean;
  seconds: number;
  memory: ContainerMemory;
  /** Why it failed: its last line of stderr, or the restored files that differ. */
  error?: string;
}

export interface Round {
  backup: PhaseRun;
  restore: PhaseRun;
}

/**
 * The folders of a backup pod and a restore Job (source read-only, a repository volume, an emptyDir
 * as a host folder, secrets read-only, a restore target), set up once; each round uses a fresh
 * repository and restore target.
 */
export class MemoryRig {
  readonly dirs;
  #expected: Map<string, string> | undefined;
  #serial = 0;

  constructor(
    private readonly image: string,
    work: string,
    private readonly memoryMiB?: number,
  ) {
    this.dirs = { src: join(work, 'src'), secrets: join(work, 'secrets'), repo: join(work, 'repo'), temp: join(work, 'emptydir'), restore: join(work, 'restore') };
  }

  /** Write the workload and the owner's key; returns the workload's size. */
  async prepare(): Promise<{ files: number; bytes: number }> {
    for (const d of Object.values(this.dirs)) mkdirSync(d, { recursive: true });
    const size = await writeWorkload(this.dirs.src);
    this.#expected = digestTree(this.dirs.src);
    for (const d of [this.dirs.secrets, this.dirs.temp]) chownSync(d, UID, UID);
    const keys = await runContainer(['-v', `${this.dirs.secrets}:/keys`, this.image, 'keygen', '--out', '/keys/owner']);
    if (keys.code !== 0) throw new Error(`keygen failed: ${keys.stderr}`);
    return size;
  }

  /** A phase in a kept container, so podman can say whether the OOM killer ended it; then removed. */
  async #phase(args: string[], check?: () => Promise<string | undefined>): Promise<PhaseRun> {
    const name = `kbrackup-memory-${process.pid}-${++this.#serial}`;
    try {
      const run = await runContainer(args, { name, keep: true, memoryMiB: this.memoryMiB });
      const inspected = podman(['inspect', '--format', '{{.State.OOMKilled}}', name]).trim() === 'true';
      const oomKilled = inspected || run.memory.oomKill || (run.code === 137 && !run.timedOut);
      const lastLine = run.stderr.trim().split('\n').at(-1) ?? '';
      const error = run.code !== 0 ? (run.timedOut ? 'timed out' : lastLine) : await check?.();
      return { code: run.code, oomKilled, seconds: run.seconds, memory: run.memory, ...(error ? { error } : {}) };
    } finally {
      podman(['rm', '--force', '--ignore', name]);
    }
  }

  /** Init a fresh repository, back the workload up into it, restore it and compare every file. */
  async round(): Promise<Round> {
    const { src, secrets, repo, temp, restore } = this.dirs;
    for (const d of [repo, restore]) {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(d);
      chownSync(d, UID, UID);
    }
    // A fresh repository has a fresh key: the backup credentials of the last one go.
    rmSync(join(secrets, 'backup.cred'), { force: true });
    const init = await runContainer(['-v', `${secrets}:/keys`, '-v', `${repo}:/repository`, this.image, 'init', '--repo', '/repository', '--key', '/keys/owner.key.asc', '--credentials-out', '/keys/backup.cred']);
    if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
    const backup = await this.#phase([
      '-v', `${src}:/data/app:ro`,
      '-v', `${repo}:/repository`,
      '-v', `${temp}:/tmp/kbrackup`,
      '-v', `${secrets}:/etc/kbrackup/credentials:ro`,
      '-e', 'KBRACKUP_REPO=/repository',
      '-e', 'KBRACKUP_CREDENTIALS=/etc/kbrackup/credentials/backup.cred',
      '-e', `KBRACKUP_TEMP_LIMIT=${chartTempLimit()}`,
      '-e', 'KBRACKUP_SOURCE=app',
      this.image, 'backup', '/data',
    ]);
    const restored = await this.#phase(
      [
        '-v', `${repo}:/repository:ro`,
        '-v', `${temp}:/tmp/kbrackup`,
        '-v', `${secrets}:/etc/kbrackup/key:ro`,
        '-v', `${restore}:/restore`,
        '-e', 'KBRACKUP_REPO=/repository',
        '-e', 'KBRACKUP_KEY=/etc/kbrackup/key/owner.key.asc',
        this.image, 'restore', 'latest', '--target', '/restore',
      ],
      async () => {
        const got = digestTree(join(restore, 'app'));
        const wrong = [...this.#expected!].filter(([path, digest]) => got.get(path) !== digest).map(([path]) => path);
        return wrong.length || got.size !== this.#expected!.size ? `restored tree differs: ${wrong.length} files differ, ${got.size} of ${this.#expected!.size} present` : undefined;
      },
    );
    return { backup, restore: restored };
  }
}

/** min, median, p90 and max of some values (nearest rank). */
export function spread(values: number[]): { min: number; median: number; p90: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  return { min: sorted[0]!, median: rank(0.5), p90: rank(0.9), max: sorted.at(-1)! };
}
