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
  tags: { doc: 'Tags recorded in the snapshot (comma-separated)', format: Array, default: [] as string[], env: 'KBRACKUP_TAGS', arg: 'tag' },
  exclude: { doc: 'Exclude paths matching these glob patterns (comma-separated in env)', format: Array, default: [] as string[], env: 'KBRACKUP_EXCLUDE', arg: 'exclude' },
  include: { doc: 'Restore only these paths (and what is below them)', format: Array, default: [] as string[], env: 'KBRACKUP_INCLUDE', arg: 'include' },
  workers: { doc: 'Chunks encrypted in parallel', format: 'nat', default: 2, env: 'KBRACKUP_WORKERS', arg: 'workers' },
  uploads: { doc: 'Objects uploaded in parallel', format: 'nat', default: 2, env: 'KBRACKUP_UPLOADS', arg: 'uploads' },
  chunkThread: { doc: 'Cut and hash large files on a second thread (~9 MiB): auto = unless the memory limit is below 96 MiB', format: ['auto', 'on', 'off'], default: 'auto', env: 'KBRACKUP_CHUNK_THREAD', arg: 'chunk-thread' },
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
  kubernetes: { doc: 'Kubernetes integration (Events, Lease): auto = when running in a cluster', format: ['auto', 'on', 'off'], default: 'auto', env: 'KBRACKUP_KUBERNETES', arg: 'kubernetes' },
};

export type Schema = typeof schema;
export type Config = convict.Config<{
  [K in keyof Schema]: Schema[K]['default'] extends boolean ? boolean : Schema[K]['default'] extends number ? number : Schema[K]['default'];
}>;
