import { ConfigError, KbrackupError } from '../../errors.js';
import type { Repository } from '../../repo/repository.js';
import type { TreeEntry } from '../../repo/tree/entry.js';
import { childPath, displayName, parseDisplayed, type ByteString } from '../../repo/tree/names.js';
import { openFromConfig, targetFromConfig, type CommandContext } from '../context.js';

function modeString(type: string, mode: number): string {
  const chars = 'rwxrwxrwx';
  let out = type === 'dir' ? 'd' : type === 'symlink' ? 'l' : '-';
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? chars[i] : '-';
  return out;
}

/** The tree id of the folder at `path` in a snapshot, reading only the folders on the way. */
async function folderTree(repo: Repository, root: string, path: ByteString): Promise<{ tree: string; entry?: TreeEntry }> {
  let tree = root;
  if (path === '') return { tree };
  const parts = path.split('/');
  for (let i = 0; i < parts.length; i++) {
    let found: TreeEntry | undefined;
    for await (const e of repo.treeEntries(tree)) {
      if (e.name === parts[i]) {
        found = e;
        break;
      }
    }
    if (!found) throw new KbrackupError(`no ${JSON.stringify(displayName(path))} in this snapshot`);
    if (found.type !== 'dir') {
      if (i === parts.length - 1) return { tree, entry: found };
      throw new KbrackupError(`${JSON.stringify(displayName(parts.slice(0, i + 1).join('/')))} is not a folder in this snapshot`);
    }
    tree = found.tree;
  }
  return { tree };
}

/** `ls SNAPSHOT [PATH]`: list a snapshot (or one folder of it, recursively), reading only the folders needed. */
export async function ls(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length < 1 || ctx.positionals.length > 2) throw new ConfigError('ls needs one SNAPSHOT id (or latest) and optionally a PATH inside it');
  const target = await targetFromConfig(ctx);
  try {
    const repo = await openFromConfig(ctx, target);
    const snap = await repo.findSnapshot(ctx.positionals[0]!, ctx.config.get('source') || undefined);
    const json = ctx.config.get('json');
    const start = parseDisplayed((ctx.positionals[1] ?? '').replace(/^\/+|\/+$/g, ''));
    const print = (path: ByteString, e: TreeEntry) => {
      const mtime = new Date(Number(BigInt(e.mtime) / 1000000n)).toISOString();
      const shown = `/${displayName(path)}`;
      if (json) {
        const raw = Buffer.from(`/${path}`, 'latin1');
        const exact = raw.toString('utf8') === shown ? {} : { path_bytes: raw.toString('base64') };
        ctx.print(JSON.stringify({ name: displayName(e.name), type: e.type, path: shown, ...exact, mode: e.mode, uid: e.uid, gid: e.gid, mtime, ...(e.type === 'file' ? { size: e.size } : {}), ...(e.type === 'symlink' ? { target: displayName(e.linkTarget) } : {}) }));
      } else {
        const size = e.type === 'file' ? e.size : 0;
        ctx.print(`${modeString(e.type, e.mode)} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${String(size).padStart(12)} ${mtime.slice(0, 19).replace('T', ' ')} ${shown}${e.type === 'symlink' ? ` -> ${displayName(e.linkTarget)}` : ''}`);
      }
    };
    const found = await folderTree(repo, snap.tree, start);
    if (found.entry) {
      print(start, found.entry);
      return 0;
    }
    const visit = async (tree: string, path: ByteString): Promise<void> => {
      for await (const e of repo.treeEntries(tree)) {
        const p = childPath(path, e.name);
        print(p, e);
        if (e.type === 'dir') await visit(e.tree, p);
      }
    };
    await visit(found.tree, start);
    return 0;
  } finally {
    await target.close();
  }
}
