import { ConfigError } from '../../errors.js';
import { pruneStaleGroups } from '../../observe/metrics-prune.js';
import type { CommandContext } from '../context.js';

/** Parse `SOURCE=REPOSITORY` entries; the repository URL may itself contain "=". */
function keepList(entries: string[]): Map<string, string> {
  const keep = new Map<string, string>();
  for (const entry of entries) {
    const at = entry.indexOf('=');
    if (at <= 0) throw new ConfigError(`--keep ${entry}: expected SOURCE=REPOSITORY`);
    keep.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return keep;
}

/** `metrics-prune --keep SOURCE=REPO...`: delete the Pushgateway groups of this namespace that no backup set pushes to any more. */
export async function metricsPrune(ctx: CommandContext): Promise<number> {
  const url = ctx.config.get('pushgateway');
  if (!url) throw new ConfigError('metrics-prune: --pushgateway / KBRACKUP_PUSHGATEWAY_URL is required');
  const namespace = process.env.POD_NAMESPACE?.trim();
  if (!namespace) throw new ConfigError('metrics-prune: POD_NAMESPACE must name the namespace whose groups are pruned');
  const result = await pruneStaleGroups(url, namespace, keepList(ctx.config.get('keep')), ctx.logger);
  if (ctx.config.get('json')) ctx.print(JSON.stringify({ message_type: 'summary', ...result }));
  else ctx.print(`deleted ${result.deleted.length} stale Pushgateway group(s), kept ${result.kept}`);
  return 0;
}
