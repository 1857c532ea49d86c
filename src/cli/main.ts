import type { Logger } from 'pino';
import { describeOptions, loadConfig } from '../config/load.js';
import type { schema } from '../config/schema.js';
import { CancelledError, ExitCode, KbrackupError, describeError, signalExitCode } from '../errors.js';
import { createLogger } from '../observe/log.js';
import { mmapLargeAllocations } from '../platform/index.js';
import { memoryLimit } from '../util/memory-limit.js';
import type { CommandContext } from './context.js';
import { PROGRAM_VERSION } from './version.js';

type Key = keyof typeof schema;
const COMMON: Key[] = ['repo', 'credentials', 'key', 'passphraseFile', 'tempDir', 'json', 'logLevel'];
const S3: Key[] = ['s3Endpoint', 's3Region', 's3ForcePathStyle', 's3StorageClass', 's3Sse', 's3SseKmsKeyId'];
const SFTP: Key[] = ['sftpKey', 'sftpKeyPassphraseFile', 'sftpKnownHosts', 'sftpHostFingerprint'];
const KEEP: Key[] = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly', 'keepWithin', 'keepWithinHourly', 'keepWithinDaily', 'keepWithinWeekly', 'keepWithinMonthly', 'keepWithinYearly', 'keepTags'];
const PRUNE: Key[] = ['grace', 'maxUnused', 'noRepack'];
/** What every maintenance command understands: storage retries, lock wait, and the cluster's Lease and Events. */
const MAINTENANCE: Key[] = ['retries', 'retryLock', 'kubernetes'];

interface Command {
  run: (ctx: CommandContext) => Promise<number>;
  usage: string;
  options: Key[];
}

// Each command loads its modules only when run: `version` or `help` need no OpenPGP or cloud SDK.
const COMMANDS: Record<string, Command> = {
  keygen: { run: async (ctx) => (await import('./commands/keygen.js')).keygen(ctx), usage: 'keygen --out DIR/owner [--passphrase-file F]', options: ['out', 'passphraseFile'] },
  init: { run: async (ctx) => (await import('./commands/init.js')).init(ctx), usage: 'init --repo REPO (--key owner.key.asc [--recipient other.pub.asc...] --credentials-out backup.cred | --passphrase-file F)', options: ['repo', 'key', 'recipient', 'credentialsOut', 'passphraseFile', 'chunker', 'chunkSize', 'packSize', 'smallFile', ...S3, ...SFTP] },
  trust: { run: async (ctx) => (await import('./commands/trust.js')).trust(ctx), usage: 'trust --repo REPO --key owner.key.asc [--passphrase-file F]', options: ['repo', 'key', 'passphraseFile', 'retries', ...S3, ...SFTP] },
  backup: { run: async (ctx) => (await import('./commands/backup.js')).backup(ctx), usage: 'backup --repo REPO --credentials backup.cred [--json] PATH', options: [...COMMON, 'source', 'hostname', 'tags', 'exclude', 'tempLimit', 'workers', 'uploads', 'partialExitCode', 'force', 'retries', 'retryLock', 'chunkThread', 'uploadThread', 'kubernetes', 'pushgateway', ...S3, ...SFTP] },
  snapshots: { run: async (ctx) => (await import('./commands/snapshots.js')).snapshots(ctx), usage: 'snapshots --repo REPO (--credentials F | --key F) [--source S] [--host H] [--tag T] [--json]', options: [...COMMON, 'source', 'host', 'tags', ...S3, ...SFTP] },
  ls: { run: async (ctx) => (await import('./commands/ls.js')).ls(ctx), usage: 'ls --repo REPO (--credentials F | --key F) SNAPSHOT|latest [PATH]', options: [...COMMON, 'source', ...S3, ...SFTP] },
  repair: { run: async (ctx) => (await import('./commands/repair.js')).repair(ctx), usage: 'repair index --repo REPO --credentials F', options: [...COMMON, 'retryLock', ...S3, ...SFTP] },
  forget: { run: async (ctx) => (await import('./commands/forget.js')).forget(ctx), usage: 'forget --repo REPO --credentials F (--keep-last N | --keep-daily N | --keep-within 1y2m | --keep-tag T ... | ID...) [--group-by source,host] [--dry-run] [--prune]', options: [...COMMON, ...KEEP, 'groupBy', 'source', 'host', 'tags', 'dryRun', 'prune', ...PRUNE, ...MAINTENANCE, ...S3, ...SFTP] },
  prune: { run: async (ctx) => (await import('./commands/prune.js')).prune(ctx), usage: 'prune --repo REPO --credentials F [--grace 24h] [--max-unused 5%] [--no-repack] [--dry-run]', options: [...COMMON, 'dryRun', ...PRUNE, ...MAINTENANCE, ...S3, ...SFTP] },
  check: { run: async (ctx) => (await import('./commands/check.js')).check(ctx), usage: 'check --repo REPO (--credentials F | --key F [--read-data | --read-data-subset 5%|1/7]) [--json]', options: [...COMMON, 'readData', 'readDataSubset', 'noLock', ...MAINTENANCE, ...S3, ...SFTP] },
  stats: { run: async (ctx) => (await import('./commands/stats.js')).stats(ctx), usage: 'stats --repo REPO --credentials F [SNAPSHOT...] [--mode restore-size|raw-data] [--json]', options: [...COMMON, 'statsMode', 'source', 'host', 'tags', 'retries', ...S3, ...SFTP] },
  diff: { run: async (ctx) => (await import('./commands/diff.js')).diff(ctx), usage: 'diff --repo REPO --credentials F SNAPSHOT-A SNAPSHOT-B [--metadata] [--json]', options: [...COMMON, 'metadata', 'retries', ...S3, ...SFTP] },
  unlock: { run: async (ctx) => (await import('./commands/unlock.js')).unlock(ctx), usage: 'unlock --repo REPO --credentials F [--remove-all]', options: [...COMMON, 'removeAll', 'retries', ...S3, ...SFTP] },
  'snapshot-backup': { run: async (ctx) => (await import('./commands/snapshot-backup.js')).snapshotBackup(ctx), usage: 'snapshot-backup --plan FILE (in a pod: snapshot PVCs, back up clones of them, delete the clones)', options: ['snapshotPlan', 'snapshotTimeout', 'partialExitCode', 'json', 'logLevel'] },
  'metrics-prune': { run: async (ctx) => (await import('./commands/metrics-prune.js')).metricsPrune(ctx), usage: 'metrics-prune --pushgateway URL --keep SOURCE=REPOSITORY...', options: ['pushgateway', 'keep', 'json', 'logLevel'] },
  restore: { run: async (ctx) => (await import('./commands/restore.js')).restore(ctx), usage: 'restore --repo REPO --key owner.key.asc [--passphrase-file F] SNAPSHOT|latest --target DIR', options: [...COMMON, 'target', 'include', 'conflict', 'dryRun', 'source', 'retries', 'writeThread', ...S3, ...SFTP] },
};

function help(name?: string): string {
  const command = name ? COMMANDS[name] : undefined;
  if (command) return `usage: kbrackup ${command.usage}\n\noptions (each also from its env var, or a --config JSON file):\n${describeOptions(command.options)}\n`;
  return `${PROGRAM_VERSION}: encrypted, deduplicating, memory-frugal backups\n\nusage: kbrackup COMMAND [options]\n\n${Object.values(COMMANDS)
    .map((c) => `  kbrackup ${c.usage}`)
    .join('\n')}\n\nkbrackup help COMMAND shows a command's options. Exit codes: 0 ok, 1 failed, 3 partial, 10 no repository, 11 locked, 12 wrong key, 130 interrupted (SIGINT), 143 terminated (SIGTERM).\n`;
}

/** Run the CLI; returns the process exit code. Errors become one line on stderr, never a stack trace. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(help(rest[0]));
    return name === undefined ? ExitCode.failed : ExitCode.ok;
  }
  if (name === 'version' || name === '--version') {
    process.stdout.write(`${PROGRAM_VERSION} (node ${process.version})\n`);
    return ExitCode.ok;
  }
  // Before the command allocates: under a pod's memory limit, freed large buffers go back to the kernel
  // instead of staying resident in glibc's heap (docs/ARCHITECTURE.md "Memory does not grow with the data").
  if (memoryLimit() > 0) mmapLargeAllocations();
  const command = COMMANDS[name];
  let logger: Logger | undefined;
  let json = rest.includes('--json');
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(signalExitCode(signal));
    logger?.warn(`${signal} received: stopping; earlier snapshots stay intact`);
    controller.abort(new CancelledError(signal));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    if (!command) throw new KbrackupError(`unknown command "${name}"; commands: ${Object.keys(COMMANDS).join(', ')}`);
    const loaded = loadConfig(rest, process.env);
    if (loaded.help) {
      process.stdout.write(help(name));
      return ExitCode.ok;
    }
    json = loaded.config.get('json');
    logger = createLogger(loaded.config.get('logLevel'));
    const code = await command.run({
      config: loaded.config,
      positionals: loaded.positionals,
      logger,
      signal: controller.signal,
      print: (line) => process.stdout.write(`${line}\n`),
    });
    // Events and metrics have recorded the run as partial by now; only the process exit code changes.
    return code === ExitCode.partial && command.options.includes('partialExitCode') ? loaded.config.get('partialExitCode') : code;
  } catch (caught) {
    const err = controller.signal.aborted && !(caught instanceof KbrackupError && !(caught instanceof CancelledError)) ? controller.signal.reason : caught;
    const known = err instanceof KbrackupError;
    const code = known ? err.exitCode : ExitCode.failed;
    const message = known ? err.message : `unexpected error: ${describeError(err)}`;
    if (json) process.stderr.write(`${JSON.stringify({ message_type: 'exit_error', code, message })}\n`);
    if (!known) logger?.debug({ err }, 'details of the unexpected error');
    if (logger) logger.error(message);
    else process.stderr.write(`kbrackup: ${message}\n`);
    return code;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
