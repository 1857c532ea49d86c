import { formatSize } from '../util/sizes.js';
import { ExitCode } from '../errors.js';

/** restic's summary counters (the subset Events and metrics show); a snapshot's summary fits as is. */
export interface RunCounters {
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  total_files_processed: number;
  total_bytes_processed: number;
  data_added: number;
  data_added_packed?: number;
}

/** What one finished run reports to Kubernetes Events and to the Pushgateway. */
export interface RunReport {
  exitCode: number;
  durationSeconds: number;
  /** Set when a snapshot was written (exit 0 or 3). */
  snapshotId?: string;
  counters?: RunCounters;
  /** Files that could not be read or changed while read. */
  errors?: number;
  /** One-line reason when the run failed. */
  error?: string;
}

/** How a run ended, from its exit code: 0 succeeded, 3 partial, anything else failed. */
export type Outcome = 'succeeded' | 'partial' | 'failed';

/** The outcome restic's exit codes stand for. */
export function outcomeOf(exitCode: number): Outcome {
  if (exitCode === ExitCode.ok) return 'succeeded';
  if (exitCode === ExitCode.partial) return 'partial';
  return 'failed';
}

/** One line with the figures of a run, for people (Event messages, logs). */
export function describeReport(report: RunReport): string {
  const parts: string[] = [];
  if (report.snapshotId) parts.push(`snapshot ${report.snapshotId.slice(0, 8)}`);
  const c = report.counters;
  if (c) {
    parts.push(`${c.total_files_processed} files (${formatSize(c.total_bytes_processed)}) processed`);
    parts.push(`${c.files_new} new, ${c.files_changed} changed, ${c.files_unmodified} unmodified`);
    parts.push(`${formatSize(c.data_added)} added`);
  }
  if (report.errors) parts.push(`${report.errors} ${report.errors === 1 ? 'error' : 'errors'}`);
  parts.push(`${report.durationSeconds.toFixed(1)} s`);
  if (outcomeOf(report.exitCode) !== 'succeeded') parts.push(`exit ${report.exitCode}`);
  if (report.error) parts.push(report.error);
  return parts.join(', ');
}
