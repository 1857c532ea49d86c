import { formatSize } from '../../util/sizes.js';
import { ConfigError } from '../../errors.js';
import { diffTrees } from '../../maintenance/diff.js';
import type { StoredSnapshot } from '../../repo/snapshot.js';
import { displayName } from '../../repo/tree/names.js';
import { openFromConfig, targetFromConfig, type CommandContext } from '../context.js';
import { pickSnapshots } from '../maintenance.js';

/** Counts of one side of a diff, as restic's statistics name them. */
interface Side {
  files: number;
  dirs: number;
  others: number;
  bytes: number;
}

/** `diff A B`: what changed from snapshot A to B (+ added, - removed, M content, T type; U metadata with --metadata), folders with equal tree ids skipped. */
export async function diff(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length !== 2) throw new ConfigError('diff needs two snapshots: diff A B (ids, unique prefixes or latest)');
  const json = ctx.config.get('json');
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx, target);
    const [a, b] = pickSnapshots(await repo.listSnapshots(), ctx.positionals) as [StoredSnapshot, StoredSnapshot];
    const added: Side = { files: 0, dirs: 0, others: 0, bytes: 0 };
    const removed: Side = { files: 0, dirs: 0, others: 0, bytes: 0 };
    let changed = 0;
    if (!json) ctx.print(`comparing snapshot ${a.id.slice(0, 8)} to ${b.id.slice(0, 8)}:`);
    const metadata = ctx.config.get('metadata');
    for await (const c of diffTrees(repo, a.tree, b.tree)) {
      // restic lists metadata-only changes with --metadata only: a file rewritten with the same bytes is no news.
      if (c.modifier === 'U' && !metadata) continue;
      const shown = `/${displayName(c.path)}${c.entry.type === 'dir' ? '/' : ''}`;
      if (json) ctx.print(JSON.stringify({ message_type: 'change', path: shown, modifier: c.modifier }));
      else ctx.print(`${c.modifier}    ${shown}`);
      if (c.modifier === 'M') changed++;
      const side = c.modifier === '+' ? added : c.modifier === '-' ? removed : undefined;
      if (!side) continue;
      if (c.entry.type === 'file') {
        side.files++;
        side.bytes += c.entry.size;
      } else if (c.entry.type === 'dir') side.dirs++;
      else side.others++;
    }
    if (json) {
      ctx.print(JSON.stringify({ message_type: 'statistics', source_snapshot: a.id, target_snapshot: b.id, changed_files: changed, added, removed }));
    } else {
      ctx.print('');
      ctx.print(`Files:       ${added.files} new, ${removed.files} removed, ${changed} changed`);
      ctx.print(`Dirs:        ${added.dirs} new, ${removed.dirs} removed`);
      ctx.print(`Others:      ${added.others} new, ${removed.others} removed`);
      ctx.print(`Added:   ${formatSize(added.bytes)}`);
      ctx.print(`Removed: ${formatSize(removed.bytes)}`);
    }
    return 0;
  } finally {
    await target.close();
  }
}
