import { ConfigError } from '../../errors.js';
import { removeLocks } from '../../repo/locks.js';
import { openFromConfig, targetFromConfig, type CommandContext } from '../context.js';

/** `unlock`: remove stale locks (whose process is gone or whose time ran out); `--remove-all` removes every lock. */
export async function unlock(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length > 0) throw new ConfigError('unlock takes no arguments');
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx, target);
    const removed = await removeLocks(repo, ctx.config.get('removeAll'));
    if (ctx.config.get('json')) ctx.print(JSON.stringify({ message_type: 'summary', removed }));
    else ctx.print(removed.length ? `removed ${removed.length} lock${removed.length === 1 ? '' : 's'}: ${removed.join(', ')}` : 'no stale locks');
    return 0;
  } finally {
    await target.close();
  }
}
