import { resolve } from 'node:path';
import { formatSize } from '../../util/sizes.js';
import { ConfigError } from '../../errors.js';
import { runRestore } from '../../restore/restore.js';
import { writeThreadMode } from '../../restore/write-thread.js';
import type { ThreadSetting } from '../../util/memory-limit.js';
import { openFromConfig, required, targetFromConfig, type CommandContext } from '../context.js';

/** `restore SNAPSHOT --target DIR`: write a snapshot's files back, verified against their SHA-256. */
export async function restore(ctx: CommandContext): Promise<number> {
  const { config } = ctx;
  if (ctx.positionals.length !== 1) throw new ConfigError('restore needs one SNAPSHOT id (or latest)');
  const targetDir = resolve(required(config, 'target', 'restore'));
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx, target);
    const snap = await repo.findSnapshot(ctx.positionals[0] as string, config.get('source') || undefined);
    const summary = await runRestore(repo, snap, {
      destination: targetDir,
      includes: config.get('include'),
      conflict: config.get('conflict') as 'skip' | 'overwrite' | 'update' | 'abort',
      dryRun: config.get('dryRun'),
      tempDir: config.get('tempDir'),
      signal: ctx.signal,
      writeThread: writeThreadMode(config.get('writeThread') as ThreadSetting),
    }, (message) => ctx.logger.warn(message));
    if (config.get('json')) {
      ctx.print(JSON.stringify({ message_type: 'summary', dry_run: config.get('dryRun'), snapshot_id: snap.id, ...summary }));
    } else {
      ctx.print(
        `${config.get('dryRun') ? 'would restore' : 'restored'} snapshot ${snap.id.slice(0, 8)} to ${targetDir}: ${summary.files_restored} files (${formatSize(summary.bytes_restored)}), ${summary.dirs_restored} folders, ${summary.symlinks_restored} symlinks${summary.hardlinks_restored ? `, ${summary.hardlinks_restored} hard links` : ''}${summary.files_skipped ? `, ${summary.files_skipped} existing files skipped` : ''} in ${summary.total_duration.toFixed(1)}s`,
      );
    }
    return 0;
  } finally {
    await target.close();
  }
}
