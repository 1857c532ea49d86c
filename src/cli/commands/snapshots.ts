import { matchesFilter } from '../../maintenance/policy.js';
import { openFromConfig, targetFromConfig, type CommandContext } from '../context.js';
import { snapshotFilter } from '../maintenance.js';
import { snapshotHeader, snapshotJson, snapshotRow } from '../snapshot-output.js';

/** `snapshots`: list snapshots (only those of --source, --host, --tag when given), as a table or restic's JSON array. */
export async function snapshots(ctx: CommandContext): Promise<number> {
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx, target);
    const filter = snapshotFilter(ctx.config);
    const list = (await repo.listSnapshots(ctx.config.get('source') || undefined)).filter((s) => matchesFilter(s, filter));
    if (ctx.config.get('json')) {
      ctx.print(JSON.stringify(list.map(snapshotJson)));
      return 0;
    }
    ctx.print(snapshotHeader());
    for (const s of list) ctx.print(snapshotRow(s));
    ctx.print(`${list.length} snapshot${list.length === 1 ? '' : 's'}`);
    return 0;
  } finally {
    await target.close();
  }
}
