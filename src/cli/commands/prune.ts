import type { Config } from '../../config/schema.js';
import { formatSize, parseSize } from '../../util/sizes.js';
import { ConfigError } from '../../errors.js';
import { parseMaxUnused, prune as runPrune, type PruneOptions, type PruneStats } from '../../maintenance/prune.js';
import type { Repository } from '../../repo/repository.js';
import type { CommandContext } from '../context.js';
import { runMaintenance } from '../maintenance.js';

/** Prune's options from the configuration (also for `forget --prune`). */
export function pruneOptions(ctx: CommandContext, dryRun: boolean): PruneOptions {
  const config: Config = ctx.config;
  const maxUnused = parseMaxUnused(config.get('maxUnused'), parseSize);
  if (!maxUnused) throw new ConfigError(`--max-unused "${config.get('maxUnused')}" is not a percentage below 100% (5%), a size (1GiB) or unlimited`);
  return {
    tempDir: config.get('tempDir'),
    graceMs: config.get('grace'),
    maxUnused,
    repack: !config.get('noRepack'),
    dryRun,
    signal: ctx.signal,
    log: (message) => ctx.logger.info(message),
  };
}

/** Print prune's statistics (one JSON object with --json); returns the exit code (3 when some deletes failed). */
export function reportPrune(ctx: CommandContext, stats: PruneStats): number {
  if (ctx.config.get('json')) {
    ctx.print(JSON.stringify({ message_type: 'prune_summary', ...stats }));
  } else {
    const o = stats.objects;
    const b = stats.bytes;
    const would = stats.dry_run ? 'would ' : '';
    ctx.print(`${stats.snapshots} snapshots use ${stats.used_trees} trees and ${stats.used_blobs} blobs; ${o.total} content objects (${formatSize(b.total)}) in the repository`);
    ctx.print(`used:        ${o.used} objects, ${o.partly_used} partly used; ${formatSize(b.used)} of bundles in use`);
    ctx.print(`unused:      ${o.unused} objects, ${o.unindexed} not in the index, ${formatSize(b.unused)} of dead bundles in partly used packs`);
    ctx.print(`young:       ${o.young} objects and ${stats.trees.young} trees stored within the grace period (kept, ${formatSize(b.young_unused)} of it unused)`);
    ctx.print(`${would}repack:  ${o.repack} packs (${formatSize(b.repack)}), reclaiming ${formatSize(b.repack_reclaimed)}`);
    ctx.print(`${would}delete:  ${o.delete} objects (${formatSize(b.delete)}) and ${stats.trees.delete} of ${stats.trees.unused} unused trees`);
    ctx.print(`remaining unused: ${formatSize(b.remaining_unused)}${b.used > 0 ? ` (${((100 * b.remaining_unused) / b.used).toFixed(2)}% of used)` : ''}`);
    ctx.print(`index:       ${stats.index.objects_before} objects ${stats.dry_run ? 'now' : `→ ${stats.index.objects_after}`}, ${stats.index.entries} entries${stats.index.dropped ? `, ${stats.index.dropped} stale or duplicate entries dropped` : ''}`);
    if (stats.packs_written) ctx.print(`wrote ${stats.packs_written} new packs (${formatSize(stats.bytes_written)})`);
  }
  if (stats.failed_deletes > 0) {
    ctx.logger.warn(`${stats.failed_deletes} objects could not be deleted; they are garbage the next prune removes (check the storage's delete permission)`);
    return 3;
  }
  return 0;
}

/** Prune inside the lock `forget --prune` already holds. */
export async function pruneLocked(ctx: CommandContext, repo: Repository, dryRun: boolean): Promise<number> {
  return reportPrune(ctx, await runPrune(repo, pruneOptions(ctx, dryRun)));
}

/** `prune`: delete what no snapshot uses (after the grace period), repack mostly unused packs, compact the index. */
export async function prune(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length > 0) throw new ConfigError('prune takes no arguments (forget removes snapshots; prune then removes the data only they used)');
  const options = pruneOptions(ctx, ctx.config.get('dryRun'));
  return runMaintenance(ctx, 'prune', true, async (repo) => reportPrune(ctx, await runPrune(repo, options)));
}
