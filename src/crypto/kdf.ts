import { hkdfSync, randomBytes } from 'node:crypto';

/** Length of repository and content keys. */
export const KEY_BYTES = 32;

/** A fresh random 256-bit key. */
export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** Keys derived from the repository key, each for one purpose, so none can be misused for another. */
export interface RepoSecrets {
  /** HMAC key naming chunks: ids reveal nothing, equal data deduplicates. */
  chunkIdKey: Buffer;
  /** Opens metadata objects (snapshots, trees, indexes): names and sizes, never file contents. */
  metadataPassword: string;
  /** Seeds the content-defined chunker, so chunk boundaries do not fingerprint known files. */
  chunkerSeed: Buffer;
}

function derive(key: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', key, 'kbrackup', purpose, KEY_BYTES));
}

/** Derive the per-purpose secrets from a repository key. */
export function deriveRepoSecrets(repoKey: Buffer): RepoSecrets {
  return {
    chunkIdKey: derive(repoKey, 'chunk-id'),
    metadataPassword: derive(repoKey, 'metadata').toString('base64'),
    chunkerSeed: derive(repoKey, 'chunker-seed'),
  };
}

/** In a passphrase-only repository, file contents are opened with this password derived from the content key. */
export function contentPassword(contentKey: Buffer): string {
  return derive(contentKey, 'content').toString('base64');
}
