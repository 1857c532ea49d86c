import type { Config } from '../../config/schema.js';
import { ConfigError } from '../../errors.js';
import { planForget, removeSnapshots, type ForgetGroup } from '../../maintenance/forget.js';
import { describePolicy, emptyPolicy, parseGroupBy, parseKeepDuration, parseTagLists, policyIsEmpty, type KeepPolicy } from '../../maintenance/policy.js';
import { parseSnapshotName } from '../../repo/layout.js';
import type { StoredSnapshot } from '../../repo/snapshot.js';
import type { CommandContext } from '../context.js';
import { pickSnapshots, runMaintenance, snapshotFilter } from '../maintenance.js';
import { snapshotHeader, snapshotJson, snapshotRow } from '../snapshot-output.js';
import { pruneLocked, pruneOptions } from './prune.js';

const WITHIN_FLAGS = [
  ['within', 'keepWithin', 'keep-within'],
  ['withinHourly', 'keepWithinHourly', 'keep-within-hourly'],
  ['withinDaily', 'keepWithinDaily', 'keep-within-daily'],
  ['withinWeekly', 'keepWithinWeekly', 'keep-within-weekly'],
  ['withinMonthly', 'keepWithinMonthly', 'keep-within-monthly'],
  ['withinYearly', 'keepWithinYearly', 'keep-within-yearly'],
] as const;

/** The policy the --keep-* flags describe; a malformed duration names its flag. */
function policyFrom(config: Config): KeepPolicy {
  const p: KeepPolicy = {
    ...emptyPolicy(),
    last: config.get('keepLast'),
    hourly: config.get('keepHourly'),
    daily: config.get('keepDaily'),
    weekly: config.get('keepWeekly'),
    monthly: config.get('keepMonthly'),
    yearly: config.get('keepYearly'),
    tags: parseTagLists(config.get('keepTags')),
  };
  for (const [field, key, flag] of WITHIN_FLAGS) {
    const text = config.get(key);
    if (text === '') continue;
    const d = parseKeepDuration(text);
    if (!d) throw new ConfigError(`--${flag} "${text}" is not a duration such as 1y5m7d2h (years, months, days, hours)`);
    p[field] = d;
  }
  return p;
}

/** Print the plan: restic's groups with keep/remove tables and reasons, or one JSON array. */
function printPlan(ctx: CommandContext, policy: KeepPolicy, groups: ForgetGroup[]): void {
  if (ctx.config.get('json')) {
    ctx.print(
      JSON.stringify(
        groups.map((g) => ({
          ...(g.key.hostname !== undefined ? { host: g.key.hostname } : {}),
          ...(g.key.source !== undefined ? { source: g.key.source } : {}),
          ...(g.key.paths ? { paths: g.key.paths } : {}),
          ...(g.key.tags ? { tags: g.key.tags } : {}),
          keep: g.keep.map(snapshotJson),
          remove: g.remove.map(snapshotJson),
          reasons: g.reasons.map((r) => ({ snapshot: snapshotJson(r.snapshot), matches: r.matches, counters: r.counters })),
        })),
      ),
    );
    return;
  }
  ctx.print(`Applying policy: ${describePolicy(policy)}`);
  for (const g of groups) {
    const what = Object.entries(g.key).map(([k, v]) => `${k} ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`);
    ctx.print('');
    ctx.print(`snapshots for ${what.length ? what.join(', ') : 'all snapshots'}:`);
    const reasons = new Map(g.reasons.map((r) => [r.snapshot, r.matches.join(', ')]));
    ctx.print(`keep ${g.keep.length} snapshot${g.keep.length === 1 ? '' : 's'}:`);
    ctx.print(snapshotHeader('Reasons'));
    for (const s of g.keep) ctx.print(snapshotRow(s, reasons.get(s)));
    if (g.remove.length) {
      ctx.print(`remove ${g.remove.length} snapshot${g.remove.length === 1 ? '' : 's'}:`);
      ctx.print(snapshotHeader());
      for (const s of g.remove) ctx.print(snapshotRow(s));
    }
  }
}

/**
 * `forget [ID...]`: remove snapshots, named or by restic's keep policy per group; `--dry-run` shows what
 * would go and why, `--prune` removes the data only they used. Exit 3 when some could not be removed.
 */
export async function forget(ctx: CommandContext): Promise<number> {
  const { config } = ctx;
  const policy = policyFrom(config);
  const ids = ctx.positionals;
  if (ids.length > 0 && !policyIsEmpty(policy)) throw new ConfigError('forget takes either snapshot ids or --keep-* rules, not both');
  if (ids.length === 0 && policyIsEmpty(policy)) throw new ConfigError('no policy was given, so no snapshots will be removed: add --keep-* rules (e.g. --keep-daily 7) or snapshot ids');
  const groupBy = parseGroupBy(config.get('groupBy'));
  if (!groupBy) throw new ConfigError(`--group-by "${config.get('groupBy')}" names an unknown field; use host, source, paths, tags (comma-separated), or '' for one group`);
  const dryRun = config.get('dryRun');
  if (config.get('prune')) pruneOptions(ctx, dryRun);
  return runMaintenance(ctx, 'forget', true, async (repo) => {
    let remove: Pick<StoredSnapshot, 'id' | 'object'>[];
    if (ids.length > 0) {
      // By name: a snapshot too damaged to read can still be forgotten by its id. `latest` needs the
      // times the snapshots hold: names give only the second, so two of one second would be a guess.
      const named = ids.includes('latest') ? await repo.listSnapshots() : (await repo.snapshotNames()).map((object) => ({ object, ...parseSnapshotName(object)! }));
      remove = [...new Set(pickSnapshots(named, ids))];
      if (config.get('json')) ctx.print(JSON.stringify([{ keep: [], remove: remove.map((s) => ({ id: s.id, short_id: s.id.slice(0, 8), object: s.object })), reasons: [] }]));
      else for (const s of remove) ctx.print(`${dryRun ? 'would remove' : 'removing'} snapshot ${s.id.slice(0, 8)} (${s.object})`);
    } else {
      const groups = planForget(await repo.listSnapshots(), policy, groupBy, snapshotFilter(config));
      printPlan(ctx, policy, groups);
      remove = groups.flatMap((g) => g.remove);
    }
    if (dryRun) {
      ctx.logger.info(`dry run: ${remove.length} snapshots would be removed`);
      return remove.length > 0 && config.get('prune') ? pruneLocked(ctx, repo, true) : 0;
    }
    const result = await removeSnapshots(repo, remove);
    for (const f of result.failed) ctx.logger.warn({ object: f.object }, `could not remove ${f.object}: ${f.error}`);
    ctx.logger.info(`${result.removed.length} snapshots removed${result.failed.length ? `, ${result.failed.length} could not be` : ''}`);
    if (result.failed.length > 0) return 3;
    return result.removed.length > 0 && config.get('prune') ? pruneLocked(ctx, repo, false) : 0;
  });
}
