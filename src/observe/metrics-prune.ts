import type { Logger } from 'pino';
import { describeError } from '../errors.js';
import { groupings, METRICS_JOB, safeUrl } from './metrics.js';
import { redactRepository } from './repository-label.js';

/** The grouping labels of one Pushgateway group, as its API lists them. */
type GroupLabels = Record<string, string>;

/** What a prune did. */
export interface PruneResult {
  /** Groups deleted, as "namespace/source repository". */
  deleted: string[];
  /** Groups kept because a current backup set still pushes to them. */
  kept: number;
}

const TIMEOUT_MS = 10_000;

/** fetch() refuses URLs with credentials: move them into a Basic Authorization header. */
function request(url: string, path: string): { url: string; headers: Record<string, string> } {
  const u = new URL(url);
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (u.username || u.password) headers.Authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  u.pathname = `${u.pathname.replace(/\/$/, '')}${path}`;
  return { url: u.toString(), headers };
}

/** The grouping labels of every group the Pushgateway holds (GET /api/v1/metrics). */
async function listGroups(url: string): Promise<GroupLabels[]> {
  const { url: target, headers } = request(url, '/api/v1/metrics');
  const res = await fetch(target, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) throw new Error(`GET /api/v1/metrics: ${res.status} ${res.statusText}`);
  const body = (await res.json()) as { data?: Array<{ labels?: GroupLabels }> };
  return (body.data ?? []).map((group) => group.labels ?? {});
}

/** DELETE one group by its grouping key (the gateway's own path form, base64 where needed). */
async function deleteGroup(url: string, labels: { namespace: string; source: string; repository: string }): Promise<void> {
  const path = Object.entries(groupings(labels))
    .map(([name, value]) => `/${encodeURIComponent(name)}/${encodeURIComponent(value)}`)
    .join('');
  const { url: target, headers } = request(url, `/metrics/job/${METRICS_JOB}${path}`);
  const res = await fetch(target, { method: 'DELETE', headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) throw new Error(`DELETE ${path}: ${res.status} ${res.statusText}`);
}

/**
 * Delete the kbrackup groups of `namespace` that no current backup set pushes to: a set that was
 * removed or renamed, or whose repository changed, would otherwise keep its last figures (and its
 * alerts) forever. `keep` maps each current source to its repository URL. Never throws: a prune that
 * cannot reach the gateway is a warning, as a failed push is.
 */
export async function pruneStaleGroups(url: string, namespace: string, keep: Map<string, string>, logger: Logger): Promise<PruneResult> {
  const result: PruneResult = { deleted: [], kept: 0 };
  const wanted = new Map([...keep].map(([source, repository]) => [source, redactRepository(repository)]));
  try {
    for (const labels of await listGroups(url)) {
      if (labels.job !== METRICS_JOB || labels.namespace !== namespace) continue;
      const source = labels.source ?? '';
      const repository = labels.repository ?? '';
      if (wanted.get(source) === repository) {
        result.kept++;
        continue;
      }
      await deleteGroup(url, { namespace, source, repository });
      result.deleted.push(`${namespace}/${source} ${repository}`);
    }
    logger.info({ pushgateway: safeUrl(url), deleted: result.deleted, kept: result.kept }, `Pushgateway: deleted ${result.deleted.length} stale group(s) of namespace ${namespace}`);
  } catch (err) {
    logger.warn({ pushgateway: safeUrl(url), err: describeError(err) }, `could not prune the Pushgateway's stale groups of namespace ${namespace}; their metrics stay until the next try`);
  }
  return result;
}
