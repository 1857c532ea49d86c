import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';

/** A parsed repository URL: which backend, and where inside it. */
export type Location =
  | { kind: 'filesystem'; path: string }
  | { kind: 's3'; bucket: string; prefix: string }
  | { kind: 'sftp'; user: string | undefined; host: string; port: number; path: string };

const HINT = 'use a local path, file:///path, s3://BUCKET/PREFIX or sftp://USER@HOST:PORT/PATH';

/** Parse `--repo` into a Location; the one place that knows the URL forms. */
export function parseLocation(repo: string): Location {
  const value = repo.trim();
  if (value === '') throw new ConfigError(`--repo is empty; ${HINT}`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'filesystem', path: resolve(value) };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`--repo ${value} is not a valid URL; ${HINT}`);
  }
  switch (scheme) {
    case 'file':
      return { kind: 'filesystem', path: fileURLToPath(url) };
    case 's3': {
      if (!url.hostname) throw new ConfigError(`--repo ${value} names no bucket; ${HINT}`);
      return { kind: 's3', bucket: url.hostname, prefix: decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '') };
    }
    case 'sftp': {
      if (!url.hostname) throw new ConfigError(`--repo ${value} names no host; ${HINT}`);
      const path = decodeURIComponent(url.pathname);
      if (path === '' || path === '/') throw new ConfigError(`--repo ${value} names no folder on the server; ${HINT}`);
      return {
        kind: 'sftp',
        user: url.username ? decodeURIComponent(url.username) : undefined,
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port ? Number(url.port) : 22,
        path,
      };
    }
    default:
      throw new ConfigError(`--repo ${value}: unknown scheme "${scheme}"; ${HINT}`);
  }
}
