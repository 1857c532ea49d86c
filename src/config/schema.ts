import convict from 'convict';
import { tmpdir } from 'node:os';
import { parseDuration, parseSize } from '../util/sizes.js';

convict.addFormat({
  name: 'size',
  validate(value: unknown) {
    if (parseSize(value as string) === undefined) throw new Error('must be a size such as 4MiB, 512KiB or a number of bytes');
  },
  coerce: (value: string) => parseSize(value) ?? value,
});

convict.addFormat({
  name: 'duration',
  validate(value: unknown) {
    if (parseDuration(value as string) === undefined) throw new Error('must be a duration such as 30s, 5m, 1h30m or a number of seconds');
  },
  coerce: (value: string) => parseDuration(value) ?? value,
});

convict.addFormat({
  name: 'optional-string',
  validate(value: unknown) {
    if (value !== '' && typeof value !== 'string') throw new Error('must be a string');
  },
});

convict.addFormat({
  name: 'partial-exit-code',
  validate(value: unknown) {
    if (value !== 0 && value !== 3) throw new Error('must be 3 (like restic) or 0 (count the run as a success)');
  },
  coerce: (value: string) => Number(value),
});

convict.addFormat({
  name: 'keep-count',
  validate(value: unknown) {
    if (value !== -1 && !(Number.isSafeInteger(value) && (value as number) >= 0)) throw new Error('must be a number of snapshots or "unlimited"');
  },
  coerce: (value: string) => (value === 'unlimited' ? -1 : /^\d+$/.test(value) ? Number(value) : value),
});

/** A keep-count option of `forget` (restic's --keep-* flags; `unlimited` keeps every one of its kind). */
function keep(what: string, name: string) {
  return { doc: `forget: keep the ${what} (a number, or unlimited)`, format: 'keep-count', default: 0, env: `KBRACKUP_KEEP_${name.toUpperCase()}`, arg: `keep-${name}` };
}

/** A keep-within option of `forget`: a restic duration such as 1y5m7d2h, counted back from the newest snapshot. */
function within(what: string, name: string) {
  return { doc: `forget: keep ${what} within this duration of the newest snapshot (e.g. 1y5m7d2h)`, format: 'optional-string', default: '', env: `KBRACKUP_KEEP_${name.toUpperCase().replace(/-/g, '_')}`, arg: `keep-${name}` };
}

/**
 * Every option of every command. Each has a flag (`arg`) and an environment variable (`env`), and may
 * come from a JSON config file given with --config. Precedence: defaults < file < env < flags.
 */
export const schema = {
  repo: { doc: 'Repository: a local path, file:///path, s3://BUCKET/PREFIX or sftp://USER@HOST:PORT/PATH', format: 'optional-string', default: '', env: 'KBRACKUP_REPO', arg: 'repo' },
  credentials: { doc: 'Backup credentials file written by `init` (repository key + recipients; cannot decrypt contents)', format: 'optional-string', default: '', env: 'KBRACKUP_CREDENTIALS', arg: 'credentials' },
  key: { doc: 'OpenPGP private key (armored) of a recipient, for restore', format: 'optional-string', default: '', env: 'KBRACKUP_KEY', arg: 'key' },
  passphraseFile: { doc: 'File holding the passphrase (of the private key, or of a passphrase-only repository)', format: 'optional-string', default: '', env: 'KBRACKUP_PASSPHRASE_FILE', arg: 'passphrase-file' },
  tempDir: { doc: 'Folder for temp files (the emptyDir in a pod)', format: 'optional-string', default: tmpdir(), env: 'KBRACKUP_TEMP_DIR', arg: 'temp-dir' },
  tempLimit: { doc: 'Most bytes of temp files at once (0 = 4 x pack size + chunks in flight)', format: 'size', default: 0, env: 'KBRACKUP_TEMP_LIMIT', arg: 'temp-limit' },
  json: { doc: 'Print JSON lines (restic-compatible message_type status/summary) on stdout', format: Boolean, default: false, env: 'KBRACKUP_JSON', arg: 'json' },
  logLevel: { doc: 'Log level', format: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info', env: 'KBRACKUP_LOG_LEVEL', arg: 'log-level' },
  source: { doc: 'Name of the backup source (groups snapshots); defaults to the folder name of PATH', format: 'optional-string', default: '', env: 'KBRACKUP_SOURCE', arg: 'source' },
  hostname: { doc: 'Hostname recorded in snapshots', format: 'optional-string', default: '', env: 'KBRACKUP_HOSTNAME', arg: 'hostname' },
  tags: { doc: 'backup: tags recorded in the snapshot (comma-separated); snapshots, forget, stats: only snapshots with these tags (--tag a,b needs both, two --tag flags either)', format: Array, default: [] as string[], env: 'KBRACKUP_TAGS', arg: 'tag' },
  host: { doc: 'snapshots, forget, stats: only snapshots made on this host (hostname); repeat for several', format: Array, default: [] as string[], env: 'KBRACKUP_HOST', arg: 'host' },
  exclude: { doc: 'Exclude paths matching these glob patterns (comma-separated in env)', format: Array, default: [] as string[], env: 'KBRACKUP_EXCLUDE', arg: 'exclude' },
  include: { doc: 'Restore only these paths (and what is below them)', format: Array, default: [] as string[], env: 'KBRACKUP_INCLUDE', arg: 'include' },
  workers: { doc: 'Chunks encrypted in parallel', format: 'nat', default: 2, env: 'KBRACKUP_WORKERS', arg: 'workers' },
  uploads: { doc: 'Objects uploaded in parallel', format: 'nat', default: 2, env: 'KBRACKUP_UPLOADS', arg: 'uploads' },
  chunkThread: { doc: 'Cut and hash large files on a second thread (~9 MiB): auto = unless the memory limit is below 96 MiB', format: ['auto', 'on', 'off'], default: 'auto', env: 'KBRACKUP_CHUNK_THREAD', arg: 'chunk-thread' },
  writeThread: { doc: 'restore: write small files on a second thread (~9 MiB) while the main thread fetches and decrypts: auto = unless the memory limit is below 96 MiB', format: ['auto', 'on', 'off'], default: 'auto', env: 'KBRACKUP_WRITE_THREAD', arg: 'write-thread' },
  uploadThread: { doc: 'Upload to S3 or SFTP from a second thread with its own connection (1 GiB to sshd on two cores: ~9 s instead of ~10.5 s, for ~50 MiB more memory): auto = unless the memory limit is below 256 MiB', format: ['auto', 'on', 'off'], default: 'auto', env: 'KBRACKUP_UPLOAD_THREAD', arg: 'upload-thread' },
  partialExitCode: { doc: 'Exit code of a backup whose snapshot was written but some files could not be read: 3 (like restic) or 0 (a Kubernetes Job then succeeds; Events and metrics still say partial)', format: 'partial-exit-code', default: 3, env: 'KBRACKUP_PARTIAL_EXIT_CODE', arg: 'partial-exit-code' },
  force: { doc: 'Re-read every file even when unchanged since the previous snapshot', format: Boolean, default: false, env: 'KBRACKUP_FORCE', arg: 'force' },
  target: { doc: 'Folder to restore into', format: 'optional-string', default: '', env: 'KBRACKUP_TARGET', arg: 'target' },
  conflict: { doc: 'What restore does with a file that exists', format: ['skip', 'overwrite', 'update', 'abort'], default: 'abort', env: 'KBRACKUP_CONFLICT', arg: 'conflict' },
  dryRun: { doc: 'Show what would be done, change nothing', format: Boolean, default: false, env: 'KBRACKUP_DRY_RUN', arg: 'dry-run' },
  chunker: { doc: 'init: how files are cut into chunks: fastcdc (content-defined, dedups shifted data) or fixed', format: ['fastcdc', 'fixed'], default: 'fastcdc', env: 'KBRACKUP_CHUNKER', arg: 'chunker' },
  chunkSize: { doc: 'init: chunk size (fixed) or average chunk size (fastcdc: min = half, max = 8x); 0 = 4MiB fixed, 1MiB fastcdc', format: 'size', default: 0, env: 'KBRACKUP_CHUNK_SIZE', arg: 'chunk-size' },
  packSize: { doc: 'Target size of composite pack objects for small files', format: 'size', default: 16 * 1024 * 1024, env: 'KBRACKUP_PACK_SIZE', arg: 'pack-size' },
  smallFile: { doc: 'Files below this size go into packs (like brackup merge_files_under)', format: 'size', default: 256 * 1024, env: 'KBRACKUP_SMALL_FILE', arg: 'small-file' },
  recipient: { doc: 'init: public key file(s) of the recipients (comma-separated in env)', format: Array, default: [] as string[], env: 'KBRACKUP_RECIPIENT', arg: 'recipient' },
  credentialsOut: { doc: 'init: where to write the backup credentials file', format: 'optional-string', default: '', env: 'KBRACKUP_CREDENTIALS_OUT', arg: 'credentials-out' },
  out: { doc: 'keygen: path prefix of the key files to write', format: 'optional-string', default: '', env: 'KBRACKUP_OUT', arg: 'out' },
  s3Endpoint: { doc: 'S3 endpoint URL (for S3-compatible stores)', format: 'optional-string', default: '', env: 'AWS_ENDPOINT_URL', arg: 's3-endpoint' },
  s3Region: { doc: 'S3 region', format: 'optional-string', default: 'us-east-1', env: 'AWS_REGION', arg: 's3-region' },
  s3ForcePathStyle: { doc: 'Use path-style S3 URLs (most S3-compatible stores)', format: Boolean, default: false, env: 'KBRACKUP_S3_FORCE_PATH_STYLE', arg: 's3-force-path-style' },
  s3StorageClass: { doc: 'S3 storage class for new objects', format: 'optional-string', default: '', env: 'KBRACKUP_S3_STORAGE_CLASS', arg: 's3-storage-class' },
  s3Sse: { doc: 'S3 server-side encryption (AES256 or aws:kms)', format: 'optional-string', default: '', env: 'KBRACKUP_S3_SSE', arg: 's3-sse' },
  s3SseKmsKeyId: { doc: 'KMS key id for aws:kms server-side encryption', format: 'optional-string', default: '', env: 'KBRACKUP_S3_SSE_KMS_KEY_ID', arg: 's3-sse-kms-key-id' },
  sftpKey: { doc: 'SSH private key file for SFTP', format: 'optional-string', default: '', env: 'KBRACKUP_SFTP_KEY', arg: 'sftp-key' },
  sftpKeyPassphraseFile: { doc: 'File holding the passphrase of the SSH private key', format: 'optional-string', default: '', env: 'KBRACKUP_SFTP_KEY_PASSPHRASE_FILE', arg: 'sftp-key-passphrase-file' },
  sftpKnownHosts: { doc: 'known_hosts file used to check the SFTP server host key', format: 'optional-string', default: '', env: 'KBRACKUP_SFTP_KNOWN_HOSTS', arg: 'sftp-known-hosts' },
  sftpHostFingerprint: { doc: 'Pinned SFTP host key fingerprint (SHA256:...)', format: 'optional-string', default: '', env: 'KBRACKUP_SFTP_HOST_FINGERPRINT', arg: 'sftp-host-fingerprint' },
  retries: { doc: 'How many times a transient storage error is retried', format: 'nat', default: 6, env: 'KBRACKUP_RETRIES', arg: 'retries' },
  pushgateway: { doc: 'Prometheus Pushgateway URL; metrics are pushed at the end of each run when set', format: 'optional-string', default: '', env: 'KBRACKUP_PUSHGATEWAY_URL', arg: 'pushgateway' },
  retryLock: { doc: 'How long to wait for a lock held by another process (e.g. 5m); 0 = fail at once with exit 11', format: 'duration', default: 0, env: 'KBRACKUP_RETRY_LOCK', arg: 'retry-lock' },
  keep: { doc: 'metrics-prune: SOURCE=REPOSITORY of each backup set that still pushes metrics (comma-separated in env)', format: Array, default: [] as string[], env: 'KBRACKUP_METRICS_KEEP', arg: 'keep' },
  snapshotPlan: { doc: 'snapshot-backup: the plan the chart renders (backup Job + volumes to take from CSI snapshots)', format: 'optional-string', default: '', env: 'KBRACKUP_SNAPSHOT_PLAN', arg: 'plan' },
  snapshotTimeout: { doc: 'snapshot-backup: seconds a VolumeSnapshot may take to become readyToUse', format: 'nat', default: 600, env: 'KBRACKUP_SNAPSHOT_TIMEOUT', arg: 'snapshot-timeout' },
  keepLast: keep('last N snapshots', 'last'),
  keepHourly: keep('last N hourly snapshots', 'hourly'),
  keepDaily: keep('last N daily snapshots', 'daily'),
  keepWeekly: keep('last N weekly snapshots', 'weekly'),
  keepMonthly: keep('last N monthly snapshots', 'monthly'),
  keepYearly: keep('last N yearly snapshots', 'yearly'),
  keepWithin: within('every snapshot', 'within'),
  keepWithinHourly: within('hourly snapshots', 'within-hourly'),
  keepWithinDaily: within('daily snapshots', 'within-daily'),
  keepWithinWeekly: within('weekly snapshots', 'within-weekly'),
  keepWithinMonthly: within('monthly snapshots', 'within-monthly'),
  keepWithinYearly: within('yearly snapshots', 'within-yearly'),
  keepTags: { doc: 'forget: keep every snapshot with these tags (--keep-tag a,b needs both; repeat for either)', format: Array, default: [] as string[], env: 'KBRACKUP_KEEP_TAGS', arg: 'keep-tag' },
  groupBy: { doc: "forget: group snapshots by these fields before applying the policy: host, source, paths, tags ('' = one group)", format: String, default: 'source,host', env: 'KBRACKUP_GROUP_BY', arg: 'group-by' },
  prune: { doc: 'forget: run prune afterwards when snapshots were removed', format: Boolean, default: false, env: 'KBRACKUP_PRUNE', arg: 'prune' },
  grace: { doc: 'prune: never delete or repack an object stored less than this long ago, so a backup running beside it stays complete', format: 'duration', default: 24 * 3600 * 1000, env: 'KBRACKUP_GRACE', arg: 'grace' },
  maxUnused: { doc: 'prune: unused space that may remain after repacking: a percentage of the used data (5%), a size (1GiB) or unlimited (like restic)', format: String, default: '5%', env: 'KBRACKUP_MAX_UNUSED', arg: 'max-unused' },
  noRepack: { doc: 'prune: only delete whole unused objects, never read or rewrite packs (for cold storage classes)', format: Boolean, default: false, env: 'KBRACKUP_NO_REPACK', arg: 'no-repack' },
  readData: { doc: 'check: also decrypt and verify every blob (needs --key or the passphrase)', format: Boolean, default: false, env: 'KBRACKUP_READ_DATA', arg: 'read-data' },
  readDataSubset: { doc: 'check: decrypt and verify a part of the content objects: N% (a random sample) or n/t (part n of t, so t runs cover everything)', format: 'optional-string', default: '', env: 'KBRACKUP_READ_DATA_SUBSET', arg: 'read-data-subset' },
  noLock: { doc: 'check: do not take the repository lock (for read-only storage credentials); results may be off while another process changes the repository', format: Boolean, default: false, env: 'KBRACKUP_NO_LOCK', arg: 'no-lock' },
  statsMode: { doc: 'stats: restore-size (what a restore writes) or raw-data (what the snapshots take in the repository)', format: ['restore-size', 'raw-data'], default: 'restore-size', env: 'KBRACKUP_STATS_MODE', arg: 'mode' },
  metadata: { doc: 'diff: also list paths whose metadata alone changed (mode, owner, times, extended attributes; marked U)', format: Boolean, default: false, env: 'KBRACKUP_DIFF_METADATA', arg: 'metadata' },
  removeAll: { doc: 'unlock: remove every lock, not only stale ones', format: Boolean, default: false, env: 'KBRACKUP_REMOVE_ALL', arg: 'remove-all' },
  kubernetes: { doc: 'Kubernetes integration (Events, Lease): auto = when running in a cluster', format: ['auto', 'on', 'off'], default: 'auto', env: 'KBRACKUP_KUBERNETES', arg: 'kubernetes' },
};

export type Schema = typeof schema;
export type Config = convict.Config<{
  [K in keyof Schema]: Schema[K]['default'] extends boolean ? boolean : Schema[K]['default'] extends number ? number : Schema[K]['default'];
}>;
