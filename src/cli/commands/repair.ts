import { ConfigError } from '../../errors.js';
import { repairIndex } from '../../repo/repair-index.js';
import { openFromConfig, targetFromConfig, withLock, type CommandContext } from '../context.js';

/** `repair index`: rebuild the index objects from the snapshots. */
export async function repair(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length !== 1 || ctx.positionals[0] !== 'index') throw new ConfigError('usage: kbrackup repair index --repo REPO --credentials F');
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx, target);
    const result = await withLock(ctx, repo, true, 'repair index', () => repairIndex(repo, ctx.config.get('tempDir')));
    for (const d of result.damaged) ctx.logger.warn({ object: d.object }, `skipped a damaged content object: ${d.error}`);
    if (ctx.config.get('json')) ctx.print(JSON.stringify({ message_type: 'summary', ...result }));
    else ctx.print(`index rebuilt from ${result.objects} content objects: ${result.blobs} blobs; ${result.removed} old index objects removed${result.damaged.length ? `; ${result.damaged.length} damaged objects skipped` : ''}`);
    return result.damaged.length > 0 ? 3 : 0;
  } finally {
    await target.close();
  }
}
