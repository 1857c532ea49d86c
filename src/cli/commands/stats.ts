import { formatSize } from '../../util/sizes.js';
import { matchesFilter } from '../../maintenance/policy.js';
import { rawData, restoreSize } from '../../maintenance/stats.js';
import { openFromConfig, targetFromConfig, type CommandContext } from '../context.js';
import { pickSnapshots, snapshotFilter } from '../maintenance.js';

/** `stats [SNAPSHOT...]`: restic's restore-size (default) or raw-data figures of the snapshots (all, or those given / filtered). */
export async function stats(ctx: CommandContext): Promise<number> {
  const { config } = ctx;
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx, target);
    const all = await repo.listSnapshots();
    const filter = snapshotFilter(config);
    const chosen = ctx.positionals.length ? pickSnapshots(all, ctx.positionals) : all.filter((s) => matchesFilter(s, filter));
    const mode = config.get('statsMode');
    const tempDir = config.get('tempDir');
    const result = mode === 'raw-data' ? await rawData(repo, chosen, tempDir, ctx.signal) : await restoreSize(repo, chosen, tempDir, ctx.signal);
    if (config.get('json')) {
      ctx.print(JSON.stringify(result));
      return 0;
    }
    ctx.print(`Stats in ${mode} mode:`);
    ctx.print(`     Snapshots processed:  ${result.snapshots_count}`);
    if ('total_file_count' in result) {
      ctx.print(`        Total File Count:  ${result.total_file_count}`);
      ctx.print(`              Total Size:  ${formatSize(result.total_size)}`);
    } else {
      ctx.print(`         Total Blob Count:  ${result.total_blob_count} (${result.total_tree_count} trees)`);
      ctx.print(` Total Uncompressed Size:  ${formatSize(result.total_uncompressed_size)}`);
      ctx.print(`              Total Size:  ${formatSize(result.total_size)}`);
      if (result.compression_ratio) ctx.print(`    Compression Ratio:  ${result.compression_ratio.toFixed(2)}x (${result.compression_space_saving.toFixed(2)}% saved)`);
    }
    return 0;
  } finally {
    await target.close();
  }
}
