// Backup (and restore) of 1 GiB of random data to each target: throughput and peak RSS, with the
// default V8 heap, with uploads on their own thread (S3, SFTP), with the image's heap flags, and inside
// a 96 MiB memory cgroup (where `auto` keeps uploads on the main thread).
// `node --import tsx bench/targets.ts [GiB]` after `npm run build`; needs s3rver, openssh-server, root.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, POD_NODE_ARGS, runCli } from '../test/helpers/cli.js';
import { sha256File, writePseudoRandom } from '../test/helpers/data.js';
import { expectCode } from '../test/helpers/repo.js';
import { startS3Server } from '../test/helpers/s3server.js';
import { startSshd } from '../test/helpers/sshd.js';

const MEMCAP = '/work/shared/tools/memcap';
const CAP_MIB = 96;
const size = Math.round(Number(process.argv[2] ?? 1) * 1024 ** 3);
const MiB = 1024 * 1024;

/** Runs the CLI inside a memory cgroup; memcap reports the cgroup's peak (page cache included) on stderr. */
function runCapped(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; seconds: number; memcap: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(MEMCAP, [String(CAP_MIB), process.execPath, CLI, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, seconds: (Date.now() - started) / 1000, memcap: /memcap: .*/.exec(stderr)?.[0] ?? 'memcap: no report', stderr }));
  });
}

const mbps = (seconds: number): string => `${(size / 1e6 / seconds).toFixed(0)} MB/s`;
const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;

const dir = await mkdtemp(join(tmpdir(), 'kbrackup-bench-targets-'));
const [s3, sshd] = await Promise.all([startS3Server(['kbrackup']), startSshd()]);
try {
  const source = join(dir, 'source');
  await mkdir(source);
  await writePseudoRandom(join(source, 'random.bin'), size, 'bench targets');
  const expected = await sha256File(join(source, 'random.bin'));
  const owner = join(dir, 'owner');
  expectCode(await runCli(['keygen', '--out', owner]), 0);

  const s3Env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_ENDPOINT_URL: s3.endpoint, KBRACKUP_S3_FORCE_PATH_STYLE: 'true' };
  const sftpEnv = { KBRACKUP_SFTP_KEY: sshd.userKey, KBRACKUP_SFTP_KNOWN_HOSTS: sshd.knownHosts };
  const targets = [
    { name: 'filesystem', repo: (run: string) => join(dir, `fs-${run}`), env: {} },
    { name: 's3rver', repo: (run: string) => `s3://kbrackup/${run}`, env: s3Env },
    { name: 'sshd', repo: (run: string) => `sftp://${sshd.user}@127.0.0.1:${sshd.port}${join(sshd.dataDir, run)}`, env: sftpEnv },
  ];
  for (const t of targets) {
    const temp = join(dir, 'tmp');
    await mkdir(temp, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, ...t.env, KBRACKUP_TEMP_DIR: temp };
    const cred = (run: string): string => join(dir, `${t.name}-${run}.cred`);
    const remote = t.name !== 'filesystem';
    for (const run of ['free', 'thread', 'heap', 'capped']) {
      expectCode(await runCli(['init', '--repo', t.repo(run), '--key', `${owner}.key.asc`, '--credentials-out', cred(run)], { env }), 0);
    }
    const started = Date.now();
    const backup = expectCode(await runCli(['backup', '--repo', t.repo('free'), '--credentials', cred('free'), '--upload-thread', 'off', source], { env }), 0);
    const backupSeconds = (Date.now() - started) / 1000;
    const out = join(dir, `${t.name}-restore`);
    const restoreStarted = Date.now();
    const restore = expectCode(await runCli(['restore', '--repo', t.repo('free'), '--key', `${owner}.key.asc`, 'latest', '--target', out], { env }), 0);
    const restoreSeconds = (Date.now() - restoreStarted) / 1000;
    const intact = (await sha256File(join(out, 'random.bin'))) === expected;
    await rm(out, { recursive: true, force: true });
    // Uploads from their own thread, as `auto` does without a memory limit or with 256 MiB or more.
    let threaded = '';
    if (remote) {
      const threadStarted = Date.now();
      const thread = expectCode(await runCli(['backup', '--repo', t.repo('thread'), '--credentials', cred('thread'), '--upload-thread', 'on', source], { env }), 0);
      const threadSeconds = (Date.now() - threadStarted) / 1000;
      threaded = `upload thread: backup ${mbps(threadSeconds)} (${threadSeconds.toFixed(1)} s), peak RSS ${mib(thread.peakRss)}; `;
    }
    // What the container image does: a capped V8 heap and a small young generation.
    const heapStarted = Date.now();
    const heap = expectCode(await runCli(['backup', '--repo', t.repo('heap'), '--credentials', cred('heap'), '--upload-thread', 'off', source], { env, nodeArgs: POD_NODE_ARGS }), 0);
    const heapSeconds = (Date.now() - heapStarted) / 1000;
    const capped = await runCapped(['backup', '--repo', t.repo('capped'), '--credentials', cred('capped'), source], env);
    console.log(
      `${t.name.padEnd(10)} backup ${mbps(backupSeconds)} (${backupSeconds.toFixed(1)} s), peak RSS ${mib(backup.peakRss)}; ` +
        `restore ${mbps(restoreSeconds)}, peak RSS ${mib(restore.peakRss)}, ${intact ? 'byte-exact' : 'MISMATCH'}; ` +
        threaded +
        `image heap flags: backup ${mbps(heapSeconds)}, peak RSS ${mib(heap.peakRss)}; ` +
        `in ${CAP_MIB} MiB cgroup: backup rc=${capped.code} ${mbps(capped.seconds)} [${capped.memcap}]`,
    );
    if (capped.code !== 0) console.log(capped.stderr.split('\n').filter((l) => l.includes('"level":50') || l.startsWith('{"message_type"')).join('\n'));
  }
} finally {
  await Promise.all([s3.stop(), sshd.stop()]);
  await rm(dir, { recursive: true, force: true });
}
