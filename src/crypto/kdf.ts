import { createHmac, hkdfSync, randomBytes } from 'node:crypto';

/** Length of repository and content keys. */
export const KEY_BYTES = 32;

/** A fresh random 256-bit key. */
export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/**
 * Keys derived from the repository key, each for one purpose so none can be misused for another
 * (docs/ARCHITECTURE.md "Keys"). Whoever holds the repository key can read and write metadata,
 * never file contents.
 */
export interface RepoSecrets {
  /** HMAC key naming chunks: ids reveal nothing, equal data deduplicates, and restore checks each chunk. */
  chunkIdKey: Buffer;
  /** HMAC key naming folder trees by their content, so an unchanged folder is the same object. */
  treeIdKey: Buffer;
  /** Derives each metadata object's session key from its name (objectKey). */
  metadataKey: Buffer;
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
    treeIdKey: derive(repoKey, 'tree-id'),
    metadataKey: derive(repoKey, 'metadata-v2'),
    chunkerSeed: derive(repoKey, 'chunker-seed'),
  };
}

/**
 * The session key of the metadata object stored under `name`. Only holders of the repository key can
 * make an object that opens under it, and an object copied to another name does not open at all.
 */
export function objectKey(secrets: RepoSecrets, name: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secrets.metadataKey, 'kbrackup object', name, KEY_BYTES));
}

/**
 * A public commitment to the repository key, recorded in kbrackup.json: it tells a reader that the key
 * it unwrapped is the repository's, and reveals nothing about the key.
 */
export function keyCommitment(repoKey: Buffer, repositoryId: string): string {
  return createHmac('sha256', repoKey).update(`kbrackup key commitment:${repositoryId}`).digest('hex');
}

/** In a passphrase-only repository, file contents are opened with this password derived from the content key. */
export function contentPassword(contentKey: Buffer): string {
  return derive(contentKey, 'content').toString('base64');
}
