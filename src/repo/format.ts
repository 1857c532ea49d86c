import { KbrackupError } from '../errors.js';

/** Chunking parameters, fixed for the life of a repository so equal data always cuts the same way. */
export type ChunkerConfig = { algorithm: 'fixed'; size: number } | { algorithm: 'fastcdc'; min: number; avg: number; max: number };

/** The plain-text `kbrackup.json` at the repository root: nothing secret, only what every reader needs. */
export interface RepoConfig {
  format: 'kbrackup';
  version: 1;
  id: string;
  created: string;
  encryption: {
    mode: 'recipients' | 'passphrase';
    recipients: { fingerprint: string; userIds: string[] }[];
  };
  chunker: ChunkerConfig;
  packSize: number;
  smallFile: number;
}

/** Parse and check `kbrackup.json`; `where` names the repository in errors. */
export function parseRepoConfig(text: string, where: string): RepoConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new KbrackupError(`${where}/kbrackup.json is not valid JSON; the repository config is damaged`);
  }
  const c = value as Partial<RepoConfig>;
  if (c.format !== 'kbrackup') throw new KbrackupError(`${where} is not a kbrackup repository (kbrackup.json has no "format": "kbrackup")`);
  if (c.version !== 1) throw new KbrackupError(`${where} has repository format version ${String(c.version)}; this kbrackup reads version 1 — use a newer kbrackup`);
  if (!c.id || !c.encryption || !c.chunker || !c.packSize || !c.smallFile) throw new KbrackupError(`${where}/kbrackup.json is missing fields; the repository config is damaged`);
  return c as RepoConfig;
}
