import { ConfigError } from '../../errors.js';
import { getSealed } from '../../repo/objects.js';
import { findSnapshot } from '../../repo/snapshot.js';
import { readTree } from '../../repo/tree-reader.js';
import { openFromConfig, targetFromConfig, type CommandContext } from '../context.js';

function modeString(type: string, mode: number): string {
  const chars = 'rwxrwxrwx';
  let out = type === 'dir' ? 'd' : type === 'symlink' ? 'l' : '-';
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? chars[i] : '-';
  return out;
}

/** `ls SNAPSHOT`: list the files of a snapshot, streamed from its tree. */
export async function ls(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length !== 1) throw new ConfigError('ls needs one SNAPSHOT id (or latest)');
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx.config, target);
    const snap = await findSnapshot(repo.target, repo.unsealing, ctx.positionals[0] as string, ctx.config.get('source') || undefined);
    const json = ctx.config.get('json');
    for await (const line of readTree(await getSealed(repo.target, snap.tree, repo.unsealing), snap.tree)) {
      if (line.kind !== 'entry') continue;
      const e = line.entry;
      const mtime = new Date(Number(BigInt(e.mtime) / 1000000n)).toISOString();
      if (json) {
        ctx.print(JSON.stringify({ name: e.path.split('/').at(-1), type: e.type, path: `/${e.path}`, mode: e.mode, uid: e.uid, gid: e.gid, mtime, ...(e.type === 'file' ? { size: e.size } : {}), ...(e.type === 'symlink' ? { target: e.target } : {}) }));
      } else {
        const size = e.type === 'file' ? e.size : 0;
        ctx.print(`${modeString(e.type, e.mode)} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${String(size).padStart(12)} ${mtime.slice(0, 19).replace('T', ' ')} /${e.path}${e.type === 'symlink' ? ` -> ${e.target}` : ''}`);
      }
    }
    return 0;
  } finally {
    await target.close();
  }
}
