import { ConfigError } from '../../errors.js';
import { repairIndex } from '../../repo/repair-index.js';
import { openFromConfig, targetFromConfig, type CommandContext } from '../context.js';

/** `repair index`: rebuild the index objects from the snapshots. */
export async function repair(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length !== 1 || ctx.positionals[0] !== 'index') throw new ConfigError('usage: kbrackup repair index --repo REPO --credentials F');
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx.config, target);
    const result = await repairIndex(repo, ctx.config.get('tempDir'));
    if (ctx.config.get('json')) ctx.print(JSON.stringify({ message_type: 'summary', ...result }));
    else ctx.print(`index rebuilt from ${result.snapshots} snapshots: ${result.chunks} chunks; ${result.removed} old index objects removed`);
    return 0;
  } finally {
    await target.close();
  }
}
