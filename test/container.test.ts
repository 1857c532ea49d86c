/**
 * Builds the real Dockerfile with podman and runs kbrackup in it the way the chart runs it in a pod:
 * read-only root filesystem, user 65532, the chart's memory limit as a hard cgroup limit (no swap),
 * no network, the source mounted read-only, the emptyDir as a writable host folder, secrets read-only.
 *
 * The image is built from local base images (see test/helpers/container.ts, shared with
 * bench/container-memory.ts, which runs the memory workload of issue 16 fifty times).
 * podman is required: without it this test fails, it does not skip.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE_IMAGE, buildImage, chartMemoryLimitMiB, chartTempLimit, checkoutImage, podman, ROOT, runContainer, UID, VERSION } from './helpers/container.js';
import { MemoryRig } from './helpers/container-memory.js';
import { digestTree } from './helpers/data.js';
import { waitUntil } from './helpers/wait.js';

const IMAGE = checkoutImage('test');

function fillRandom(path: string, bytes: number): void {
  const block = 1024 * 1024;
  const parts: Buffer[] = [];
  for (let done = 0; done < bytes; done += block) parts.push(randomBytes(Math.min(block, bytes - done)));
  writeFileSync(path, Buffer.concat(parts));
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
    // As the chart sets it: the namespace, not the pod's (here the container's) own hostname.
    '-e', 'KBRACKUP_HOSTNAME=apps',
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
    const built = buildImage(IMAGE);
    nodeOptions = built.nodeOptions;
    timings.push(...built.timings);

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
    const keys = await runContainer(['-v', `${dirs.secrets}:/keys`, IMAGE, 'keygen', '--out', '/keys/owner']);
    assert.equal(keys.code, 0, keys.stderr);
    const init = await runContainer(['-v', `${dirs.secrets}:/keys`, '-v', `${dirs.repo}:/repository`, IMAGE, 'init', '--repo', '/repository', '--key', '/keys/owner.key.asc', '--credentials-out', '/keys/backup.cred']);
    assert.equal(init.code, 0, init.stderr);

    const backup = await runContainer([...backupPod(), IMAGE, 'backup', '--json', '/data']);
    assert.equal(backup.code, 0, `backup failed (137 = OOM-killed at ${chartMemoryLimitMiB()} MiB):\n${backup.stderr}`);
    const summary = JSON.parse(backup.stdout.trim().split('\n').at(-1)!) as { message_type: string; total_files_processed: number; snapshot_id: string };
    assert.equal(summary.message_type, 'summary');
    assert.equal(summary.total_files_processed, 202);
    assert.match(backup.stderr, /memory limit 64(\.0)? MiB: large files are cut and hashed on the main thread/, 'under the chart limit the chunk thread is left out');
    const { pid, maxRssKiB } = probe();
    assert.equal(pid, 1, 'node is PID 1: SIGTERM from the kubelet reaches it directly');
    assert.deepEqual(readdirSync(dirs.temp), [], 'no temp files are left in the emptyDir');
    t.diagnostic(`backup of 48 MiB + 201 small files: cgroup peak (anon) ${backup.memory.anonMiB.toFixed(0)} MiB, node maxRSS ${Math.round(maxRssKiB / 1024)} MiB, limit ${chartMemoryLimitMiB()} MiB`);

    // Restore reads the repository read-only and needs the private key, not the backup credentials.
    const restore = await runContainer([...restorePod(), IMAGE, 'restore', 'latest', '--target', '/restore']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(digestTree(join(dirs.restore, 'app')), digestTree(dirs.src));
    t.diagnostic(`restore: cgroup peak (anon) ${restore.memory.anonMiB.toFixed(0)} MiB`);
  });

  test('SIGTERM during a backup stops it cleanly: exit 143, no new snapshot, the earlier one intact', async () => {
    fillRandom(join(dirs.src, 'more.bin'), 160 * 1024 * 1024);
    const name = `kbrackup-sigterm-${process.pid}`;
    let signalled = false;
    let waitError: unknown;
    const running = runContainer([...backupPod(), IMAGE, 'backup', '/data'], {
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

    const listed = await runContainer([...backupPod(), IMAGE, 'snapshots', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 1, 'only the earlier snapshot exists');
    rmSync(join(dirs.restore, 'app'), { recursive: true, force: true });
    const restore = await runContainer([...restorePod(), IMAGE, 'restore', 'latest', '--include', 'app/docs', '--target', '/restore']);
    assert.equal(restore.code, 0, restore.stderr);
    const expected = new Map([...digestTree(dirs.src)].filter(([k]) => k.startsWith('docs/')));
    assert.deepEqual(digestTree(join(dirs.restore, 'app')), expected);
  });

  test('maintenance at the chart memory limit: forget --prune and check, with the backup credentials only', async (t: TestContext) => {
    rmSync(join(dirs.src, 'more.bin'), { force: true });
    rmSync(join(dirs.src, 'big.bin'));
    fillRandom(join(dirs.src, 'big.bin'), 8 * 1024 * 1024);
    const backup = await runContainer([...backupPod(), IMAGE, 'backup', '/data']);
    assert.equal(backup.code, 0, backup.stderr);
    // The chart's default grouping (source,host) works because backups record the namespace as host.
    const prune = await runContainer([...maintenancePod(), '-e', 'KBRACKUP_KEEP_LAST=1', '-e', 'KBRACKUP_GRACE=0s', '-e', 'KBRACKUP_GROUP_BY=source,host', IMAGE, 'forget', '--prune', '--json']);
    assert.equal(prune.code, 0, `forget --prune failed (137 = OOM-killed at ${chartMemoryLimitMiB()} MiB):\n${prune.stderr}`);
    const stats = JSON.parse(prune.stdout.trim().split('\n').at(-1)!) as { message_type: string; objects: { delete: number } };
    assert.equal(stats.message_type, 'prune_summary', prune.stdout);
    assert.ok(stats.objects.delete > 0, 'the 48 MiB file of the forgotten snapshot is gone');
    const check = await runContainer([...maintenancePod(), IMAGE, 'check']);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /no problems found/);
    rmSync(join(dirs.restore, 'app'), { recursive: true, force: true });
    const restore = await runContainer([...restorePod(), IMAGE, 'restore', 'latest', '--target', '/restore']);
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(digestTree(join(dirs.restore, 'app')), digestTree(dirs.src));
    t.diagnostic(`forget --prune: cgroup peak (anon) ${prune.memory.anonMiB.toFixed(0)} MiB; check: ${check.memory.anonMiB.toFixed(0)} MiB`);
  });

  test('the workload of issue 16 (3 x 100 MiB + 3,000 small files) at the chart memory limit: two rounds of backup and restore, no OOM kill', async (t: TestContext) => {
    // Two rounds catch a regression; the 50 that prove the default limit are bench/container-memory.ts.
    const rig = new MemoryRig(IMAGE, join(work, 'workload'));
    await rig.prepare();
    for (let round = 1; round <= 2; round++) {
      const { backup, restore } = await rig.round();
      for (const [phase, run] of [['backup', backup], ['restore', restore]] as const) {
        assert.equal(run.oomKilled, false, `round ${round} ${phase} OOM-killed at ${chartMemoryLimitMiB()} MiB (peak anon ${run.memory.anonMiB.toFixed(1)} MiB)`);
        assert.equal(run.code, 0, `round ${round} ${phase}: ${run.error}`);
        assert.equal(run.error, undefined, `round ${round} ${phase}: ${run.error}`);
        t.diagnostic(`round ${round} ${phase}: ${run.seconds.toFixed(1)} s, peak anon ${run.memory.anonMiB.toFixed(1)} MiB, anon + dirty + writeback ${run.memory.pinnedMiB.toFixed(1)} MiB`);
      }
    }
    rmSync(join(work, 'workload'), { recursive: true, force: true });
  });
});
