import type { Logger } from 'pino';
import { describeError, ExitCode } from '../errors.js';
import type { RunReport } from './report.js';
import { redactRepository } from './repository-label.js';

/** The Pushgateway job label of every kbrackup group. */
export const METRICS_JOB = 'kbrackup';

/** The labels every metric of a run carries (as the Pushgateway grouping key, with job="kbrackup"). */
export interface MetricLabels {
  /** The pod's namespace: two namespaces backing up a set of the same name must not share a group. */
  namespace?: string;
  source: string;
  repository: string;
}

/**
 * Pushgateway grouping key entries. Values with "/" (repository URLs) or empty values must use the
 * gateway's base64url form ("label@base64"), because a slash stays a path separator even when escaped.
 */
export function groupings(labels: MetricLabels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(labels) as [string, string | undefined][]) {
    if (raw === undefined) continue;
    if (raw === '' || raw.includes('/')) out[`${name}@base64`] = raw === '' ? '=' : Buffer.from(raw).toString('base64url');
    else out[name] = raw;
  }
  return out;
}

/** URL without credentials, for log lines. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/**
 * Push the run's kbrackup_* metrics to a Pushgateway (POST: only these metric names are replaced, so
 * a failed run keeps the last success timestamp and figures of the run before). The namespace of the
 * grouping key defaults to POD_NAMESPACE (the chart sets it from the downward API). Never throws: a
 * failed push is a warning, not a failed backup.
 */
export async function pushMetrics(url: string, labels: MetricLabels, report: RunReport, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  try {
    // Loaded only when a Pushgateway is configured: prom-client costs ~11 MiB of RSS.
    const { Registry, Gauge, Pushgateway } = await import('prom-client');
    const registry = new Registry();
    const gauge = (name: string, help: string, value: number | undefined): void => {
      if (value === undefined) return;
      new Gauge({ name: `kbrackup_backup_${name}`, help, registers: [registry] }).set(value);
    };
    const now = Date.now() / 1000;
    gauge('last_run_timestamp_seconds', 'When the last run ended, in seconds since the epoch', now);
    gauge('last_success_timestamp_seconds', 'When the last run that ended with exit code 0 ended', report.exitCode === ExitCode.ok ? now : undefined);
    const wroteSnapshot = report.exitCode === ExitCode.ok || report.exitCode === ExitCode.partial;
    gauge('last_snapshot_timestamp_seconds', 'When the last run that wrote a snapshot (exit code 0 or 3) ended', wroteSnapshot ? now : undefined);
    gauge('duration_seconds', 'How long the last run took', report.durationSeconds);
    gauge('exit_code', 'Exit code of the last run (0 ok, 1 failed, 3 partial, 10 no repository, 11 locked, 12 wrong key, 143 terminated)', report.exitCode);
    gauge('errors', 'Files the last run could not read or that changed while read', report.errors ?? 0);
    const c = report.counters;
    gauge('files_processed', 'Files in the last snapshot', c?.total_files_processed);
    gauge('bytes_processed', 'Bytes of the files in the last snapshot', c?.total_bytes_processed);
    gauge('files_new', 'Files of the last snapshot not in its parent', c?.files_new);
    gauge('files_changed', 'Files of the last snapshot changed since its parent', c?.files_changed);
    gauge('files_unmodified', 'Files of the last snapshot unchanged since its parent', c?.files_unmodified);
    gauge('bytes_added', 'Bytes of new data the last run stored, before compression', c?.data_added);
    gauge('bytes_added_packed', 'Bytes the last run stored in the repository, compressed and encrypted', c?.data_added_packed);
    const gateway = new Pushgateway(url, { timeout: 10_000 }, registry);
    const namespace = labels.namespace ?? (env.POD_NAMESPACE || undefined);
    await gateway.pushAdd({ jobName: METRICS_JOB, groupings: groupings({ namespace, source: labels.source, repository: redactRepository(labels.repository) }) });
    logger.debug({ pushgateway: safeUrl(url) }, 'pushed metrics');
  } catch (err) {
    logger.warn({ pushgateway: safeUrl(url), err: describeError(err) }, 'could not push metrics to the Pushgateway; the run itself is not affected');
  }
}
