import { displayName, fromText } from '../../repo/tree/names.js';
import { openFromConfig, targetFromConfig, type CommandContext } from '../context.js';

/** Text from a snapshot as the terminal may show it: control characters escaped, as ls shows names (whoever holds backup credentials can write snapshots). */
function shown(text: string): string {
  return displayName(fromText(text));
}

/** `snapshots`: list snapshots, as a table or restic's JSON array. */
export async function snapshots(ctx: CommandContext): Promise<number> {
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx, target);
    const list = await repo.listSnapshots(ctx.config.get('source') || undefined);
    if (ctx.config.get('json')) {
      ctx.print(
        JSON.stringify(
          list.map((s) => ({
            id: s.id,
            short_id: s.id.slice(0, 8),
            time: s.time,
            source: s.source,
            paths: s.paths,
            hostname: s.hostname,
            username: s.username,
            tags: s.tags,
            ...(s.parent ? { parent: s.parent } : {}),
            program_version: s.program_version,
            summary: s.summary,
          })),
        ),
      );
      return 0;
    }
    ctx.print(`${'ID'.padEnd(10)}${'Time'.padEnd(22)}${'Host'.padEnd(20)}${'Source'.padEnd(20)}${'Files'.padStart(9)}  Paths`);
    for (const s of list) {
      ctx.print(`${s.id.slice(0, 8).padEnd(10)}${s.time.slice(0, 19).replace('T', ' ').padEnd(22)}${shown(s.hostname).slice(0, 19).padEnd(20)}${s.source.slice(0, 19).padEnd(20)}${String(s.summary.total_files_processed).padStart(9)}  ${s.paths.map(shown).join(', ')}`);
    }
    ctx.print(`${list.length} snapshot${list.length === 1 ? '' : 's'}`);
    return 0;
  } finally {
    await target.close();
  }
}
