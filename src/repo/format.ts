import { createHash } from 'node:crypto';
import type { ChunkerConfig } from '../chunker/spec.js';
import { IntegrityError, KbrackupError } from '../errors.js';

export type { ChunkerConfig };

/** The repository format this kbrackup writes and reads. */
export const FORMAT_VERSION = 2;

/**
 * The plain-text `kbrackup.json` at the repository root: nothing secret, only what every reader needs.
 * Its exact bytes are what the owner signs (docs/SECURITY.md), and `keyCommitment` ties the
 * repository key to it.
 */
export interface RepoConfig {
  format: 'kbrackup';
  version: typeof FORMAT_VERSION;
  id: string;
  created: string;
  encryption: {
    mode: 'recipients' | 'passphrase';
    recipients: { fingerprint: string; userIds: string[] }[];
  };
  /** HMAC of the repository id under the repository key (crypto/kdf.ts keyCommitment). */
  keyCommitment: string;
  chunker: ChunkerConfig;
  packSize: number;
  smallFile: number;
  /** Small files are gathered into encrypted bundles of about this many plaintext bytes. */
  bundleSize: number;
}

/** kbrackup.json as stored: the parsed config and the exact bytes signatures cover. */
export interface StoredConfig {
  config: RepoConfig;
  bytes: Buffer;
  /** SHA-256 of the bytes (hex): backup credentials pin it. */
  digest: string;
}

/** The bytes `init` stores for a config. */
export function encodeRepoConfig(config: RepoConfig): Buffer {
  return Buffer.from(`${JSON.stringify(config, null, 2)}\n`);
}

function positiveInteger(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

function validChunker(c: unknown): boolean {
  const v = c as Record<string, unknown> | undefined;
  if (v?.algorithm === 'fixed') return positiveInteger(v.size);
  if (v?.algorithm === 'fastcdc') return positiveInteger(v.min) && positiveInteger(v.avg) && positiveInteger(v.max);
  return false;
}

/** Parse and check `kbrackup.json`; `where` names the repository in errors. */
export function parseRepoConfig(bytes: Buffer, where: string): StoredConfig {
  const object = `${where}/kbrackup.json`;
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new IntegrityError(object, 'is not valid JSON; the repository config is damaged');
  }
  const c = value as Partial<RepoConfig> | null;
  if (c === null || typeof c !== 'object' || c.format !== 'kbrackup') throw new KbrackupError(`${where} is not a kbrackup repository (kbrackup.json has no "format": "kbrackup")`);
  if (c.version !== FORMAT_VERSION) {
    const older = typeof c.version === 'number' && c.version < FORMAT_VERSION;
    throw new KbrackupError(
      older
        ? `${where} has repository format version ${c.version}, which this kbrackup no longer reads (it writes version ${FORMAT_VERSION}: authenticated metadata, shared folder trees); restore it with the kbrackup that wrote it, then back up into a new repository`
        : `${where} has repository format version ${String(c.version)}; this kbrackup reads version ${FORMAT_VERSION} — use a newer kbrackup`,
    );
  }
  const field = (name: string, ok: boolean) => {
    if (!ok) throw new IntegrityError(object, `field "${name}" is missing or malformed; the repository config is damaged`);
  };
  field('id', typeof c.id === 'string' && /^[0-9a-f]{32}$/.test(c.id));
  field('created', typeof c.created === 'string');
  field('encryption', (c.encryption?.mode === 'recipients' || c.encryption?.mode === 'passphrase') && Array.isArray(c.encryption.recipients));
  field('encryption.recipients', c.encryption!.recipients.every((r) => typeof r?.fingerprint === 'string' && /^[0-9a-f]+$/.test(r.fingerprint) && Array.isArray(r.userIds)));
  field('keyCommitment', typeof c.keyCommitment === 'string' && /^[0-9a-f]{64}$/.test(c.keyCommitment));
  field('chunker', validChunker(c.chunker));
  field('packSize', positiveInteger(c.packSize));
  field('smallFile', positiveInteger(c.smallFile));
  field('bundleSize', positiveInteger(c.bundleSize));
  return { config: c as RepoConfig, bytes, digest: createHash('sha256').update(bytes).digest('hex') };
}
