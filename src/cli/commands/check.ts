import { ConfigError } from '../../errors.js';
import { check as runCheck, describeProblem, parseReadDataSubset, type ReadDataSelection } from '../../maintenance/check.js';
import { formatSize } from '../../util/sizes.js';
import type { CommandContext } from '../context.js';
import { runMaintenance } from '../maintenance.js';

/**
 * `check`: the structure with the backup credentials; `--read-data` / `--read-data-subset N%|n/t` with a
 * private key also decrypt and verify contents. Every problem is printed with its object and the
 * snapshots it affects; exit 1 if there is any.
 */
export async function check(ctx: CommandContext): Promise<number> {
  const { config } = ctx;
  if (ctx.positionals.length > 0) throw new ConfigError('check takes no arguments');
  const subset = config.get('readDataSubset');
  let readData: ReadDataSelection | undefined = config.get('readData') ? 'all' : undefined;
  if (subset) {
    readData = parseReadDataSubset(subset);
    if (!readData) throw new ConfigError(`--read-data-subset "${subset}" is neither a percentage (5%) nor a part n/t (1/7)`);
  }
  const json = config.get('json');
  return runMaintenance(ctx, 'check', !config.get('noLock'), async (repo) => {
    const result = await runCheck(repo, { tempDir: config.get('tempDir'), readData, signal: ctx.signal, log: (m) => ctx.logger.info(m) });
    const errors = result.problems.length + result.more_problems;
    if (json) {
      for (const p of result.problems) ctx.print(JSON.stringify({ message_type: 'error', ...p }));
      const { problems: _listed, ...summary } = result;
      ctx.print(JSON.stringify({ message_type: 'summary', num_errors: errors, ...summary }));
    } else {
      for (const p of result.problems) ctx.print(`error: ${describeProblem(p)}`);
      if (result.more_problems) ctx.print(`… and ${result.more_problems} more problems`);
      const g = result.garbage;
      ctx.print(`${result.snapshots} snapshots, ${result.trees} trees, ${result.blobs} blobs, ${result.objects} content objects, ${result.index_objects} index objects checked`);
      if (readData) ctx.print(`read and verified ${result.read_data.blobs} blobs (${formatSize(result.read_data.bytes)}) in ${result.read_data.objects} content objects`);
      if (g.unindexed_objects || g.unused_trees || g.duplicate_copies) {
        ctx.print(`garbage (not an error; prune removes it after its grace period): ${g.unindexed_objects} objects no index lists (${formatSize(g.unindexed_bytes)}), ${g.unused_trees} unused trees, ${g.duplicate_copies} duplicate copies`);
      }
      ctx.print(errors ? `${errors} problem${errors === 1 ? '' : 's'} found` : 'no problems found');
    }
    return errors > 0 ? 1 : 0;
  });
}
