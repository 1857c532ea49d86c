import { hostname as osHostname, userInfo } from 'node:os';
import { basename, resolve } from 'node:path';
import { runBackup } from '../../backup/backup.js';
import { Progress } from '../../backup/progress.js';
import { chunkThreadMode } from '../../chunker/chunk-thread.js';
import { formatSize } from '../../util/sizes.js';
import { ConfigError, KbrackupError, describeError } from '../../errors.js';
import { startKubernetes, type KubernetesMode } from '../../k8s/index.js';
import { pushMetrics } from '../../observe/metrics.js';
import type { RunReport } from '../../observe/report.js';
import type { SnapshotSummary } from '../../repo/snapshot.js';
import { sanitizeSource } from '../../repo/layout.js';
import { openFromConfig, targetFromConfig, withLock, type CommandContext } from '../context.js';
import { PROGRAM_VERSION } from '../version.js';
import { memoryLimit, type ThreadSetting } from '../../util/memory-limit.js';
import { startProgress } from '../progress-reporter.js';

function username(): string {
  try {
    return userInfo().username;
  } catch {
    // A container user without a passwd entry (e.g. uid 65532).
    return String(process.getuid?.() ?? '');
  }
}

/** The exit code an error stands for (a signal's when the run was stopped). */
function exitCodeOf(err: unknown, signal: AbortSignal): number {
  const reason: unknown = signal.aborted ? signal.reason : err;
  return reason instanceof KbrackupError ? reason.exitCode : 1;
}

/**
 * `backup PATH`: store a snapshot of a folder. Exit 0, or 3 when some files could not be read. In a
 * cluster it holds a Lease on the repository and records Events; with --pushgateway it pushes metrics.
 */
export async function backup(ctx: CommandContext): Promise<number> {
  const { config, logger } = ctx;
  if (ctx.positionals.length !== 1) throw new ConfigError('backup needs exactly one PATH to back up');
  const root = resolve(ctx.positionals[0] as string);
  const source = sanitizeSource(config.get('source') || basename(root));
  const started = Date.now();
  const k8s = await startKubernetes({ mode: config.get('kubernetes') as KubernetesMode, repo: config.get('repo'), source, signal: ctx.signal }, logger);
  let report: RunReport = { exitCode: 1, durationSeconds: 0 };
  try {
    const result = await backupToRepository(ctx, root, source);
    report = { exitCode: result.exitCode, durationSeconds: (Date.now() - started) / 1000, snapshotId: result.snapshotId, counters: result.summary, errors: result.summary.error_count };
    return result.exitCode;
  } catch (err) {
    report = { exitCode: exitCodeOf(err, ctx.signal), durationSeconds: (Date.now() - started) / 1000, error: describeError(ctx.signal.aborted ? ctx.signal.reason : err) };
    throw err;
  } finally {
    await k8s.finish(report);
    const pushgateway = config.get('pushgateway');
    if (pushgateway) await pushMetrics(pushgateway, { source, repository: config.get('repo') }, report, logger);
  }
}

async function backupToRepository(ctx: CommandContext, root: string, source: string): Promise<{ exitCode: number; snapshotId: string; summary: SnapshotSummary }> {
  const { config, logger } = ctx;
  const json = config.get('json');
  const target = await targetFromConfig(ctx, 'many');
  const threadSetting = config.get('chunkThread') as ThreadSetting;
  const chunkThread = chunkThreadMode(threadSetting);
  if (threadSetting === 'auto' && chunkThread === 'inline') {
    logger.info(`memory limit ${formatSize(memoryLimit())}: large files are cut and hashed on the main thread (--chunk-thread on adds a second thread of ~9 MiB)`);
  }
  try {
    const repo = await openFromConfig(ctx, target);
    const progress = new Progress();
    const stop = startProgress(progress, json, ctx.print, logger);
    let result;
    try {
      result = await withLock(ctx, repo, false, 'backup', () => runBackup(
        repo,
        {
          root,
          source,
          hostname: config.get('hostname') || osHostname(),
          username: username(),
          tags: config.get('tags'),
          excludes: config.get('exclude'),
          tempDir: config.get('tempDir'),
          tempLimit: config.get('tempLimit'),
          workers: Math.max(1, config.get('workers')),
          uploads: Math.max(1, config.get('uploads')),
          chunkThread,
          programVersion: PROGRAM_VERSION,
          force: config.get('force'),
          signal: ctx.signal,
        },
        {
          error(path, during, err) {
            if (json) ctx.print(JSON.stringify({ message_type: 'error', error: { message: describeError(err) }, during, item: path }));
            logger.warn({ path, during }, `${path}: ${describeError(err)}`);
          },
          warn(path, message) {
            logger.warn({ path }, `${path}: ${message}`);
          },
        },
        progress,
      ));
    } finally {
      stop();
    }
    const { snapshot, summary } = result;
    const duration = (Date.parse(summary.backup_end) - Date.parse(summary.backup_start)) / 1000;
    if (json) {
      ctx.print(JSON.stringify({ message_type: 'summary', dry_run: false, ...summary, total_duration: duration, snapshot_id: snapshot.id }));
    } else {
      ctx.print(`snapshot ${snapshot.id.slice(0, 8)} saved: ${summary.total_files_processed} files, ${formatSize(summary.total_bytes_processed)} processed, ${formatSize(summary.data_added)} added in ${duration.toFixed(1)}s`);
    }
    logger.info({ summary: { ...summary, total_duration: duration, snapshot_id: snapshot.id } }, 'backup finished');
    if (summary.error_count > 0) {
      logger.warn(`${summary.error_count} file(s) could not be read or changed during the backup; the snapshot was saved without them`);
    }
    return { exitCode: summary.error_count > 0 ? 3 : 0, snapshotId: snapshot.id, summary };
  } finally {
    await target.close();
  }
}
