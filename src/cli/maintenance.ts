import type { Config } from '../config/schema.js';
import { ConfigError, KbrackupError, describeError } from '../errors.js';
import { startKubernetes, type KubernetesMode, type Operation } from '../k8s/index.js';
import { parseTagLists, type SnapshotFilter } from '../maintenance/policy.js';
import type { Repository } from '../repo/repository.js';
import { openFromConfig, targetFromConfig, withLock, type CommandContext } from './context.js';

/** The snapshots a command looks at, from --host, --tag and --source. */
export function snapshotFilter(config: Config): SnapshotFilter {
  const source = config.get('source');
  return { hosts: config.get('host'), tags: parseTagLists(config.get('tags')), sources: source ? [source] : [] };
}

/**
 * Run a maintenance command (forget, prune, check): in a cluster it holds the repository Lease and
 * records Events like a backup; it holds the exclusive repository lock (restic's model: no backup writes
 * while maintenance decides what is unused) unless `lock` is false. Returns the command's exit code.
 */
export async function runMaintenance(ctx: CommandContext, operation: Extract<Operation, 'forget' | 'prune' | 'check'>, lock: boolean, task: (repo: Repository) => Promise<number>): Promise<number> {
  const { config, logger } = ctx;
  const started = Date.now();
  const k8s = await startKubernetes({ mode: config.get('kubernetes') as KubernetesMode, repo: config.get('repo'), operation, signal: ctx.signal }, logger);
  let exitCode = 1;
  let error: string | undefined;
  try {
    const target = await targetFromConfig(ctx);
    try {
      const repo = await openFromConfig(ctx, target);
      exitCode = lock ? await withLock(ctx, repo, true, operation, () => task(repo)) : await task(repo);
      return exitCode;
    } finally {
      await target.close();
    }
  } catch (err) {
    const reason: unknown = ctx.signal.aborted ? ctx.signal.reason : err;
    exitCode = reason instanceof KbrackupError ? reason.exitCode : 1;
    error = describeError(reason);
    throw err;
  } finally {
    await k8s.finish({ exitCode, durationSeconds: (Date.now() - started) / 1000, error });
  }
}

/** The snapshots named by ids or unique id prefixes (forget ID..., diff A B); `latest` is the last of `all` (oldest first). */
export function pickSnapshots<T extends { id: string }>(all: readonly T[], refs: readonly string[]): T[] {
  return refs.map((ref) => {
    if (ref === 'latest') {
      const latest = all.at(-1);
      if (!latest) throw new ConfigError('the repository has no snapshots yet');
      return latest;
    }
    if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new ConfigError(`"${ref}" is not a snapshot id; use an id (or unique prefix) from \`kbrackup snapshots\``);
    const matches = all.filter((s) => s.id.startsWith(ref));
    if (matches.length === 0) throw new ConfigError(`no snapshot ${ref} in the repository; \`kbrackup snapshots\` lists them`);
    if (matches.length > 1) throw new ConfigError(`snapshot id prefix ${ref} is ambiguous (${matches.length} snapshots); give more characters`);
    return matches[0]!;
  });
}
